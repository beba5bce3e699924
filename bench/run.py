"""`make bench`: run every benchmark module in bench/ and write BENCHMARKS.md at the repository root.

A benchmark module is any bench/*.py that defines `run() -> str` returning a Markdown section;
modules run in name order. `python bench/run.py NAME...` runs only those modules and replaces
only their sections of the file, keeping the others. Benchmarks measure; they never assert on time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def modules() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "run" and not p.stem.startswith("_"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="module names to run (default: all)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(BENCH), str(ROOT)]
    names = args.only or modules()
    unknown = set(names) - set(modules())
    if unknown:
        parser.error(f"no benchmark module {', '.join(sorted(unknown))} in bench/")

    sections, started = [], time.monotonic()
    for name in names:
        module = importlib.import_module(name)
        if not callable(getattr(module, "run", None)):
            continue
        print(f"bench: {name} ...", flush=True)
        t0 = time.monotonic()
        sections.append(module.run().rstrip() + "\n")
        print(f"bench: {name} done in {time.monotonic() - t0:.0f} s", flush=True)

    header = ["# Benchmarks", "",
              f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.", "",
              "Command: `make bench` (which runs `python bench/run.py`); "
              f"this run took {time.monotonic() - started:.0f} s. The machine is shared, so figures move from "
              "run to run: each section says how it was measured, and comparisons are made side by side "
              "within one run.", ""]
    if args.only and args.output.exists():
        sections = _merged(args.output.read_text(), sections)
    args.output.write_text("\n".join(header) + "\n" + "\n".join(sections))
    print(f"bench: wrote {args.output}")
    return 0


def _heading(section: str) -> str:
    return section.split("\n", 1)[0].strip()


def _merged(existing: str, fresh: list[str]) -> list[str]:
    """The existing file's sections, with those just measured put in their place (or added)."""
    parts = existing.split("\n## ")[1:]
    old = ["## " + p.rstrip() + "\n" for p in parts]
    by_heading = {_heading(s): s for s in fresh}
    out = [by_heading.pop(_heading(s), s) for s in old]
    return out + list(by_heading.values())


if __name__ == "__main__":
    sys.exit(main())
