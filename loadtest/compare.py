"""`make compare`: the seed's five workloads against four targets, measured beside the published table.

Every cell is a real Locust run (through locustfiles/imagegen.py, as `make loadtest`
runs) against a mock of its own, started by the run: seed fixed, real latencies, and
the mock's record of the run beside the client's (a shared mock's record is reset by
every run that starts). Runs that do not disturb each other go side by side: the
direct providers serve a few dozen requests a second, so theirs share a phase; the
relay's millisecond runs go alone. What each row
measures (also written into compare.json):

- single image P50 / P99: users sending one request at a time, fewer than the
  provider's slots, so nothing queues: the provider's own latency distribution.
- batch 10, average per image: batches of 10 sent at once through a semaphore of
  10 (the seed's batch_generate); a batch's wall time divided by 10, averaged.
- batch 10, per image, native: the same ten images the provider's own way (OpenAI
  and the relay n = 10 in one request, Vertex sampleCount 4 + 4 + 2, Midjourney three
  grids of four), each user sending one batch and waiting for its end; the two
  readings, the per-extra-image cost each needs and which one the seed's figures
  fit are worked out in loadtest/batching.py and written into compare.json.
- concurrent 847, peak: 847 requests started together; the median latency of the
  burst. The median is the reading that keeps the relay's row possible: its
  published 67 ms is below its idle P99 of 89 ms, so it cannot be a tail figure.
- sustained throughput: completed requests per second while more work is offered
  than the target can take (direct providers), or at the 1,200 req/s the seed
  names for the relay (its "1,200+" is a lower bound).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import tomli_w

from mockprovider.profile import Profile, load_profiles

from . import batching, seed
from .calibrate import burst_median, service_draws
from .cost import monthly_projection
from .recorder import Recorder, Selection
from .report.display import limit_text
from .scenario import load_scenario
from .summary import iso_utc
from .thresholds import Threshold

TARGETS = ("midjourney-v7", "dall-e-4", "imagen-4", "relay")
DIRECT = TARGETS[:3]
RELAY_MODEL = "midjourney-v7"
SEED = 42
SLA_SCENARIO = "flash_sale"    # the scenario whose thresholds are the SLA compare.html states

ROWS = [  # (metric, label, unit, workload, definition)
    ("single_p50", "Single image P50", "ms", "single",
     "median latency of one-at-a-time requests from fewer users than the provider has slots"),
    ("single_p99", "Single image P99", "ms", "single", "99th percentile of the same requests"),
    ("batch10_per_image", "Batch 10, average per image", "ms", "batch_10",
     "wall time of a batch of 10 sent at once through a semaphore of 10, divided by 10, averaged over batches"),
    ("batch10_native_per_image", "Batch 10, per image, native", "ms", "batch_10_native",
     "the same ten images sent the provider's own way: one request for n = 10 (OpenAI, the relay), Vertex's "
     "sampleCount 4 + 4 + 2 in three requests at once, Midjourney's three IMAGINE grids of four at once; a batch's "
     "wall time divided by 10, averaged over batches that each ran to their end"),
    ("burst847_peak", "Concurrent 847, peak", "ms", "concurrent_847",
     "median latency of 847 requests started together"),
    ("sustained_rps", "Sustained throughput", "req/s", "sustained",
     "successful completions per second in the hold stage, offered more than the target can take "
     "(the relay: offered 1,200 req/s, the seed's lower bound)"),
]


# The native batch runs start this long before the bursts, so their processes' start-up is not the bursts'.
NATIVE_HEAD_START_S = 4.0
# A row measured against another row's published figure (the seed has one batch row, read two ways).
PUBLISHED_AS = {"batch10_native_per_image": "batch10_per_image"}


@dataclass
class Plan:
    """Durations and sizes; `reduced()` is the short version `make test` runs."""
    single_s: float = 75.0
    batch_s: float = 60.0
    sustained_s: float = 60.0
    warmup_s: float = 10.0
    direct_single_users: int = 60
    relay_single_users: int = 4
    batch_users: int = 5
    native_batches: int = 20      # native batch runs: users, each sending one batch of ten
    relay_sustained_rps: float = 1200.0
    burst_size: int = 847
    burst_s: dict[str, float] = field(default_factory=dict)
    reduced: bool = False

    @classmethod
    def short(cls) -> Plan:
        return cls(single_s=10, batch_s=12, sustained_s=10, warmup_s=4, direct_single_users=30, batch_users=3,
                   native_batches=5, relay_sustained_rps=300, burst_size=200, reduced=True)

    def burst_duration(self, profile: Profile) -> float:
        if profile.name in self.burst_s:
            return self.burst_s[profile.name]
        # Long enough for the whole burst to drain through the slots, plus a slow last request.
        drain = self.burst_size / profile.saturation_rps + 2.5 * profile.latency.p99_ms / 1000.0
        return float(max(6, math.ceil(drain)))


def _target(target: str) -> dict[str, Any]:
    return {"name": target, "model": RELAY_MODEL} if target == "relay" else {"name": target}


def _scenario(name: str, target: str, load: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": f"compare: {name} on {target}", "target": _target(target),
            "mock": {"seed": SEED}, "client": {"timeout": "30s", "retry": False, **client}, "load": load,
            "gate": {"min_samples": 1}}   # no [thresholds]: measured, not gated


def scenarios(plan: Plan, profiles: dict[str, Profile]) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """Phases of (target, scenario) runs; the runs of one phase go side by side."""
    def single(t: str) -> dict[str, Any]:
        users = plan.relay_single_users if t == "relay" else plan.direct_single_users
        return _scenario("single", t, {"model": "closed", "stages": [
            {"name": "steady", "duration": f"{plan.single_s}s", "users": users, "spawn_rate": users}]},
            {"keys": 100, "poll_interval": "0.1s"})

    def batch(t: str) -> dict[str, Any]:
        return _scenario("batch_10", t, {"model": "closed", "think_time": ["0.2s", "0.4s"], "stages": [
            {"name": "steady", "duration": f"{plan.batch_s}s", "users": plan.batch_users,
             "spawn_rate": plan.batch_users}]},
            {"keys": 100, "batch": {"size": 10, "concurrency": 10}, "poll_interval": "0.1s"})

    def burst(t: str) -> dict[str, Any]:
        # Everyone starts at once and sends one request; the think time outlasts the run.
        n = plan.burst_size
        return _scenario("concurrent_847", t, {"model": "closed", "think_time": "1h", "stages": [
            {"name": "burst", "duration": f"{plan.burst_duration(profiles[t])}s", "users": n,
             "spawn_rate": 100_000}]}, {"keys": 100, "poll_interval": "1s"})

    def sustained(t: str) -> dict[str, Any]:
        if t == "relay":
            return _scenario("sustained", t, {"model": "open", "max_vus": 600, "stages": [
                {"name": "warmup", "duration": f"{plan.warmup_s}s", "rate": plan.relay_sustained_rps},
                {"name": "hold", "duration": f"{plan.sustained_s}s", "rate": plan.relay_sustained_rps}]},
                {"keys": 100})
        users = 2 * profiles[t].capacity.slots     # twice the slots: the provider is saturated
        return _scenario("sustained", t, {"model": "closed", "stages": [
            {"name": "warmup", "duration": f"{plan.warmup_s}s", "users": users, "spawn_rate": users},
            {"name": "hold", "duration": f"{plan.sustained_s}s", "users": users}]},
            {"keys": 100, "poll_interval": "0.5s"})

    return [("single image, direct providers", [(t, single(t)) for t in DIRECT]),
            ("single image, relay", [("relay", single("relay"))]),
            ("batch of 10", [(t, batch(t)) for t in TARGETS] + [("relay", native_batch(plan, profiles, "relay"))]),
            # The direct providers' phases first: the direct native batches run beside them (main() below), and
            # must be over before the relay's millisecond figures are measured.
            ("847 at once, direct providers", [(t, burst(t)) for t in DIRECT]),
            ("sustained, direct providers", [(t, sustained(t)) for t in DIRECT]),
            ("847 at once, relay", [("relay", burst("relay"))]),
            ("sustained, relay", [("relay", sustained("relay"))])]


def native_batch(plan: Plan, profiles: dict[str, Profile], t: str) -> dict[str, Any]:
    """Each user sends one batch of ten the provider's way and waits for its end (think time outlasts the run):
    batches of a minute (dall-e-4's one request for ten) would be cut off by a window, biasing the mean."""
    reading = next(r for r in batching.readings(profiles[t], RELAY_MODEL if t == "relay" else None)
                   if r.name == "native")
    lat = profiles[t].latency
    wall = batching.Model(lat, reading, reps=4000).wall_quantile_ms(lat.per_extra_image, 0.999)
    duration = max(6, math.ceil(wall / 1000 * 1.15 + 2))
    n = plan.native_batches
    return _scenario("batch_10_native", t, {"model": "closed", "think_time": "1h", "stages": [
        {"name": "batch", "duration": f"{duration}s", "users": n, "spawn_rate": n}]},
        {"keys": 100, "batch": {"size": 10, "concurrency": 10, "mode": "native"}, "poll_interval": "0.1s"})


# A run started by start_phase: (workload, target, report folder, `loadtest run`, its log file).
Started = tuple[str, str, Path, subprocess.Popen[bytes], Any]


def start_phase(title: str, runs: list[tuple[str, dict[str, Any]]], outdir: Path) -> list[Started]:
    procs: list[Started] = []
    longest = 0.0
    for target, scenario in runs:
        rundir = outdir / "runs" / f"{scenario['name']}-{target}"
        rundir.mkdir(parents=True, exist_ok=True)
        path = rundir / "scenario.toml"
        path.write_text(tomli_w.dumps(scenario))
        logf = (rundir / "locust.log").open("wb")
        cmd = [sys.executable, "-m", "loadtest", "run", str(path), "--report-dir", str(rundir)]
        procs.append((scenario["name"], target, rundir, subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT),
                      logf))
        stages = scenario["load"]["stages"]
        longest = max(longest, sum(float(s["duration"].rstrip("s")) for s in stages))
    print(f"  {title}: {', '.join(t for t, _ in runs)} (~{longest:.0f} s)", flush=True)
    return procs


