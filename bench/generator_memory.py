"""Does the load generator's memory stay flat over a long open-model run?

`loadtest run sustained --duration D --metrics-port 0` (the embedded mock; one Locust process), read
through the generator's own Prometheus endpoint every few seconds: the Locust process's RSS
(`process_resident_memory_bytes`) and the requests it has recorded (`loadtest_requests_total`) at the
same moment, with the VUs it has used so far (`loadtest_vus_busy_peak`: each start goes to the VU idle
last, so a VU is first used, and opens its connection, only when that many are in flight at once) and
its open TCP connections (psutil). The first fifth of the run (VUs spawning, histograms allocated,
caches filling) is left out of the fit; over the rest, RSS = a + b x requests + c x VUs used (least
squares) separates what each request leaves behind (b) from what each newly used VU keeps (c).
Extrapolated to the seed's 4-hour run: b carried on to 17.28 M requests (1,200 req/s), c to every one
of the scenario's `max_vus` VUs, the most a run can ever use.

Where requests and VUs used rise together (a run climbing to its peak) that fit cannot part them, and
b takes some of the VUs' share. So the plateau is fitted apart: the samples after the VUs used reached
their final count, where the VU term is constant and RSS against requests is b alone. When the plateau
holds at least a third of the run's requests, its slope is the estimate carried on.

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
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from loadtest.loadmodel import OpenLoad
from loadtest.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_S = float(os.environ.get("GENERATOR_MEMORY_S", "600"))
SAMPLE_S = 5.0
FOUR_HOURS_REQUESTS = 17_280_000      # 1,200 req/s for 4 hours
WARMUP_SHARE = 0.2


@dataclass
class Sample:
    t: float              # seconds since the first scrape
    rss: float            # the Locust process's RSS, bytes
    requests: float       # recorded so far
    vus_used: float       # the most VUs in flight at once so far
    connections: int      # the Locust process's established TCP connections now


def _scrape(url: str) -> tuple[float, float, float | None, bool] | None:
    """(RSS bytes, requests recorded, VUs used, whether the run is still going) from one scrape, or None
    if the endpoint is gone. VUs used is None once the arrivals have ended (the gauge goes with them)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    rss = requests = 0.0
    vus: float | None = None
    running = True
    for line in text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            rss = float(line.split()[-1])
        elif line.startswith("loadtest_requests_total{"):
            requests += float(line.split()[-1])
        elif line.startswith("loadtest_vus_busy_peak "):
            vus = float(line.split()[-1])
        elif line.startswith("loadtest_run_running "):
            running = float(line.split()[-1]) == 1.0
    return rss, requests, vus, running


def _connections(pid: int | None, metrics_port: int) -> int:
    """The Locust process's established TCP connections, less the scrapes of its own /metrics."""
    if pid is None:
        return 0
    try:
        p = psutil.Process(pid)
        conns = p.net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port != metrics_port)


@dataclass
class Fit:
    base: float           # a, bytes
    per_request: float    # b, bytes a request
    per_vu: float         # c, bytes a newly used VU
    residual: float       # RMS of what the fit leaves, bytes


def fit(samples: list[Sample], *, with_vus: bool = True) -> Fit:
    """RSS = a + b x requests + c x VUs used, least squares. With no change in the VUs used (or
    `with_vus` false), c is 0 and b is the plain slope of RSS against requests."""
    rss = np.array([s.rss for s in samples])
    cols = [np.ones(len(samples)), np.array([s.requests for s in samples])]
    vus = np.array([s.vus_used for s in samples])
    if with_vus and np.ptp(vus) > 0:
        cols.append(vus)
    x = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(x, rss, rcond=None)
    residual = float(np.sqrt(np.mean((x @ coef - rss) ** 2)))
    return Fit(base=float(coef[0]), per_request=float(coef[1]),
               per_vu=float(coef[2]) if len(coef) > 2 else 0.0, residual=residual)


@dataclass
class Result:
    seconds: float
    samples: list[Sample]                         # while the run went
    after: list[Sample]                           # once it had ended (the report being written)
    fit: Fit                                      # after the warm-up
    plain: Fit                                    # the same without the VUs: RSS against requests alone
    max_vus: int                                  # the scenario's
    extrapolated: float                           # RSS at the 4-hour run's request count, every VU used
    summary: dict[str, Any]
    plateau: list[Sample] = field(default_factory=list)   # the samples once the VUs used stopped rising
    plateau_fit: Fit | None = None                # RSS against requests over the plateau
    plateau_extrapolated: float | None = None     # the same bound from the plateau's slope
    # Every process of the run by role (the `loadtest` runner, Locust, the mock): (first, peak, last) RSS.
    processes: dict[str, tuple[float, float, float]] = field(default_factory=dict)


