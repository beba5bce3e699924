"""The built-in profiles carry the seed's figures and the derivations PROFILES.md documents."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mockprovider.profile import load_profiles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import burst_model  # noqa: E402

PROFILES = load_profiles()
# From the seed (FIGURES.md): P50, P99 (ms), sustained req/s, uptime, price, max side.
SEED = {"midjourney-v7": (3200, 8700, 28, 0.995, 0.08, 2048), "dall-e-4": (4100, 11_300, 22, 0.999, 0.06, 1792),
        "imagen-4": (2800, 6400, 34, 0.997, 0.08, 2048), "relay": (42, 89, None, 0.9995, None, 2048)}
SIGMAS = {"midjourney-v7": 0.430, "dall-e-4": 0.436, "imagen-4": 0.355, "relay": 0.323}


@pytest.mark.parametrize("name", sorted(SEED))
def test_seed_figures_and_derivations(name: str) -> None:
    p50, p99, sustained, uptime, price, side = SEED[name]
    p = PROFILES[name]
    assert (p.latency.p50_ms, p.latency.p99_ms, p.uptime, p.max_size) == (p50, p99, uptime, side)
    assert round(p.latency.sigma, 3) == SIGMAS[name]
    # Half the downtime budget is spent as scattered errors; outages are switched on explicitly.
    assert p.faults.error_rate == pytest.approx((1 - uptime) / 2)
    if price is not None:
        assert p.price_usd == price
    if sustained is not None:   # Little's law at saturation: slots = req/s x mean service time
        assert p.capacity.slots == round(sustained * p.latency.mean_ms / 1000)
        assert p.saturation_rps == pytest.approx(sustained, rel=0.01)


def test_model_prices_and_account_limits() -> None:
    prices = {"midjourney-v7-pro": 0.15, "midjourney-v7-turbo": 0.04, "dall-e-4-flash": 0.02,
              "imagen-4-enterprise": 0.12}
    assert {m: PROFILES[m].price_usd for m in prices} == prices
    relay = PROFILES["relay"]
    assert relay.price_for("midjourney-v7") == 0.08 and relay.price_for("dall-e-4") == 0.05
    assert relay.price_for("dall-e-4-flash") == 0.02   # unpublished: the direct price
    mj = PROFILES["midjourney-v7"].capacity
    assert (mj.per_key_slots, mj.per_key_queue) == (3, 10)   # midjourney-proxy: 3 running, 10 queued


def test_the_burst_model_reads_the_seeds_847_row() -> None:
    """Fewer bursts than the benchmark's 200 (this is a check, not the figure), same seed."""
    medians = {name: burst_model.burst_median(PROFILES[name], PROFILES[name].capacity.slots, trials=40)[0]
               for name in SEED}
    assert medians["midjourney-v7"] == pytest.approx(16_600, rel=0.05)
    assert medians["dall-e-4"] == pytest.approx(21_100, rel=0.05)
    assert medians["imagen-4"] == pytest.approx(13_800, rel=0.05)
    assert medians["relay"] == pytest.approx(67, rel=0.05)   # 400 slots: the seed's 67 ms
    saturating = round(1200 * PROFILES["relay"].latency.mean_ms / 1000)
    assert saturating == 53
    slow = burst_model.burst_median(PROFILES["relay"], saturating, trials=40)[0]
    assert slow == pytest.approx(373, rel=0.05)               # what 1,200 req/s of capacity would give


def test_contributing_add_a_provider_is_a_profile_and_nothing_else(tmp_path: Path) -> None:
    """CONTRIBUTING.md's first recipe, followed on a copy of the package: one table added to
    builtin.toml, no other file touched, and the new provider is served under its API's prefix."""
    import json
    import os
    import shutil
    import subprocess
    import urllib.request

    from loadtest.mockproc import MockProcess

    source = Path(__file__).resolve().parent.parent / "mockprovider"
    copy = tmp_path / "pkg" / "mockprovider"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    builtin = copy / "profiles" / "builtin.toml"
    builtin.write_text(builtin.read_text() + '\n[shop-images]\nbase = "dall-e-4"   # assumed\nprice_usd = 0.03\n'
                       'latency = { p50_ms = 900, p99_ms = 2400, min_ms = 200, max_ms = 60000 }\n')
    changed = subprocess.run(["diff", "-rq", "-x", "__pycache__", str(source), str(copy)], capture_output=True,
                             text=True).stdout.splitlines()
    assert changed == [f"Files {source}/profiles/builtin.toml and {copy}/profiles/builtin.toml differ"]
    env = {"PYTHONPATH": str(copy.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with MockProcess("--latency-scale", "0.01", env=env, cwd=tmp_path) as mock:
        req = urllib.request.Request(f"{mock.url}/openai/v1/images/generations", method="POST",
                                     data=json.dumps({"model": "shop-images", "prompt": "a red sneaker"}).encode(),
                                     headers={"Authorization": "Bearer sk-test-1234", "Content-Type":
                                              "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.loads(resp.read())
            assert resp.headers["x-cost-usd"] == "0.0300"
        assert len(body["data"]) == 1
        profiles = json.loads(urllib.request.urlopen(f"{mock.url}/admin/profiles", timeout=10).read())
        assert profiles["shop-images"]["p50_ms"] == 900
