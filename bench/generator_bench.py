"""Is the load generator the bottleneck? The flash_sale peak, and the latency Locust adds against wrk.

(a) The real `flash_sale` scenario, mock and Locust sharing the machine's two cores as
    they do in real use (nothing pinned): the hold stage's requests/s (847 users must
    offer >= 1,000 requests/s), latency, success rate, the gate's verdict and the
    generator health the SLA plugin records, with the CPU of the Locust and mock
    processes sampled from outside (psutil) while it runs, and the mock's own latency
    histogram (`/metrics`) for the surge and hold stages beside what Locust measured.
(b) The same mock route driven at the same concurrency by wrk (closed loop, N
    connections) and by the suite's own Locust users (closed model, N users, no think
    time), against one mock per configuration: at `--latency-scale 0` (no injected
    latency: the difference is the generator's own cost per request) and at the relay
    profile's real latency (P50 42 ms) at ~1,100 requests/s. Rounds alternate which tool
    goes first, side by side in one run, so machine noise hits both alike; the table
    gives every round and the medians. Locust's figures are the suite's own (the SLA
    recorder's HDR histogram, from summary.json); wrk's come from its own histogram.

Nothing here asserts on time: it is a benchmark, not a test.
"""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from procs import CLIENT_CPU, PYTHON, ROOT, SERVER_CPU, lua_post, mock_command, pinned, server, settle, wrk

from loadtest.loadmodel import ClosedLoad
from loadtest.scenario import load_scenario

ROUTE = "/relay/v1/images/generations"
# What the suite's relay users send (locustfiles/apis.py RelayApi): prompt, model, width, height.
REQUEST = {"prompt": "Minimalist white sneaker on marble surface, studio lighting, transparent background",
           "model": "midjourney-v7", "width": 1024, "height": 1024}
HEADERS = {"Authorization": "Bearer hs_bench_0001"}

FLASH_SALE = "flash_sale"
FLASH_SALE_TIMEOUT_S = 180.0

ROUNDS = 3
MEASURE_S = 4          # the measured window of each tool, each round
LOCUST_WARMUP_S = 1    # Locust's first stage (users connect), left out of its figures
WRK_WARMUP_S = 2       # once per mock, before the rounds
# (latency scale, concurrency): pure overhead without and with queueing, and the relay's
# real latency at about 1,100 requests/s (50 / (42 ms + a little) by Little's law).
CONFIGS = ((0.0, 1), (0.0, 50), (1.0, 50))
RELAY_P50_MS = 42.0

SAMPLE_S = 0.5


# --- CPU of the processes this module started, sampled from outside ---------------------------


def _role(proc: psutil.Process) -> str | None:
    try:
        if proc.name() == "wrk":
            return "wrk"
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return None
    if "mockprovider" in cmd:
        return "mock"
    if "-m locust" in cmd or "-m loadtest.locust" in cmd:
        return "locust"
    if "-m loadtest" in cmd:
        return "runner"
    return None