def _locust_pid(pid: int) -> int | None:
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if _role(p) == "Locust":
                    return int(p.pid)
    return None


def _role(p: psutil.Process) -> str:
    cmd = " ".join(p.cmdline())
    if "mockprovider" in cmd:
        return "mock"
    if "loadtest.report.html" in cmd:
        return "report.html (drawn in a child of Locust)"
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
    load = load_scenario("sustained").load
    assert isinstance(load, OpenLoad), "sustained is an open model"
    max_vus = load.max_vus
    with tempfile.TemporaryDirectory(prefix="generator-memory-") as tmp:
        ready = Path(tmp) / "ready.json"
        cmd = [sys.executable, "-m", "loadtest", "run", "sustained", "--duration", f"{seconds:g}s",
               "--metrics-port", "0", "--ready-file", str(ready), "--report-dir", str(Path(tmp) / "report")]
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[Sample] = []
        after: list[Sample] = []
        tree: dict[str, list[float]] = {}
        try:
            deadline = time.monotonic() + 120
            while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            url = str(json.loads(ready.read_text())["metrics_url"])
            metrics_port = int(urllib.parse.urlsplit(url).port or 0)
            locust = _locust_pid(proc.pid)
            t0 = time.monotonic()
            while proc.poll() is None:
                got = _scrape(url)
                if got is not None and got[1] > 0:
                    rss, requests, vus, running = got
                    if vus is None:  # the arrivals are over: the VUs used stay what they reached
                        vus = samples[-1].vus_used if samples else 0.0
                    sample = Sample(time.monotonic() - t0, rss, requests, vus, _connections(locust, metrics_port))
                    (samples if running and not after else after).append(sample)
                    for role, rss in _tree_rss(proc.pid).items():
                        tree.setdefault(role, []).append(rss)
                time.sleep(SAMPLE_S)
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(120)
        summary = json.loads((Path(tmp) / "report" / "summary.json").read_text())
    return analyse(seconds, samples, after, summary, max_vus,
                   {role: (v[0], max(v), v[-1]) for role, v in sorted(tree.items())})


def analyse(seconds: float, samples: list[Sample], after: list[Sample], summary: dict[str, Any], max_vus: int,
            processes: dict[str, tuple[float, float, float]]) -> Result:
    """The fits and the 4-hour bounds of a run's samples."""
    if len(samples) < 5:
        raise RuntimeError(f"only {len(samples)} samples of the generator's memory: too short a run")
    warm = [s for s in samples if s.t >= WARMUP_SHARE * samples[-1].t]
    fitted = fit(warm)
    end = samples[-1]
    # Memory that does not grow is bounded by what it already reached; only a rising term is carried on,
    # requests to the 4-hour run's count and VUs to all of them (a falling one would promise a shrinking
    # process).
    peak = max(s.rss for s in warm)
    grown = (end.rss + max(0.0, fitted.per_request) * max(0.0, FOUR_HOURS_REQUESTS - end.requests)
             + max(0.0, fitted.per_vu) * max(0.0, max_vus - end.vus_used))
    plateau = [s for s in warm if s.vus_used == end.vus_used]
    plateau_fit = plateau_bound = None
    if len(plateau) >= 5 and plateau[-1].requests - plateau[0].requests >= end.requests / 3:
        plateau_fit = fit(plateau, with_vus=False)
        plateau_bound = max(max(s.rss for s in plateau),
                            end.rss + max(0.0, plateau_fit.per_request) * max(0.0, FOUR_HOURS_REQUESTS - end.requests)
                            + max(0.0, fitted.per_vu) * max(0.0, max_vus - end.vus_used))
    return Result(seconds=seconds, samples=samples, after=after, fit=fitted, plain=fit(warm, with_vus=False),
                  max_vus=max_vus, summary=summary, plateau=plateau, plateau_fit=plateau_fit,
                  plateau_extrapolated=plateau_bound,
                  extrapolated=max(peak, grown), processes=processes)


def _mb(b: float) -> str:
    return f"{b / 1e6:,.1f} MB"