def finish_phase(title: str, procs: list[Started]
                 ) -> dict[tuple[str, str], Path]:
    out = {}
    for name, target, rundir, proc, logf in procs:
        code = proc.wait()
        logf.close()
        if not (rundir / "summary.json").exists():
            raise RuntimeError(f"the {title} run on {target} wrote no summary (exit {code}); "
                               f"see {rundir / 'locust.log'}")
        out[(name, target)] = rundir
    return out


def run_phase(title: str, runs: list[tuple[str, dict[str, Any]]], outdir: Path) -> dict[tuple[str, str], Path]:
    """Runs side by side; their report folders by (workload, target)."""
    return finish_phase(title, start_phase(title, runs, outdir))


@cache   # each run's files are read once, though several cells come from one run
def _summary(rundir: Path) -> dict[str, Any]:
    return json.loads((rundir / "summary.json").read_text())


@cache
def _successful(rundir: Path) -> Selection:
    """The run's successful requests, from its exact recording."""
    recorder = Recorder.from_export(json.loads((rundir / "recording.json").read_text()))
    return recorder.select([("expected_response", "true")])


def failed(rundir: Path) -> int:
    """Requests of the run that did not succeed (refused, failed, or past the client's timeout)."""
    summary = _summary(rundir)
    return int(summary.get("failures", 0)) + int(summary.get("dropped", 0))