class Background:
    """A daemon thread that runs `_run` while the `with` block lasts; `_stop` tells it to end."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class CpuSampler(Background):
    """Every SAMPLE_S: CPU % (of one core) per role among this process's descendants, and the machine's."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[tuple[float, dict[str, float], float]] = []   # (wall time, role -> %, machine %)
        self.cores = psutil.cpu_count() or 1

    def _run(self) -> None:
        me = psutil.Process()
        known: dict[int, tuple[psutil.Process, str]] = {}
        psutil.cpu_percent(None)
        while not self._stop.wait(SAMPLE_S):
            fresh = set()
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                if child.pid in known:
                    continue
                role = _role(child)
                if role is None:
                    continue
                try:
                    child.cpu_percent(None)   # the first reading only starts the clock
                except psutil.Error:
                    continue
                known[child.pid] = (child, role)
                fresh.add(child.pid)
            row: dict[str, float] = defaultdict(float)
            for pid, (proc, role) in list(known.items()):
                if pid in fresh:
                    continue
                try:
                    row[role] += proc.cpu_percent(None)
                except psutil.Error:
                    del known[pid]
            machine = psutil.cpu_percent(None) * self.cores
            self.samples.append((time.time(), dict(row), machine))

    def stats(self, role: str, t0: float | None = None, t1: float | None = None) -> dict[str, float] | None:
        values = [(m if role == "machine" else row[role]) for t, row, m in self.samples
                  if (t0 is None or t >= t0) and (t1 is None or t <= t1) and (role == "machine" or role in row)]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "peak": max(values), "n": len(values)}

    def others(self, t0: float | None = None, t1: float | None = None) -> dict[str, float] | None:
        """Machine CPU not used by anything this module started: the noise."""
        values = [max(0.0, m - sum(row.values())) for t, row, m in self.samples
                  if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        if not values:
            return None
        return {"mean": statistics.fmean(values), "peak": max(values), "n": len(values)}


class MockScraper(Background):
    """The embedded mock's own latency histogram (`GET /metrics`), scraped every second while a run goes.

    Its `mock_request_duration_seconds` is the time from the relay handler's start to its
    answer (capacity queue and injected latency included; the client, the network and the
    mock's own event-loop delay before the handler not), so comparing it with what Locust
    measured says where an excess latency comes from.
    """

    _URL = re.compile(r"mock providers on (http://\S+)")
    _BUCKET = re.compile(r'^mock_request_duration_seconds_bucket\{(?=[^}]*provider="relay")[^}]*le="([^"]+)"[^}]*\}'
                         r"\s+([0-9.e+]+)$", re.M)

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log
        # (wall time, monotonic time, le -> cumulative count)
        self.scrapes: list[tuple[float, float, dict[float, float]]] = []

    def _run(self) -> None:
        url = None
        while url is None and not self._stop.wait(0.2):
            try:
                m = self._URL.search(self.log.read_text())
            except OSError:
                m = None
            url = m.group(1) if m else None
        while url is not None and not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(url + "/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except OSError:
                continue
            at, mono = time.time(), time.monotonic()
            buckets = {float(le): float(n) for le, n in self._BUCKET.findall(text)}
            if buckets:
                self.scrapes.append((at, mono, buckets))

    def window(self, t0: float, t1: float) -> dict[str, Any] | None:
        """Answers between the last scrape at or before t0 and the last at or before t1 (so the
        stage's first second is in, and up to a second before it)."""
        before = [s for s in self.scrapes if s[0] <= t0]
        upto = [s for s in self.scrapes if s[0] <= t1]
        if not before or not upto or upto[-1][0] <= before[-1][0]:
            return None
        (a_t, a_mono, a), (b_t, b_mono, b) = before[-1], upto[-1]
        cum = {le: b[le] - a.get(le, 0.0) for le in sorted(b)}
        total = cum.get(float("inf"), 0.0)
        if total <= 0:
            return None

        def upper(q: float) -> float:
            return next(le for le, n in cum.items() if n >= q * total)

        return {"answers": total, "from": a_t, "to": b_t, "span_s": b_mono - a_mono,
                "p50_le_s": upper(0.50), "p99_le_s": upper(0.99),
                "within": {le: n / total for le, n in cum.items() if le != float("inf")}}


# --- `python -m loadtest run`, stopped whatever happens ----------------------------------------


def _stop_tree(proc: subprocess.Popen) -> None:
    """Stop a runner that is still going, and the Locust and mock it started."""
    if proc.poll() is not None:
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    for p in [*descendants]:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    proc.terminate()
    _, alive = psutil.wait_procs(descendants, timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def loadtest_run(args: list[str], report_dir: Path, *, cpu: str | None = None,
                 timeout_s: float) -> tuple[int, dict[str, Any], float, float]:
    """`python -m loadtest run ARGS --report-dir DIR` (optionally pinned).

    (exit code, summary.json, test start as a Unix time, how uncertain that start is in s).
    """
    cmd = [PYTHON, "-m", "loadtest", "run", *args, "--report-dir", str(report_dir)]
    if cpu is not None:
        cmd = pinned(cmd, cpu)
    log = report_dir.parent / f"{report_dir.name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout_s)
        finally:
            _stop_tree(proc)
    summary_path = report_dir / "summary.json"
    if not summary_path.exists():
        raise RuntimeError(f"{' '.join(cmd)} wrote no summary.json (exit {code}):\n"
                           + log.read_text()[-3000:])
    summary = json.loads(summary_path.read_text())
    return (code, summary, *_test_start(log.read_text(), summary))


# The plugin logs this line at test_start, right where it starts the run's clock (Locust's
# log format: local time, milliseconds).
_START_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] \S+/INFO/loadtest: scenario ", re.M)


def _test_start(log: str, summary: dict[str, Any]) -> tuple[float, float]:
    """(test start as a Unix time, its uncertainty in s): from the log to the millisecond, else from
    summary.json's started_at, which keeps whole seconds (truncated, so up to 1 s early)."""
    m = _START_LINE.search(log)
    if m:
        return time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000, 0.01
    return datetime.fromisoformat(summary["started_at"].replace("Z", "+00:00")).timestamp(), 1.0


def _stage(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in summary["stages"] if s["name"] == name)


# --- (a) flash_sale ------------------------------------------------------------------------------


def flash_sale() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="genbench-") as tmp:
        report = Path(tmp) / "flash_sale"
        with CpuSampler() as sampler, MockScraper(Path(tmp) / "flash_sale.log") as scraper:
            t0 = time.monotonic()
            code, summary, start, slack = loadtest_run([FLASH_SALE], report, timeout_s=FLASH_SALE_TIMEOUT_S)
            wall = time.monotonic() - t0
    hold = _stage(summary, "hold")
    # CPU samples certainly inside each stage: a sample covers the SAMPLE_S before its time stamp.
    windows = {st["name"]: (start + st["start_s"] + slack + SAMPLE_S, start + st["end_s"])
               for st in summary["stages"]}
    windows["run"] = (None, None)
    cpu = {role: {w: sampler.stats(role, *span) for w, span in windows.items()}
           for role in ("locust", "mock", "runner", "machine")}
    cpu["others"] = {w: sampler.others(*span) for w, span in windows.items()}
    mock_view = {st["name"]: scraper.window(start + st["start_s"], start + st["end_s"])
                 for st in summary["stages"] if st["name"] in ("surge", "hold")}
    return {"exit_code": code, "summary": summary, "start": start, "hold": hold, "cpu": cpu, "wall_s": wall,
            "cores": sampler.cores, "mock_view": mock_view, "shape": _shape(FLASH_SALE)}


def _shape(name: str) -> str:
    """The scenario's stages in words, read from its file (it may change)."""
    load = load_scenario(name).load
    assert isinstance(load, ClosedLoad)
    parts, prev = [], 0
    for st in load.stages:
        if st.users == prev:
            parts.append(f"{st.name} {st.duration_s:g} s at {st.users} users")
        else:
            rate = f" at {st.spawn_rate:g}/s" if st.spawn_rate else ""
            parts.append(f"{st.name} {st.duration_s:g} s, {prev} → {st.users} users{rate}")
        prev = st.users
    lo, hi = load.think_time_s
    return ", ".join(parts) + f"; think time {lo:g}–{hi:g} s"


# --- (b) Locust against wrk ------------------------------------------------------------------------


def scenario_toml(users: int) -> str:
    spawn = users * 20   # all users within 50 ms
    return f"""name = "generator_bench_{users}"
description = "{users} relay users, no think time (bench/generator_bench.py)"

[target]
name = "relay"
model = "midjourney-v7"

[client]
keys = {users}
timeout = "10s"

[load]
model = "closed"
stages = [
  {{ name = "warmup", duration = "{LOCUST_WARMUP_S}s", users = {users}, spawn_rate = {spawn} }},
  {{ name = "measure", duration = "{MEASURE_S}s", users = {users} }},
]

[gate]
min_samples = 1
"""


def _wrk_figures(r: dict[str, Any]) -> dict[str, Any]:
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["status_errors"] + r["timeouts"]
    return {"rps": r["rps"], "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "requests": r["requests"],
            "errors": errors}


def _locust_figures(summary: dict[str, Any]) -> dict[str, Any]:
    m = _stage(summary, "measure")
    return {"rps": m["rps"], "p50_ms": m["latency_ms"]["p50"], "p99_ms": m["latency_ms"]["p99"],
            "requests": m["requests"], "errors": m["failures"],
            "loop_lag_p95_ms": summary["generator"]["figures"]["loop_lag_p95_ms"],
            "saturated": summary["generator"]["saturated"]}


def side_by_side(scale: float, users: int, tmp: Path) -> dict[str, Any]:
    script = lua_post(REQUEST, HEADERS)
    toml = tmp / f"generator_bench_{scale:g}_{users}.toml"
    toml.write_text(scenario_toml(users))
    rounds = []
    with server(mock_command("--latency-scale", f"{scale:g}", "--no-limits", "--seed", "0")) as url:
        wrk(url + ROUTE, script, connections=users, seconds=WRK_WARMUP_S)   # first connections, caches, clocks
        for i in range(ROUNDS):
            order = ("wrk", "locust") if i % 2 == 0 else ("locust", "wrk")
            result: dict[str, Any] = {}
            for tool in order:
                settle()
                with CpuSampler() as sampler:
                    if tool == "wrk":
                        t0 = time.time()
                        fig = _wrk_figures(wrk(url + ROUTE, script, connections=users, seconds=MEASURE_S))
                        w0, w1 = t0 + 0.5, time.time()
                    else:
                        code, summary, start, slack = loadtest_run(
                            [str(toml), "--mock-url", url], tmp / f"locust_{scale:g}_{users}_{i}", cpu=CLIENT_CPU,
                            timeout_s=MEASURE_S + LOCUST_WARMUP_S + 60)
                        fig = _locust_figures(summary)
                        fig["exit_code"] = code
                        m = _stage(summary, "measure")
                        w0, w1 = start + m["start_s"] + slack + SAMPLE_S, start + m["end_s"]
                client = sampler.stats(tool, w0, w1)
                mock = sampler.stats("mock", w0, w1)
                fig["client_cpu"] = client["mean"] if client else None
                fig["mock_cpu"] = mock["mean"] if mock else None
                result[tool] = fig
            rounds.append(result)
    med = {}
    for tool in ("wrk", "locust"):
        med[tool] = {k: statistics.median(r[tool][k] for r in rounds)
                     for k in ("rps", "p50_ms", "p99_ms", "client_cpu", "mock_cpu")
                     if all(r[tool][k] is not None for r in rounds)}
    med["d_p50_ms"] = statistics.median(r["locust"]["p50_ms"] - r["wrk"]["p50_ms"] for r in rounds)
    med["d_p99_ms"] = statistics.median(r["locust"]["p99_ms"] - r["wrk"]["p99_ms"] for r in rounds)
    med["rps_ratio"] = statistics.median(r["locust"]["rps"] / r["wrk"]["rps"] for r in rounds)
    return {"scale": scale, "users": users, "rounds": rounds, "median": med}


# --- the Markdown section ------------------------------------------------------------------------


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _pct(s: dict[str, float] | None, key: str) -> str:
    return "—" if not s else f"{s[key]:.0f}"


def _worst_seconds(summary: dict[str, Any], stage: str, n: int = 3) -> str:
    """The stage's seconds with the highest P99 in the run's per-second timeline (by completion time)."""
    st = _stage(summary, stage)
    rows = [r for r in summary.get("timeline", []) if st["start_s"] <= r["t_s"] < st["end_s"] + 1
            and r.get("p99_ms") is not None]
    worst = sorted(rows, key=lambda r: r["p99_ms"], reverse=True)[:n]
    label = f"{stage} stage: worst seconds by P99 (timeline)"
    if not worst:
        return f"| {label} | — |"
    return f"| {label} | " + "; ".join(f"+{r['t_s']} s: {r['p99_ms']:.0f} ms ({r['users']} users)"
                                        for r in sorted(worst, key=lambda r: r["t_s"])) + " |"


def _mock_view(stage: str, m: dict[str, Any] | None, start: float) -> str:
    label = f"{stage} stage as the mock measured it (`/metrics` buckets)"
    if m is None:
        return f"| {label} | — |"
    within = m["within"]
    return (f"| {label} | P50 ≤ {m['p50_le_s'] * 1000:g} ms, P99 ≤ {m['p99_le_s'] * 1000:g} ms; "
            f"{within.get(0.1, 0) * 100:.2f} % within 100 ms, {within.get(0.25, 0) * 100:.2f} % within 250 ms "
            f"({m['answers']:,.0f} answers from +{m['from'] - start:.1f} s to +{m['to'] - start:.1f} s of the run, "
            f"{m['span_s']:.1f} s) |")


def _flash_sale_md(fs: dict[str, Any]) -> list[str]:
    s, hold = fs["summary"], fs["hold"]
    fig = s.get("generator_figures") or {}
    gen = s.get("generator") or {}
    lat, hlat, surge = s["latency_ms"], hold["latency_ms"], _stage(s, "surge")["latency_ms"]
    planned_s = max(st["end_s"] for st in s["stages"])
    hold_limit = next((f"{t['op']} {t['limit']:,.0f}" for t in s.get("thresholds", [])
                       if t["metric"] == "requests" and t["filters"].get("stage") == "hold"), None)
    out = ["### (a) flash_sale with the mock on the same machine", "",
           f"`python -m loadtest run {FLASH_SALE} --report-dir <tmp>` (the scenario's own {planned_s:.0f} s: "
           f"{fs['shape']}; the embedded mock with seed {(s.get('mock') or {}).get('seed')} at latency scale "
           f"{(s.get('mock') or {}).get('latency_scale')}, limits and injected faults on). Nothing pinned: "
           f"Locust, the mock and the runner share the machine's {fs['cores']} cores as in real use. Figures "
           f"from its summary.json; CPU sampled every {SAMPLE_S:g} s with psutil from outside (percent of one "
           "core).", "",
           "| figure | value |", "| --- | ---: |",
           f"| hold stage requests/s{f' (target {hold_limit})' if hold_limit else ''} | **{hold['rps']:,.0f}** |",
           f"| hold stage requests (failures) | {hold['requests']:,} ({hold['failures']:,}) |",
           f"| peak users | {s['peak_users']:,} |",
           f"| requests overall / overall requests/s | {s['requests']:,} / {s['rps']:,.0f} |",
           f"| P50 / P99 overall (ms) | {_ms(lat['p50'])} / {_ms(lat['p99'])} |",
           f"| P50 / P99 surge stage (ms) | {_ms(surge['p50'])} / {_ms(surge['p99'])} |",
           f"| P50 / P99 hold stage (ms) | {_ms(hlat['p50'])} / {_ms(hlat['p99'])} |",
           _worst_seconds(s, "surge"),
           _mock_view("surge", fs["mock_view"].get("surge"), fs["start"]),
           _mock_view("hold", fs["mock_view"].get("hold"), fs["start"]),
           f"| success rate | {s['success_rate'] * 100:.3f} % |" if s.get("success_rate") is not None
           else "| success rate | — |",
           f"| retries / failovers / status codes | {s['retries']:,} / {s['failovers']:,} / "
           + ", ".join(f"{k}: {v:,}" for k, v in s["status_codes"].items()) + " |",
           f"| gate verdict (exit code) | **{s['verdict']}** ({fs['exit_code']}) |",
           f"| generator saturated (plugin) | {gen.get('saturated')} |",
           f"| generator cpu_max / cpu_hot_share (plugin) | {fig.get('cpu_max', 0):.1f} % / "
           f"{fig.get('cpu_hot_share', 0):.3f} |",
           f"| generator loop_lag_p95_ms (plugin) | {fig.get('loop_lag_p95_ms', 0):.2f} |",
           f"| run length (Locust) / wall time incl. start-up | {s['duration_s']:.0f} s / {fs['wall_s']:.0f} s |",
           ""]
    out += ["The mock's view is its own `mock_request_duration_seconds` histogram, scraped every second and "
            "differenced from the last scrape before the stage starts to the last one inside it: time from "
            "the relay handler's start to its answer (injected latency and capacity queue included; Locust, the "
            "network and the mock's event-loop delay before the handler not), bucket upper bounds. The plugin's "
            "CPU figures are its own once-a-second psutil readings of the Locust process; the samples below "
            "are taken from outside every 0.5 s.", ""]
    if s.get("reasons"):
        out += ["Gate: " + "; ".join(s["reasons"]), ""]
    if s.get("notes"):
        out += ["Notes: " + "; ".join(s["notes"]), ""]
    th = [t for t in s.get("thresholds", [])]
    if th:
        out += ["| threshold | observed | verdict |", "| --- | ---: | --- |"]
        for t in th:
            obs = "—" if t["observed"] is None else f"{t['observed']:,.4g} {t['unit']}".strip()
            out.append(f"| `{t['label']}` | {obs} | {t['verdict']} |")
        out.append("")
    stages = [st["name"] for st in s["stages"]]
    out += ["| process (CPU % of one core) | " + " | ".join(f"mean, {n}" for n in stages)
            + " | mean, whole run | peak (0.5 s sample) |",
            "| --- |" + " ---: |" * (len(stages) + 2)]
    names = {"locust": "Locust (`python -m locust`)", "mock": "mock (`python -m mockprovider`)",
             "runner": "runner (`python -m loadtest run`)",
             "machine": f"whole machine (of {fs['cores'] * 100} %)", "others": "everything else on the machine"}
    for role in ("locust", "mock", "runner", "machine", "others"):
        c = fs["cpu"][role]
        out.append(f"| {names[role]} | " + " | ".join(_pct(c[n], "mean") for n in stages)
                   + f" | {_pct(c['run'], 'mean')} | {_pct(c['run'], 'peak')} |")
    out.append("")
    return out


def _side_by_side_md(results: list[dict[str, Any]]) -> list[str]:
    out = ["### (b) What the generator adds per request: Locust against wrk on the same mock", "",
           f"One mock per configuration, `python -m mockprovider --port 0 --seed 0 --latency-scale S --no-limits`, "
           f"pinned to CPU {SERVER_CPU}; both clients pinned to CPU {CLIENT_CPU} (in real use Locust and the mock "
           f"share both cores, as in (a)). Both drive `POST {ROUTE}` with `Authorization: Bearer hs_...`, closed "
           f"loop, N connections / users, no think time:", "",
           f"- wrk: `wrk -t1 -cN -d{MEASURE_S}s --timeout=10s -s post.lua URL` with the body "
           f"`{json.dumps(REQUEST)}` (one {WRK_WARMUP_S} s warm-up per mock first); percentiles from wrk's "
           "histogram, printed by a Lua `done()`.",
           f"- Locust: `python -m loadtest run generator_bench_N.toml --mock-url URL --report-dir DIR`, the "
           f"suite's relay users (Faker catalogue prompts, {REQUEST['model']}, 1024×1024, `[client] keys = N`), "
           f"`[load] model = \"closed\"`, stages `warmup` ({LOCUST_WARMUP_S} s, N users at once) and `measure` "
           f"({MEASURE_S} s, N users); figures are the `measure` stage's in summary.json (the SLA recorder's HDR "
           "histogram). Locust's time includes what its user does around the request (prompt, JSON, "
           "checks, the request event).",
           f"- {ROUNDS} rounds per configuration, alternating which tool goes first; the medians row gives each "
           "column's median, and Δ is the median of the per-round differences Locust − wrk.", "",
           "Client CPU and mock CPU are the mean CPU % of one core over the measured window (psutil, "
           f"every {SAMPLE_S:g} s).", ""]
    for res in results:
        scale, n, med = res["scale"], res["users"], res["median"]
        title = ("no injected latency: the generator's own cost" if scale == 0
                 else f"the relay profile's real latency (P50 {RELAY_P50_MS:g} ms)")
        out += [f"#### Latency scale {scale:g}, N = {n} ({title})", "",
                "| round | tool | req/s | P50 ms | P99 ms | requests | errors | client CPU % | mock CPU % |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for i, r in enumerate(res["rounds"], 1):
            for tool in ("wrk", "locust"):
                f = r[tool]
                out.append(f"| {i} | {tool} | {f['rps']:,.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | "
                           f"{f['requests']:,} | {f['errors']} | "
                           f"{'—' if f['client_cpu'] is None else format(f['client_cpu'], '.0f')} | "
                           f"{'—' if f['mock_cpu'] is None else format(f['mock_cpu'], '.0f')} |")
        for tool in ("wrk", "locust"):
            m = med[tool]
            out.append(f"| **median** | {tool} | **{m['rps']:,.0f}** | **{m['p50_ms']:.2f}** | "
                       f"**{m['p99_ms']:.2f}** | | | {m.get('client_cpu', float('nan')):.0f} | "
                       f"{m.get('mock_cpu', float('nan')):.0f} |")
        line = (f"Locust − wrk: **Δ P50 {med['d_p50_ms']:+.2f} ms, Δ P99 {med['d_p99_ms']:+.2f} ms**; "
                f"throughput Locust / wrk **{med['rps_ratio']:.2f}**")
        if scale > 0:
            line += f"; Δ P50 is {med['d_p50_ms'] / RELAY_P50_MS * 100:+.1f} % of the profile's {RELAY_P50_MS:g} ms"
        lags = [r["locust"]["loop_lag_p95_ms"] for r in res["rounds"]]
        line += f". Locust's own loop lag P95 (plugin): {', '.join(f'{x:.1f}' for x in lags)} ms."
        out += ["", line, ""]
    return out


def run() -> str:
    started = time.monotonic()
    fs = flash_sale()
    with tempfile.TemporaryDirectory(prefix="genbench-") as tmp:
        results = [side_by_side(scale, n, Path(tmp)) for scale, n in CONFIGS]
    wall = time.monotonic() - started
    out = ["## Load generator: is it the bottleneck?", ""]
    out += _flash_sale_md(fs)
    out += _side_by_side_md(results)
    out += [f"_Whole module: {wall:.0f} s of wall time; `python bench/generator_bench.py` runs it alone._", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(run())
