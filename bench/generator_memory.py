"""Does the load generator's memory stay flat over a long open-model run?

`loadtest run sustained --duration D --metrics-port 0` (the embedded mock; one Locust process), read
through the generator's own Prometheus endpoint every few seconds: the Locust process's RSS
(`process_resident_memory_bytes`) and the requests it has recorded (`loadtest_requests_total`) at the
same moment. The first fifth of the run (VUs spawning, histograms allocated, caches filling) is left
out of the fit; over the rest, the least-squares slope of RSS against requests is the memory each
request leaves behind. Extrapolated to the seed's 4-hour run (17 M requests at 1,200 req/s).

    python bench/generator_memory.py [SECONDS]      # default GENERATOR_MEMORY_S or 600 (ten minutes)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_S = float(os.environ.get("GENERATOR_MEMORY_S", "600"))
SAMPLE_S = 5.0
FOUR_HOURS_REQUESTS = 17_280_000      # 1,200 req/s for 4 hours
WARMUP_SHARE = 0.2


def _scrape(url: str) -> tuple[float, float, bool] | None:
    """(RSS bytes, requests recorded, whether the run is still going) from one scrape, or None if the
    endpoint is gone."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    rss = requests = 0.0
    running = True
    for line in text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            rss = float(line.split()[-1])
        elif line.startswith("loadtest_requests_total{"):
            requests += float(line.split()[-1])
        elif line.startswith("loadtest_run_running "):
            running = float(line.split()[-1]) == 1.0
    return rss, requests, running


@dataclass
class Result:
    seconds: float
    samples: list[tuple[float, float, float]]     # (seconds, RSS bytes, requests) while the run went
    after: list[tuple[float, float, float]]       # the same once it had ended (the report being written)
    slope: float                                  # bytes per request after the warm-up
    extrapolated: float                           # RSS at the 4-hour run's request count
    summary: dict[str, Any]
    # Every process of the run by role (the `loadtest` runner, Locust, the mock): (first, peak, last) RSS.
    processes: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def _role(p: psutil.Process) -> str:
    cmd = " ".join(p.cmdline())
    if "mockprovider" in cmd:
        return "mock"
    if "locust" in cmd:
        return "Locust"
    return "loadtest (runner)"


def _tree_rss(pid: int) -> dict[str, float]:
    """RSS per role of the run's process tree, summed over processes of one role."""
    out: dict[str, float] = {}
    try:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                role = _role(p)
                out[role] = out.get(role, 0.0) + p.memory_info().rss
    except psutil.Error:
        pass
    return out


def measure(seconds: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="generator-memory-") as tmp:
        ready = Path(tmp) / "ready.json"
        cmd = [sys.executable, "-m", "loadtest", "run", "sustained", "--duration", f"{seconds:g}s",
               "--metrics-port", "0", "--ready-file", str(ready), "--report-dir", str(Path(tmp) / "report")]
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[tuple[float, float, float]] = []     # (seconds, RSS, requests)
        after: list[tuple[float, float, float]] = []
        tree: dict[str, list[float]] = {}
        try:
            deadline = time.monotonic() + 120
            while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            url = str(json.loads(ready.read_text())["metrics_url"])
            t0 = time.monotonic()
            while proc.poll() is None:
                got = _scrape(url)
                if got is not None and got[1] > 0:
                    rss, requests, running = got
                    (samples if running and not after else after).append((time.monotonic() - t0, rss, requests))
                    for role, rss in _tree_rss(proc.pid).items():
                        tree.setdefault(role, []).append(rss)
                time.sleep(SAMPLE_S)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(120)
        summary = json.loads((Path(tmp) / "report" / "summary.json").read_text())
    if len(samples) < 5:
        raise RuntimeError(f"only {len(samples)} samples of the generator's memory: too short a run")
    fit = [s for s in samples if s[0] >= WARMUP_SHARE * samples[-1][0]]
    n = len(fit)
    mx = sum(s[2] for s in fit) / n
    my = sum(s[1] for s in fit) / n
    sxx = sum((s[2] - mx) ** 2 for s in fit)
    slope = sum((s[2] - mx) * (s[1] - my) for s in fit) / sxx if sxx else 0.0
    end = samples[-1]
    # Memory that does not grow with requests is bounded by what it already reached; only a rising
    # slope is carried on to the 4-hour run's request count (a falling one would promise a shrinking process).
    peak = max(s[1] for s in fit)
    grown = end[1] + max(0.0, slope) * max(0.0, FOUR_HOURS_REQUESTS - end[2])
    return Result(seconds=seconds, samples=samples, after=after, slope=slope, summary=summary,
                  extrapolated=max(peak, grown),
                  processes={role: (v[0], max(v), v[-1]) for role, v in sorted(tree.items())})


def _mb(b: float) -> str:
    return f"{b / 1e6:,.1f} MB"


def section(result: Result) -> str:
    samples, summary, seconds, slope = result.samples, result.summary, result.seconds, result.slope
    short = " (the short run)" if seconds < 600 else ""
    # The run in tenths: the first sample, then the last of each tenth, so a trend (or a one-off peak) shows.
    picks = sorted({0, *(min(len(samples) - 1, round(k * (len(samples) - 1) / 10)) for k in range(1, 11))})
    peak_i = max(range(len(samples)), key=lambda i: samples[i][1])
    rows = "\n".join(f"| {samples[i][0]:,.0f} s | {samples[i][2]:,.0f} | {_mb(samples[i][1])}"
                     + (" (peak)" if i == peak_i else "") + " |" for i in sorted({*picks, peak_i}))
    warm = (" A run this short weighs the allocator's warm-up heavily; the 10-minute form is "
            "`python bench/generator_memory.py 600`." if seconds < 600 else "")
    procs = "\n".join(f"| {role} | {_mb(a)} | {_mb(b)} | {_mb(c)} |" for role, (a, b, c) in result.processes.items())
    ending = ("" if not result.after else
              f"\n\nOnce the run had ended, while the gate judged and the reports were written (plots, HTML), "
              f"{len(result.after)} more sample(s): RSS up to {_mb(max(a[1] for a in result.after))}. They are left "
              "out of the fit and the bound above: they are the report's one-off cost, not the run's.")
    return f"""## Load generator memory over a long open-model run{short}

`python bench/generator_memory.py {seconds:g}`: `loadtest run sustained --duration {seconds:g}s --metrics-port 0`
(embedded mock, one Locust process), the Locust process's RSS and its recorded requests read from its own
`/metrics` every {SAMPLE_S:g} s ({len(samples)} samples). The run: {summary['requests']:,} requests,
{summary['rps'] or 0:,.0f} req/s, verdict {summary['verdict']}.

| time | requests | RSS |
|---|---|---|
{rows}{ending}

Every process of the run, sampled with psutil at the same moments (RSS summed per role):

| process | first sample | peak | last sample |
|---|---|---|---|
{procs}

Slope of RSS against requests after the first {WARMUP_SHARE:.0%} of the run (least squares):
**{slope:,.2f} bytes per request**. Extrapolated to the seed's 4-hour run ({FOUR_HOURS_REQUESTS / 1e6:.2f} M
requests; a slope at or below zero carries nothing on, so the bound is the highest RSS after the warm-up):
**{_mb(result.extrapolated)}**.{warm}
"""


def run() -> str:
    return section(measure(DEFAULT_S))


if __name__ == "__main__":
    sys.stdout.write(section(measure(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_S)))