def measure(metric: str, rundir: Path) -> tuple[float | None, int]:
    """(measured value, samples behind it) for one row from one run.

    Latencies are those of successful requests only (from the run's exact recording): a
    refusal answered in a millisecond is not a generation time. Throughput is successful
    completions per second, counted by when they ended, over the hold stage.
    """
    summary = _summary(rundir)
    if metric in ("batch10_per_image", "batch10_native_per_image"):
        batches = summary.get("batches")
        return (batches["mean_per_image_ms"], batches["batches"]) if batches else (None, 0)
    if metric == "sustained_rps":
        hold = next((s for s in summary.get("stages", []) if s["name"] == "hold"), None)
        if hold is None:
            return None, 0
        rows = [r for r in summary.get("timeline", []) if hold["start_s"] <= r["t_s"] < hold["end_s"]]
        done = sum(r["requests"] - r["failures"] for r in rows)
        return (done / (hold["end_s"] - hold["start_s"]), done) if rows else (None, 0)
    ok = _successful(rundir)
    if not ok.requests:
        return None, 0
    q = 99.0 if metric == "single_p99" else 50.0
    return ok.percentile(q), ok.requests


# The latency rows the mock's own record also measures: (percentile key in its summary).
PROVIDER_SIDE = {"single_p50": "p50", "single_p99": "p99", "burst847_peak": "p50"}