def section(result: Result) -> str:
    samples, summary, seconds, f = result.samples, result.summary, result.seconds, result.fit
    short = " (the short run)" if seconds < 600 else ""
    # The run in tenths: the first sample, then the last of each tenth, so a trend (or a one-off peak) shows.
    picks = sorted({0, *(min(len(samples) - 1, round(k * (len(samples) - 1) / 10)) for k in range(1, 11))})
    peak_i = max(range(len(samples)), key=lambda i: samples[i].rss)
    rows = "\n".join(f"| {s.t:,.0f} s | {s.requests:,.0f} | {s.vus_used:,.0f} | {s.connections:,} | {_mb(s.rss)}"
                     + (" (peak)" if i == peak_i else "") + " |"
                     for i, s in ((i, samples[i]) for i in sorted({*picks, peak_i})))
    warm = (" A run this short weighs the allocator's warm-up heavily; the 10-minute form is "
            "`python bench/generator_memory.py 600`." if seconds < 600 else "")
    procs = "\n".join(f"| {role} | {_mb(a)} | {_mb(b)} | {_mb(c)} |" for role, (a, b, c) in result.processes.items())
    ending = ("" if not result.after else
              f"\n\nOnce the run had ended, while the gate judged and the reports were written (report.html by a "
              "child process, counted apart below), "
              f"{len(result.after)} more sample(s): RSS up to {_mb(max(a.rss for a in result.after))}. They are left "
              "out of the fit and the bound above: they are the report's one-off cost, not the run's.")
    end = samples[-1]
    reasons = "".join(f"\n- {r['text']}" for r in summary.get("reasons", []) if r.get("kind") != "note")
    why = f"\n\nThe verdict's reasons:{reasons}" if reasons and summary["verdict"] != "pass" else ""
    pf, pl = result.plateau_fit, result.plateau
    if pf is not None and result.plateau_extrapolated is not None:
        plateau = (f"\n\nThe plateau, once the VUs used had stopped rising ({pl[0].t:,.0f} s on, {len(pl)} samples, "
                   f"{pl[-1].requests - pl[0].requests:,.0f} requests, {end.vus_used:,.0f} VUs used): RSS "
                   f"{_mb(pl[0].rss)} to {_mb(pl[-1].rss)}, **{pf.per_request:,.2f} bytes per request** (residual "
                   f"{pf.residual / 1e3:,.0f} KB RMS), carried on the same way: "
                   f"**{_mb(result.plateau_extrapolated)}** at 4 hours.")
    else:
        plateau = ("\n\nNo plateau long enough to fit apart (the VUs used rose until less than a third of the "
                   "run's requests were left).")
    return f"""## Load generator memory over a long open-model run{short}

`python bench/generator_memory.py {seconds:g}`: `loadtest run sustained --duration {seconds:g}s --metrics-port 0`
(embedded mock, one Locust process), the Locust process's RSS, its recorded requests and the VUs it has used
(`loadtest_vus_busy_peak`) read from its own `/metrics` every {SAMPLE_S:g} s ({len(samples)} samples), its
established TCP connections (psutil) at the same moments. The run: {summary['requests']:,} requests,
{summary['rps'] or 0:,.0f} req/s, verdict {summary['verdict']}.{why}

| time | requests | VUs used | connections | RSS |
|---|---|---|---|---|
{rows}{ending}

Every process of the run, sampled with psutil at the same moments (RSS summed per role):

| process | first sample | peak | last sample |
|---|---|---|---|
{procs}

After the first {WARMUP_SHARE:.0%} of the run, least squares, RSS = a + b x requests + c x VUs used:
a = {_mb(f.base)}, **b = {f.per_request:,.2f} bytes per request**, **c = {f.per_vu / 1e3:,.1f} KB per newly used
VU** (residual {f.residual / 1e3:,.0f} KB RMS). RSS against requests alone: {result.plain.per_request:,.2f} bytes per
request (residual {result.plain.residual / 1e3:,.0f} KB RMS).

Extrapolated to the seed's 4-hour run, from the last sample ({_mb(end.rss)}, {end.vus_used:,.0f} VUs used): b carried
on to {FOUR_HOURS_REQUESTS / 1e6:.2f} M requests and c to all {result.max_vus} of the scenario's VUs (`max_vus`, the
most a run can use; a term at or below zero carries nothing on, and the bound is never below the highest
RSS after the warm-up): **{_mb(result.extrapolated)}**.{plateau}{warm}
"""


def run() -> str:
    return section(measure(DEFAULT_S))


if __name__ == "__main__":
    sys.stdout.write(section(measure(float(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_S)))
