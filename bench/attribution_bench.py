"""Who broke? The flash sale past this machine's generator, and against a relay that really saturates.

Four real runs of `flash_sale` against the embedded mock, one Locust process each, one after another:

- as shipped (847 users): the baseline, which should pass;
- 1,700 and 2,500 users: the generator (one Locust process on a 2-core box) saturates before the
  relay does. The client side may breach while the simulated relay's own record holds, so the
  verdict must be INVALID (exit 2) or PASS, never FAIL (exit 1);
- 847 users with the relay cut to 20 slots (`--set relay.slots=20`, about 430 images/s at its
  ~46 ms service time, for ~1,100 offered): the relay queues on its own side, so the breach is the
  target's and the verdict must be FAIL (exit 1).

Each row shows the client's P99 beside the provider side's, the gate's attribution, and the
generator's own figures, so the reader sees why each verdict fell as it did.

    python bench/run.py attribution_bench        # about six minutes
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtest.scenario import scenario_path

RUNS = [
    ("847 users (as shipped)", 847, [], {"pass"}),
    ("1,700 users", 1700, [], {"pass", "invalid"}),
    ("2,500 users", 2500, [], {"pass", "invalid"}),
    ("847 users, relay cut to 20 slots", 847, ["--set", "relay.slots=20"], {"fail"}),
]


def _scenario(tmp: Path, users: int) -> Path:
    text = scenario_path("flash_sale").read_text()
    path = tmp / f"flash_sale_{users}.toml"
    path.write_text(text.replace("users = 847", f"users = {users}").replace('name = "flash_sale"',
                                                                          f'name = "flash_sale_{users}"'))
    return path


def run_one(tmp: Path, label: str, users: int, extra: list[str]) -> dict:
    report = tmp / f"report-{len(list(tmp.iterdir()))}"
    cmd = [sys.executable, "-m", "loadtest", "run", str(_scenario(tmp, users)), "--report-dir", str(report), *extra]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900)
    path = report / "summary.json"
    return {"label": label, "code": proc.returncode, "summary": json.loads(path.read_text()) if path.exists() else {},
            "tail": (proc.stdout + proc.stderr).strip().splitlines()[-2:]}


def _fmt(v: float | None, unit: str = " ms") -> str:
    return "n/a" if v is None else f"{v:,.1f}{unit}"


def _row(r: dict, expected: set[str]) -> str:
    s = r["summary"]
    if not s:
        return f"| {r['label']} | no summary (exit {r['code']}) | | | | | {' / '.join(r['tail'])} |"
    side = s.get("provider_side") or {}
    provider_p99 = (side.get("latency_ms") or {}).get("total", {}).get("p99")
    attribution = "; ".join(f"{a['threshold']}: {a['kind']}" for a in side.get("attribution", [])) or "none"
    gen = s.get("generator") or {}
    strain = ", ".join(gen.get("reasons", [])[:2]) or "none"
    mark = "as expected" if s["verdict"] in expected else f"**unexpected** (expected {' or '.join(sorted(expected))})"
    return (f"| {r['label']} | {s['verdict'].upper()} (exit {s['exit_code']}), {mark} | {s['requests']:,} | "
            f"{_fmt(s['latency_ms'].get('p99'))} | {_fmt(provider_p99)} | {attribution} | {strain[:200]} |")


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="attribution-bench-") as tmp:
        rows = []
        for label, users, extra, expected in RUNS:
            print(f"attribution_bench: {label} ...", flush=True)
            rows.append(_row(run_one(Path(tmp), label, users, extra), expected))
    return "\n".join([
        "## Who broke: the generator's saturation against the target's", "",
        "Command: `python bench/run.py attribution_bench`: `loadtest run` of `flash_sale` (closed model, "
        "one Locust process, the embedded mock), with the users changed in a copy of the scenario, "
        "one run after another. Client P99 is what Locust saw (scheduled start to answer); provider P99 "
        "is the simulated relay's own record of the same run (arrival to answer, queue included).", "",
        "| run | verdict | requests | client P99 | provider P99 | attribution | generator strain |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
        *rows, "",
        "A latency breach the provider side does not share is the generator's (INVALID, exit 2); one the "
        "provider side shares is the target's (FAIL, exit 1).", ""])


if __name__ == "__main__":
    print(run())