def provider_measure(metric: str, rundir: Path) -> float | None:
    """The same percentile as the mock recorded it (answered requests' total time, arrival to answer):
    beside the client's figure it shows how much of a deviation is this machine's, not the profile's."""
    key = PROVIDER_SIDE.get(metric)
    if key is None:
        return None
    summary = _summary(rundir)
    target = summary["target"]["name"]
    side = summary.get("provider_side") or {}
    mine: dict[str, Any] = next((p for p in side.get("providers") or [] if p.get("provider") == target), {})
    value = ((mine.get("latency_ms") or {}).get("total") or {}).get(key)
    return None if value is None else float(value)


def burst_median_model(profile: Profile, n: int = 847) -> float:
    """Median latency of n simultaneous requests on the profile's slots (FIFO), by simulation."""
    return burst_median(service_draws(profile.latency, n, reps=20, seed=1), profile.capacity.slots)


def contradictions(cells: list[dict[str, Any]], profiles: dict[str, Profile]) -> list[dict[str, str]]:
    """Where the seed's figures cannot all come out of one consistent model, and why."""
    relay = profiles["relay"]
    at_1200 = relay.with_changes(capacity=relay.capacity.__class__(
        slots=max(1, round(1200 * relay.latency.mean_ms / 1000)), queue=relay.capacity.queue))
    burst_at_1200 = burst_median_model(at_1200)
    out = [{
        "title": "The relay's sustained and peak rows",
        "explanation": (
            f"A relay that saturated at 1,200 req/s with a {relay.latency.mean_ms:.0f} ms mean service time has "
            f"{at_1200.capacity.slots} slots; 847 requests started together would then wait their turn and see a "
            f"median of about {burst_at_1200:.0f} ms, not the published 67 ms. The profile keeps the 67 ms and gives "
            f"the relay {relay.capacity.slots} slots (saturating near {relay.saturation_rps:,.0f} req/s), so the "
            "sustained figure holds only as the lower bound its '+' says.")}]
    for t in DIRECT:
        p = profiles[t]
        model = burst_median_model(p)
        pub = seed.LATENCY_TABLE["burst847_peak"][t]
        out.append({
            "title": f"{t}: the burst row against the throughput row",
            "explanation": (
                f"Slots chosen so the provider sustains its published {seed.LATENCY_TABLE['sustained_rps'][t]:g} req/s "
                f"({p.capacity.slots} slots x {p.latency.mean_ms / 1000:.2f} s mean service) make 847 simultaneous "
                f"requests queue for a median of {model / 1000:.1f} s; the seed says {pub / 1000:.1f} s "
                f"({(model - pub) / pub:+.0%}). No slot count gives both rows exactly; the profile keeps the "
                "throughput row.")})
    single = {c["target"]: c for c in cells if c["metric"] == "single_p50"}
    batch = {c["target"]: c for c in cells if c["metric"] == "batch10_per_image"}
    below = [t for t in TARGETS if seed.LATENCY_TABLE["batch10_per_image"][t] < seed.LATENCY_TABLE["single_p50"][t]]
    if below:
        out.append({
            "title": "Batch of 10 faster per image than a single image",
            "explanation": (
                "The seed's batch-10 average per image is below its single-image median for "
                f"{', '.join(below)}. Ten independent requests cannot average less than one: read as the mean "
                "latency of the ten, the figure would be above the median; read as wall time / 10 with ten in "
                "parallel, it would be far lower (about the slowest of ten, divided by ten). Measured here as wall "
                "time / 10: " + ", ".join(
                    f"{t} {batch[t]['measured']:,.0f} ms" for t in TARGETS if t in batch and batch[t]['measured'])
                + " against single medians of " + ", ".join(
                    f"{single[t]['measured']:,.0f}" for t in TARGETS if t in single and single[t]['measured'])
                + " ms. The seed's numbers need a per-image batching discount it does not describe; read as the "
                "providers batch (n images in one request), they give one, worked out in the batch readings "
                "(\"The batch row, read two ways\").")})
    out.append({
        "title": "A relay faster than the providers behind it",
        "explanation": (
            "The relay answers in 42 ms (P50) for models whose own P50 is 2.8 to 4.1 s. A relay cannot generate "
            "an image faster than the provider that generates it; the seed's relay figures only make sense if the "
            "relay answers before the image exists (a URL filled in later) or from a cache. The relay profile "
            "simulates the published figures as they are; a team should measure its own relay end to end.")})
    out.append({
        "title": "Two SLAs",
        "explanation": ("The seed states both 'under 600 ms per image generation' and 'sub-500 ms response "
                        "times'. The flash_sale scenario gates both: P99 < 600 ms and P50 < 500 ms.")})
    out.append({
        "title": "The relay's uptime equals the success target",
        "explanation": (
            "The relay's published uptime (99.95 %) is exactly the SLA's success target (99.95 %): a relay that "
            "fails as often as its SLA allows leaves no margin. The profile spends half of the downtime budget "
            f"as scattered errors ({relay.faults.error_rate:.3%} of requests) and leaves outages to be switched on "
            "explicitly (the outage scenario).")})
    try:
        monthly = monthly_projection(list(TARGETS))
        notes = monthly.get("contradictions") or []
        for n in notes:
            out.append({"title": str(n.get("title", "Monthly cost")), "explanation": str(n.get("explanation", n))})
    except Exception:  # the cost module's notes are a bonus here, not a reason to lose the table
        pass
    return out


