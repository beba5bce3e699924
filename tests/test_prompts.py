"""The catalog prompts: pools shipped with the package, what Faker draws, a Locust process without Faker.

The pools (colours, cities, first names) were drawn at run time by a seeded Faker; they are now read
from loadtest/data/prompt_pools.json, which must stay exactly what that Faker draws, so every seed's
prompts stay what they were.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from loadtest import prompts
from loadtest.prompts import USE_CASES, CatalogPrompts

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_pools_are_what_the_seeded_faker_draws() -> None:
    drawn = prompts.faker_pools()
    assert prompts.pools() == drawn
    assert [len(p) for p in drawn[1:]] == [prompts.POOL_SIZE, prompts.POOL_SIZE]
    # The file as --regenerate writes it: regenerating changes nothing.
    shipped = (Path(prompts.__file__).parent / prompts.POOLS_FILE).read_text(encoding="utf-8")
    assert shipped == prompts.pools_json(drawn)


def test_regenerate_writes_the_file_the_package_ships(tmp_path: Path) -> None:
    out = tmp_path / "pools.json"
    done = subprocess.run([sys.executable, "-m", "loadtest.prompts", "--regenerate", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == (Path(prompts.__file__).parent / prompts.POOLS_FILE).read_text(
        encoding="utf-8")


def test_every_seed_draws_the_prompts_it_drew_with_faker() -> None:
    # Recorded from the pools Faker drew at run time, before they were shipped as a file.
    h = hashlib.sha256()
    for seed in (0, 1, 42):
        stream = CatalogPrompts(seed, tuple((c, 1.0) for c in USE_CASES))
        for _ in range(200):
            case, prompt = stream.next()
            h.update(f"{case}\t{prompt}\n".encode())
    assert h.hexdigest() == "bf1c89ffa72eb437bc611611d16f51a83faa57345607b94605f44f5f03460741"
    stream = CatalogPrompts(7, tuple((c, 1.0) for c in USE_CASES))
    assert stream.next() == ("lifestyle", "A man in his thirties wearing a orchid corduroy leather handbag walking "
                                          "down a cobbled street in Grantside, cinematic lighting")
