"""Every built-in scenario at its default length and target, as `loadtest run NAME` runs it.

What each one ends with — verdict, requests, P99, success, retries, failovers — beside what its
description promises. A test runs each one shortened (tests/test_loadtest_runs.py); this is
the full length, which takes about fifteen minutes
(the two gateway scenarios need the `gateway` extra: `pip install -e '.[gateway]'`, which `make install`
has among its test tools).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtest.scenario import load_scenario, scenario_names

# What each scenario's description says it shows, as the verdict it should reach on this mock.
EXPECTED = {"single": "pass", "batch_10": "pass", "batch_50": "pass", "flash_sale": "pass", "sustained": "pass",
            "rate_limit_storm": "pass", "outage": "pass", "stream_preview": "pass", "catalog_edit": "pass",
            "flash_sale_replay": "pass", "gateway_flash_sale": "pass", "gateway_outage": "pass"}


def run_one(name: str, tmp: Path) -> dict:
    report = tmp / name
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", name, "--report-dir", str(report)],
                          cwd=tmp, capture_output=True, text=True, timeout=3600)
    elapsed = time.monotonic() - t0
    path = report / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    return {"name": name, "code": proc.returncode, "elapsed": elapsed, "summary": summary,
            "tail": (proc.stdout + proc.stderr).strip().splitlines()[-3:]}


def _row(r: dict) -> str:
    s = r["summary"]
    if not s:
        return f"| `{r['name']}` | no summary (exit {r['code']}) | | | | | | {' / '.join(r['tail'])} |"
    lat = s.get("latency_ms") or {}
    rate = s.get("success_rate")
    expected = EXPECTED.get(r["name"], "?")
    mark = "as described" if s["verdict"] == expected else f"**not as described** (expected {expected})"
    why = "; ".join(x["text"] for x in s.get("reasons", []) if x["kind"] != "note")[:160]
    p99 = "n/a" if lat.get("p99") is None else f"{lat['p99']:,.1f} ms"
    success = "n/a" if rate is None else f"{rate * 100:.3f} %"
    return (f"| `{r['name']}` | {s['verdict'].upper()} (exit {s['exit_code']}), {mark} | {s['duration_s']:,.0f} s | "
            f"{s['requests']:,} | {p99} | {success} | {s['retries']:,} / {s['failovers']:,} | {why} |")


def run(names: list[str] | None = None) -> str:
    with tempfile.TemporaryDirectory(prefix="scenarios-bench-") as tmp:
        results = [run_one(name, Path(tmp)) for name in names or scenario_names()]
    lines = ["## Every scenario at its default length", "",
             "Command: `loadtest run NAME --report-dir DIR` for each built-in scenario, one after another "
             "(`python bench/run.py scenarios_bench`). Each row is what the scenario's own thresholds said.", "",
             "| scenario | verdict | ran | requests | P99 | success | retries / failovers | reasons |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [_row(r) for r in results]
    lines += ["", "What each promises: " + "; ".join(
        f"`{n}`: {load_scenario(n).description}" for n in scenario_names()) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(sys.argv[1:] or None))     # `python bench/scenarios_bench.py [NAME...]`: only those rows