def caveats(cells: list[dict[str, Any]], profiles: dict[str, Profile]) -> list[dict[str, str]]:
    """Where a measurement says more about this machine, or the client, than about the profile."""
    out = []
    by = {(c["metric"], c["target"]): c for c in cells}
    relay = by.get(("burst847_peak", "relay"))
    if relay and relay["measured"]:
        model = burst_median_model(profiles["relay"], n=847)
        if relay["measured"] > 1.5 * model:
            out.append({"title": "The relay's burst, on this machine",
                        "explanation": (
                            f"847 requests started together on the relay measured a median of "
                            f"{relay['measured']:,.0f} ms, where the relay profile's own model gives {model:,.0f} ms. "
                            "The difference is this machine: one load-generator process opens 847 connections "
                            "and one mock process accepts and answers them, on two cores, all at once. The "
                            "profile is right for the relay it describes; measuring 67 ms for 847 simultaneous "
                            "requests needs a generator and a relay with more cores than this.")})
    for t in DIRECT:
        c = by.get(("burst847_peak", t))
        if c and c["failed"]:
            out.append({"title": f"{t}: requests past the client's timeout in the burst",
                        "explanation": (
                            f"{c['failed']} of the burst's requests did not succeed: those still queued when the "
                            "client's 30 s timeout (the seed's) ran out. The burst median is that of the ones "
                            "that finished, as a shop's customers would see it.")})
    return out


def sla(scenario: str = SLA_SCENARIO) -> dict[str, Any]:
    """The SLA as the suite gates it: the thresholds of the scenario that rehearses the sale."""
    s = load_scenario(scenario)
    whole = [t for t in s.thresholds if not t.filters]
    p99 = next((t.value for t in whole if t.metric == "latency" and t.aggregation == "p" and t.percentile == 99
                and t.op in ("<", "<=")), None)
    return {"scenario": s.name, "thresholds": [limit_sentence(t) for t in s.thresholds], "latency_ms": p99}


def limit_sentence(t: Threshold) -> str:
    scope = f" in stage {dict(t.filters)['stage']}" if "stage" in dict(t.filters) else ""
    return f"{t.metric} {t.aggregation_text()} {limit_text(t.metric, t.aggregation, t.op, t.value)}{scope}"


def batch_readings(cells: list[dict[str, Any]], profiles: dict[str, Profile]) -> dict[str, Any]:
    """The batch row read both ways: measured, modelled, the per-extra-image cost each reading needs, and which
    reading the seed's figures fit (loadtest/batching.py)."""
    by = {(c["metric"], c["target"]): c for c in cells}
    targets = []
    cals = []
    for t in TARGETS:
        cal = batching.calibrate(profiles[t], seed.LATENCY_TABLE["batch10_per_image"][t],
                                 RELAY_MODEL if t == "relay" else None)
        cals.append(cal)
        doc = cal.as_dict()
        doc["measured_per_image_ms"] = {
            "semaphore": (by.get(("batch10_per_image", t)) or {}).get("measured"),
            "native": (by.get(("batch10_native_per_image", t)) or {}).get("measured")}
        targets.append(doc)
    return {"statement": batching.summarise(cals), "targets": targets,
            "method": ("A request of m images takes one draw of the profile's latency plus per_extra_image (k) of a "
                       "fresh draw for each further image; one request of ten has a mean of mean x (1 + 9k). Capped "
                       "providers' batches are simulated with the mock's own latency (20,000 batches); a profile "
                       "takes the native reading's k where one from 0 to 1 fits, else its one-after-another form's.")}


def batch_table(readings: dict[str, Any]) -> str:
    """The printed form: per target, each reading's measured and modelled per-image time and the k it needs."""
    lines = ["Batch 10, per image, read two ways (ms; k = per-extra-image cost the seed's figure needs)"]
    head = f"  {'target':15}{'reading':27}{'measured':>10}{'model':>10}{'seed':>8}{'k needed':>10}"
    lines += [head, "  " + "-" * (len(head) - 2)]
    for doc in readings["targets"]:
        measured = doc.get("measured_per_image_ms") or {}
        for r in doc["readings"]:
            m = measured.get("native" if r["reading"].startswith("native") else "semaphore")
            shown = "—" if m is None or r["reading"] == "native, one after another" else f"{m:,.0f}"
            k = "none" if r["k_for_published"] is None else f"{r['k_for_published']:.2f}"
            lines.append(f"  {doc['target']:15}{r['reading']:27}{shown:>10}{r['model_per_image_ms']:>10,.0f}"
                         f"{doc['published_per_image_ms']:>8,.0f}{k:>10}")
        lines.append(f"  {'':15}one request of ten: k {doc['one_request_of_ten_k']:.2f} by the mean service time "
                     f"({doc['one_request_of_ten_k_by_p50']:.2f} by the P50); the profile's k is "
                     f"{doc['profile_per_extra_image']:g}")
    lines.append("")
    lines.append(readings["statement"])
    return "\n".join(lines)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if unit == "ms" or value >= 100 else f"{value:,.1f}"


def table(cells: list[dict[str, Any]]) -> str:
    by = {(c["metric"], c["target"]): c for c in cells}
    head = f"{'workload':38}" + "".join(f"{t:>26}" for t in TARGETS)
    lines = [head, "-" * len(head)]
    for metric, label, unit, _, _ in ROWS:
        row = f"{label + f' ({unit})':38}"
        for t in TARGETS:
            c = by.get((metric, t))
            if c is None or c["measured"] is None:
                row += f"{'—':>26}"
                continue
            dev = f"{c['deviation_pct']:+.0f}%"
            row += f"{_fmt(c['measured'], unit) + ' vs ' + _fmt(c['published'], unit) + ' ' + dev:>26}"
        lines.append(row)
        sides = [(by.get((metric, t)) or {}).get("provider_side") for t in TARGETS]
        if any(v is not None for v in sides):
            lines.append(f"{'  the mock recorded':38}"
                         + "".join(f"{'—' if v is None else _fmt(v, unit):>26}" for v in sides))
    lines.append("")
    lines.append("each cell: measured by the client vs published (deviation); below a latency row, the same "
                 "percentile as the mock recorded it")
    return "\n".join(lines)


def reduced_note(plan: Plan) -> str:
    return (f"reduced: short runs, a burst of {plan.burst_size} instead of 847 and the relay at "
            f"{plan.relay_sustained_rps:g} req/s, so the burst and relay-throughput cells are not the seed's "
            "workloads; `make compare` runs them whole")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reduced", action="store_true", help="the short version (about three minutes)")
    parser.add_argument("--out", help="report directory (default reports/compare-<time>)")
    args = parser.parse_args(argv)
    plan = Plan.short() if args.reduced else Plan()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) if args.out else Path.cwd() / "reports" / f"compare-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    profiles = load_profiles()
    started = time.monotonic()
    phases = scenarios(plan, profiles)
    print(f"comparing {', '.join(TARGETS)} on the seed's five workloads"
          f"{' (reduced)' if plan.reduced else ''}; reports in {outdir}", flush=True)
    rundirs: dict[tuple[str, str], Path] = {}
    # The direct providers' native batches run a minute or more (dall-e-4's one request for ten); they go
    # beside the bursts and the sustained runs (each run has its mock, so they share no slots).
    native_title = "batch of 10 the native way, direct providers (beside the two phases below)"
    native: list[Started] = []
    for title, runs in phases:
        if title.startswith("847 at once, direct"):
            native = start_phase(native_title, [(t, native_batch(plan, profiles, t)) for t in DIRECT], outdir)
            time.sleep(NATIVE_HEAD_START_S)
        if title.endswith("relay") and native:    # nothing else may run beside the relay's milliseconds
            rundirs.update(finish_phase(native_title, native))
            native = []
        rundirs.update(run_phase(title, runs, outdir))
    rundirs.update(finish_phase(native_title, native))
    cells = []
    for metric, label, unit, workload, definition in ROWS:
        for t in TARGETS:
            found = rundirs.get((workload, t))
            measured, samples = measure(metric, found) if found else (None, 0)
            mock_side = provider_measure(metric, found) if found else None
            published = seed.LATENCY_TABLE[PUBLISHED_AS.get(metric, metric)][t]
            cells.append({"workload": workload, "target": t, "metric": metric, "label": label, "unit": unit,
                          "measured": None if measured is None else round(float(measured), 3),
                          "provider_side": None if mock_side is None else round(mock_side, 3),
                          "published": published,
                          "deviation_pct": None if measured is None
                          else round(100 * (measured - published) / published, 1),
                          "samples": samples, "failed": failed(found) if found else 0,
                          "definition": definition,
                          "run": str(found.relative_to(outdir)) if found else None})
    compare: dict[str, Any] = {"generated_at": iso_utc(datetime.now(UTC)), "reduced": plan.reduced,
               "reduced_note": reduced_note(plan) if plan.reduced else None,
               "seed": SEED, "duration_s": round(time.monotonic() - started, 1), "targets": list(TARGETS),
               "relay_model": RELAY_MODEL, "cells": cells,
               "definitions": {m: d for m, _, _, _, d in ROWS},
               "sla": sla(),
               "contradictions": contradictions(cells, profiles), "caveats": caveats(cells, profiles),
               "cost": monthly_projection(list(TARGETS)),
               "batch_readings": batch_readings(cells, profiles)}
    (outdir / "compare.json").write_text(json.dumps(compare, indent=2))
    from .report.html import write_compare_html
    html = write_compare_html(compare, outdir)
    print()
    print(table(cells))
    if plan.reduced:
        print(reduced_note(plan))
    print()
    print(batch_table(compare["batch_readings"]))
    print()
    print(f"{len(compare['contradictions'])} places where the seed's figures contradict each other, and "
          f"{len(compare['caveats'])} where this machine could not reproduce one, are explained in the report.")
    print(f"compare.json: {outdir / 'compare.json'}")
    print(f"report:       {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
