"""`loadtest capacity SCENARIO`: the highest open-model arrival rate at which the scenario's SLA holds.

Each step is an ordinary `loadtest run` of a scenario file written for it: the scenario's target,
client and thresholds, an open model at one constant rate (a short warm-up stage, then the
measured `step` stage every threshold is judged on), the same gate with its confidence intervals,
and `[gate] stop_on_saturation` so that a step past the target's capacity ends as soon as its
queue is seen to grow without bound. The steps share one simulated provider (started here when
the target lives on the mock), as they would share a real target.

The search ramps the rate by `--factor` from `--start` until a step does not hold, then bisects
between the highest rate that held and the lowest that did not, until they are within
`--resolution` of each other. A step is long enough to be judged with confidence: as many
requests as the thresholds need to pass at the scenario's level, with room (`sizing.needed`);
one the interval still cannot decide is run once more, longer, by as much as the gate says
would decide it.

The answer is a bracket — "holds at 84 req/s, breaks at 92 req/s" — with the threshold (or the
over-saturation) that broke first, and what bounded it:

- `target`: the target broke; the bracket is its capacity (exit 0, or 1 below `--require`);
- `generator`: the load generator itself gave out first (its CPU, loop or schedule lag), so
  the target's capacity is only known to be above the last rate that held (exit 2);
- `machine`: the target shares this machine with the generator and the machine ran out of CPU
  first — the bound is the machine's, not the target's (exit 2);
- `inconclusive`: a step the gate could not decide even when run longer (exit 2);
- `none`: it held at every rate up to `--max` (exit 0).

Every step's own report stays in `steps/`; `capacity.json`, `capacity.md`, `knee.png` and
`capacity.html` (the answer as a page, linking each step's report) go to the report folder.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import BaseModel, ConfigDict, Field

from . import sizing
from .exitcodes import ExitCode
from .fields import ScenarioError
from .loadmodel import OpenLoad
from .mockproc import MockProcess
from .saturation import SaturationCheck, is_saturation_abort
from .scenario import Overrides, Scenario, load_scenario, read_toml, scenario_path
from .summary import Summary, iso_utc
from .thresholds import Threshold

__all__ = ["CapacityOptions", "CapacityDoc", "StepDoc", "search", "main", "STEP_STAGE"]

FORMAT = "loadtest.capacity/1"
STEP_STAGE = "step"
WARMUP_STAGE = "warmup"
MACHINE_CPU = 85.0            # mean % of the whole machine over a step: the machine is the bound
ROOM = 1.5                    # a step makes this many times the requests its thresholds need at the least
MIN_STEP_S = 8.0              # long enough for the over-saturation check: its 5 s window, two looks, its lag
Outcome = Literal["holds", "breaks", "generator", "machine", "inconclusive", "invalid"]
Bound = Literal["target", "generator", "machine", "inconclusive", "none", "invalid"]


# --- the document ------------------------------------------------------------------------------------


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepDoc(_Doc):
    rate_rps: float
    planned_s: float
    elapsed_s: float
    outcome: Outcome
    verdict: str
    exit_code: int
    first_broken: str | None = None
    requests: int = 0
    achieved_rps: float | None = None
    dropped: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    success_rate: float | None = None
    goodput_rate: float | None = None
    goodput_rps: float | None = None
    machine_cpu_mean: float | None = None
    reasons: list[str] = []
    report_dir: str


class SlaLine(_Doc):
    label: str
    metric: str
    aggregation: str
    limit: float


class CapacityDoc(_Doc):
    format: Literal["loadtest.capacity/1"] = "loadtest.capacity/1"
    scenario: str
    target: str
    started_at: str
    holds_rps: float | None = Field(description="the highest rate that held, with confidence")
    breaks_rps: float | None = Field(description="the lowest rate that did not hold")
    first_broken: str | None = Field(description="what broke first at breaks_rps: a threshold, over-saturation, "
                                                 "the generator or the machine")
    bound: Bound
    answer: str
    exit_code: int
    confidence: float
    resolution: float
    sla: list[SlaLine] = []
    steps: list[StepDoc]
    files: dict[str, str] = {}


# --- options -----------------------------------------------------------------------------------------


@dataclass
class CapacityOptions:
    overrides: Overrides = field(default_factory=Overrides)
    start_rps: float | None = None
    max_rps: float | None = None
    factor: float = 2.0
    resolution: float = 0.05
    warmup_s: float | None = None
    min_step_s: float = MIN_STEP_S
    max_step_s: float = 120.0
    max_steps: int = 14
    max_vus: int | None = None
    require_rps: float | None = None
    workers: int = 0
    mock_url: str | None = None
    report_dir: str | None = None


@dataclass
class Step:
    rate: float
    doc: StepDoc

    @property
    def holds(self) -> bool:
        return self.doc.outcome == "holds"


# --- one step ----------------------------------------------------------------------------------------


def step_thresholds(s: Scenario) -> list[Threshold]:
    """The scenario's thresholds a step judges: request rates and counts go (the offered rate is what the
    search sets), regressions go (no baseline here); everything else is judged over the measured stage."""
    return [t for t in s.thresholds if t.metric != "requests" and t.baseline is None
            and not (t.metric == "goodput" and t.aggregation != "rate")]


def _key(t: Threshold) -> str:
    filters = [f"{k}:{v}" for k, v in t.filters if k != "stage"] + [f"stage:{STEP_STAGE}"]
    if t.slo_ms is not None:
        filters.insert(0, f"slo:{t.slo_ms:g}ms")
    return f"{t.metric}{{{','.join(filters)}}}"


def step_document(s: Scenario, raw: dict[str, Any], rate: float, warmup_s: float, measure_s: float,
                  max_vus: int) -> dict[str, Any]:
    """The scenario file of one step, as TOML data."""
    thresholds: dict[str, list[Any]] = {}
    for t in step_thresholds(s):
        # A breach the gate is already sure of ends the step at once; warm-up requests are not judged.
        thresholds.setdefault(_key(t), []).append({"threshold": t.expression(), "abort_on_fail": True})
    objective = goodput_slo_ms(s)
    if objective is not None and not any(t.slo_ms is not None for t in step_thresholds(s)):
        # Goodput is reported against a run-wide latency limit, and a step's are all on its measured stage:
        # a goodput threshold that cannot fail names the objective, so each step's goodput is on the knee.
        thresholds[f"goodput{{slo:{objective:g}ms,stage:{STEP_STAGE}}}"] = ["rate>=0"]
    load: dict[str, Any] = {"model": "open", "max_vus": max_vus, "start_rate": rate,
                            "stages": [{"name": WARMUP_STAGE, "duration": f"{warmup_s:g}s", "rate": rate},
                                       {"name": STEP_STAGE, "duration": f"{measure_s:g}s", "rate": rate}]}
    if isinstance(s.load, OpenLoad) and s.load.arrivals in ("poisson", "gamma"):
        load["arrivals"] = s.load.arrivals
        load["seed"] = s.load.seed or 0
        if s.load.arrivals == "gamma":
            load["burstiness"] = s.load.burstiness
    mock = {"seed": s.mock.seed, "latency_scale": s.mock.latency_scale, "set": list(s.mock.sets),
            "profiles": [str(Path(p).resolve()) for p in s.mock.profiles]}
    gate = {"min_samples": s.min_samples, "confidence": s.gate.confidence.level,
            "inconclusive": s.gate.confidence.inconclusive, "stop_on_saturation": True}
    doc: dict[str, Any] = {"name": f"{s.name}.{rate:g}rps",
                           "description": f"{s.name} at {rate:g} requests/s (a capacity step)",
                           "target": dict(s.raw_target), "mock": mock, "load": load, "thresholds": thresholds,
                           "gate": gate}
    if isinstance(raw.get("client"), dict):
        doc["client"] = raw["client"]
    return doc


def goodput_slo_ms(s: Scenario) -> float | None:
    """The latency a success must keep to count as goodput: the scenario's own goodput objective, else its
    tightest latency ceiling on a percentile (as the summary reports goodput)."""
    own = [t.slo_ms for t in step_thresholds(s) if t.slo_ms is not None]
    if own:
        return own[0]
    ceilings = [t.value for t in step_thresholds(s) if t.metric == "latency" and t.op in ("<", "<=")
                and t.aggregation in ("p", "med", "max")]
    return min(ceilings) if ceilings else None


def _local(s: Scenario, mock_url: str | None) -> bool:
    """Whether the target shares this machine with the generator."""
    url = mock_url if s.target.on_mock else s.target.base_url
    host = urlsplit(url or "").hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def classify(summary: Summary, local: bool) -> tuple[Outcome, str | None]:
    """What a step came to, and what broke first."""
    if summary.verdict == "pass":
        return "holds", None
    kinds = {r.kind for r in summary.reasons}
    cpu = summary.generator.figures.get("machine_cpu_mean")
    if summary.generator.saturated or "generator" in kinds:
        return "generator", "the load generator (" + "; ".join(summary.generator.reasons or ["saturated"]) + ")"
    if "mock" in kinds:
        # The simulated target fell behind its own profile: the CPU it ran on gave out, not its design.
        where = "it shares this machine with the generator" if local else "its own host"
        return ("machine" if local else "invalid"), f"the mock's CPU ({where}: it answered later than its profile)"
    if local and isinstance(cpu, (int, float)) and cpu >= MACHINE_CPU:
        return "machine", f"this machine's CPU ({cpu:.0f} % on average, shared by the target and the generator)"
    if kinds & {"harness", "unreachable", "misconfigured", "incomplete", "workers", "action"}:
        return "invalid", next(r.text for r in summary.reasons if r.kind not in ("breach", "note"))
    if summary.verdict == "fail":
        aborted = summary.run.aborted_by
        if is_saturation_abort(aborted):
            return "breaks", aborted
        failed = [t for t in summary.thresholds if t.verdict == "fail"]
        first = next((t for t in failed if t.label == aborted), failed[0] if failed else None)
        return "breaks", first.label if first is not None else aborted
    undecided = [t.label for t in summary.thresholds if t.verdict in ("inconclusive", "insufficient")]
    return "inconclusive", (undecided[0] + " (inconclusive)") if undecided else "inconclusive"


def saturated_over_step(summary: Summary, rate: float, warmup_s: float, measure_s: float) -> str | None:
    """The over-saturation check once more, over the whole measured stage once it is complete. Live, the
    check sees each second only after its lag and wants two looks in a row, so a queue growing a few per
    cent faster than the target serves can outlast a short step unseen; its complete record still shows it."""
    check = SaturationCheck(lambda a, b: rate * (b - a), since_s=warmup_s)
    rows = [row.model_dump() for row in summary.timeline]
    # The last second is cut short by the stop: judged up to the one before it.
    finding = check.assess(rows, warmup_s + measure_s - 1)
    return None if finding is None else f"over-saturation over the step: {finding.words}"


def _step_doc(rate: float, planned_s: float, summary: Summary | None, report_dir: Path, local: bool,
              log_tail: str, warmup_s: float = 0.0) -> StepDoc:
    if summary is None:
        return StepDoc(rate_rps=rate, planned_s=planned_s, elapsed_s=0.0, outcome="invalid", verdict="invalid",
                       exit_code=2, first_broken="the step ended without a verdict", reasons=[log_tail],
                       report_dir=str(report_dir))
    outcome, first = classify(summary, local)
    if outcome == "holds" and (late := saturated_over_step(summary, rate, warmup_s, planned_s - warmup_s)):
        outcome, first = "breaks", late
    stage = next((st for st in summary.stages if st.name == STEP_STAGE), None)
    scheduled = (stage.requests + stage.dropped) if stage else 0
    cpu = summary.generator.figures.get("machine_cpu_mean")
    return StepDoc(
        rate_rps=rate, planned_s=planned_s, elapsed_s=summary.run.elapsed_s, outcome=outcome,
        verdict=summary.verdict, exit_code=summary.exit_code, first_broken=first,
        requests=stage.requests if stage else summary.requests, achieved_rps=stage.rps if stage else summary.rps,
        dropped=stage.dropped if stage else summary.dropped,
        p50_ms=stage.latency_ms.p50 if stage else None, p99_ms=stage.latency_ms.p99 if stage else None,
        success_rate=round((stage.requests - stage.failures) / scheduled, 6) if stage and scheduled else None,
        goodput_rate=stage.goodput_rate if stage else None, goodput_rps=stage.goodput_rps if stage else None,
        machine_cpu_mean=float(cpu) if isinstance(cpu, (int, float)) else None,
        reasons=[r.text for r in summary.reasons if r.kind != "note"], report_dir=str(report_dir))


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


class Searcher:
    def __init__(self, scenario: Scenario, ref: str, options: CapacityOptions, outdir: Path,
                 mock_url: str | None, print_: Any = print) -> None:
        self.s = scenario
        self.raw = read_toml(scenario_path(ref))
        self.options = options
        self.outdir = outdir
        self.mock_url = mock_url
        self.local = _local(scenario, mock_url)
        self.steps: list[Step] = []
        self.print = print_
        self.interrupted = False
        self.need = max((n[0] for t in step_thresholds(scenario) if (n := sizing.needed(t, scenario))), default=0)
        latency = sizing._latency_s(scenario)
        self.latency_s = latency
        limits = [t.value / 1000.0 for t in step_thresholds(scenario) if t.metric == "latency"
                  and t.op in ("<", "<=")]
        # In flight at once, by Little's law, if every request took as long as the loosest latency limit
        # allows (the client's timeout without one), twice over: a start dropped for want of a VU is then
        # the target's backlog, not a pool sized too small.
        self.hold_s = min(max(limits, default=scenario.client.timeout_s), scenario.client.timeout_s)

    def max_vus(self, rate: float) -> int:
        if self.options.max_vus:
            return self.options.max_vus
        own = self.s.load.peak_users if isinstance(self.s.load, OpenLoad) else 0
        return int(min(20_000, max(own, 50, math.ceil(2 * rate * self.hold_s))))

    def warmup_s(self) -> float:
        if self.options.warmup_s is not None:
            return self.options.warmup_s
        latency = self.latency_s
        if latency is None:
            done = [st.doc.p50_ms for st in self.steps if st.doc.p50_ms]
            latency = (done[-1] / 1000.0) if done else 1.0
        return float(math.ceil(max(3.0, 2 * latency)))

    def measure_s(self, rate: float, more: int = 0) -> float:
        want = (ROOM * self.need + more) / rate
        return float(min(self.options.max_step_s, max(self.options.min_step_s, math.ceil(want))))

    def run_step(self, rate: float) -> Step:
        rate = round(rate, 3 if rate < 10 else 1)
        measure = self.measure_s(rate)
        step = self._run(rate, measure)
        if step.doc.outcome == "inconclusive" and measure < self.options.max_step_s and not self.interrupted:
            more = self._more(step)
            longer = self.measure_s(rate, more)
            if longer > measure:
                self.print(f"          undecided at {rate:g} req/s; once more for {longer:g} s")
                step = self._run(rate, longer)
        self.steps.append(step)
        return step

    def _more(self, step: Step) -> int:
        path = Path(step.doc.report_dir) / "report" / "summary.json"     # report_dir: the step's folder
        try:
            summary = Summary.read(path)
        except (OSError, ValueError):
            return 0
        return max((t.more_samples or 0 for t in summary.thresholds if t.verdict == "inconclusive"), default=0)

    def _run(self, rate: float, measure: float) -> Step:
        n = len(self.steps) + 1
        folder = self.outdir / "steps" / f"{n:02d}-{rate:g}rps"
        while folder.exists():
            folder = folder.with_name(folder.name + "+")
        folder.mkdir(parents=True)
        warmup = self.warmup_s()
        doc = step_document(self.s, self.raw, rate, warmup, measure, self.max_vus(rate))
        scenario_file = folder / "scenario.toml"
        scenario_file.write_text(tomli_w.dumps(doc))
        report = folder / "report"
        cmd = [sys.executable, "-m", "loadtest", "run", str(scenario_file), "--report-dir", str(report)]
        if self.mock_url:
            cmd += ["--mock-url", self.mock_url]
        if self.options.workers:
            cmd += ["--workers", str(self.options.workers)]
        self.print(f"step {n:>2}: {rate:>9,.1f} req/s for {warmup:g} + {measure:g} s ...", end="", flush=True)
        with (folder / "run.log").open("w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            try:
                proc.wait()
            except (KeyboardInterrupt, _Stop):
                self.interrupted = True
                proc.send_signal(signal.SIGINT)      # the step gates what it measured, then ends
                try:
                    proc.wait(90)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        summary = None
        if (report / "summary.json").exists():
            try:
                summary = Summary.read(report / "summary.json")
            except (OSError, ValueError):
                summary = None
        tail = " / ".join((folder / "run.log").read_text(errors="replace").strip().splitlines()[-3:])
        step_doc = _step_doc(rate, warmup + measure, summary, folder, self.local, tail, warmup)
        self.print(" " + _step_words(step_doc), flush=True)
        return Step(rate, step_doc)

    # -- the search -------------------------------------------------------------------------------

    def start_rps(self) -> float:
        if self.options.start_rps:
            return self.options.start_rps
        load = self.s.load
        if isinstance(load, OpenLoad):
            peak = max(st.rate for st in load.stages)
        else:
            latency = self.latency_s
            think = sum(getattr(load, "think_time_s", (0.0, 0.0))) / 2
            peak = load.peak_users / (latency + think) if latency is not None and latency + think > 0 else 40.0
        return max(1.0, round(peak / 4, 1))

    def search(self) -> None:
        start = self.start_rps()
        top = self.options.max_rps or start * self.options.factor ** 6
        rate = start
        first = self.run_step(rate)
        # A step the gate could not decide even when run longer says nothing a lower rate (fewer requests
        # in as long a step) would: no bracket.
        if first.doc.outcome in ("invalid", "inconclusive") or self.interrupted:
            return
        if not first.holds:
            # Down until something holds: the bracket's floor.
            while not self.interrupted and len(self.steps) < self.options.max_steps and rate > start / 16:
                rate /= self.options.factor
                step = self.run_step(rate)
                if step.holds or step.doc.outcome in ("invalid", "inconclusive"):
                    break
        else:
            while not self.interrupted and len(self.steps) < self.options.max_steps and rate < top:
                rate = min(top, rate * self.options.factor)
                step = self.run_step(rate)
                if not step.holds:
                    break
        while not self.interrupted and len(self.steps) < self.options.max_steps:
            lo, hi = self.bracket()
            if lo is None or hi is None or hi.doc.outcome == "invalid":
                return
            if hi.rate / lo.rate - 1 <= self.options.resolution:
                return
            self.run_step((lo.rate + hi.rate) / 2)

    def bracket(self) -> tuple[Step | None, Step | None]:
        """(the highest rate that held, the lowest above it that did not)."""
        held = [st for st in self.steps if st.holds]
        lo = max(held, key=lambda st: st.rate) if held else None
        above = [st for st in self.steps if not st.holds and (lo is None or st.rate > lo.rate)]
        hi = min(above, key=lambda st: st.rate) if above else None
        return lo, hi

    # -- the answer ---------------------------------------------------------------------------------

    def document(self, started: datetime) -> CapacityDoc:
        lo, hi = self.bracket()
        holds = lo.rate if lo else None
        breaks = hi.rate if hi else None
        first = hi.doc.first_broken if hi else None
        if self.interrupted:
            bound: Bound = "invalid"
        elif hi is None:
            bound = "none"
        else:
            bound = {"breaks": "target", "generator": "generator", "machine": "machine",
                     "inconclusive": "inconclusive"}.get(hi.doc.outcome, "invalid")  # type: ignore[assignment]
        code = self.exit_code(bound, holds)
        return CapacityDoc(scenario=self.s.name, target=self.s.target.name, started_at=iso_utc(started),
                           holds_rps=holds, breaks_rps=breaks, first_broken=first, bound=bound,
                           answer=self.answer(bound, holds, breaks, first, code), exit_code=code,
                           confidence=self.s.gate.confidence.level, resolution=self.options.resolution,
                           sla=[SlaLine(label=t.label(), metric=t.metric, aggregation=t.aggregation, limit=t.value)
                                for t in step_thresholds(self.s)],
                           steps=[st.doc for st in self.steps])

    def exit_code(self, bound: Bound, holds: float | None) -> int:
        required = self.options.require_rps
        if required is not None and holds is not None and holds >= required:
            return int(ExitCode.PASS)
        if bound in ("target", "none"):
            if holds is None or (required is not None and holds < required):
                return int(ExitCode.FAIL)
            return int(ExitCode.PASS)
        return int(ExitCode.INVALID)

    def answer(self, bound: Bound, holds: float | None, breaks: float | None, first: str | None, code: int) -> str:
        def rps(x: float | None) -> str:
            return "n/a" if x is None else f"{x:,.0f} req/s" if x >= 100 else f"{x:,.3g} req/s"
        who = f"{self.s.name} against {self.s.target.name}"
        if bound == "invalid":
            last = self.steps[-1].doc if self.steps else None
            why = "it was interrupted" if self.interrupted else (last.first_broken or "a step proved nothing") \
                if last else "no step ran"
            return f"{who}: no answer, {why}"
        if bound == "none":
            return f"{who} holds at {rps(holds)}, the highest rate tried (raise --max to find where it breaks)"
        held = f"holds at {rps(holds)}" if holds is not None else "holds at no rate tried"
        if bound == "target":
            return f"{who} {held}, breaks at {rps(breaks)}: {first} broke first"
        if bound == "generator":
            return (f"{who} {held}; at {rps(breaks)} the load generator itself gave out before the target did, so "
                    f"{rps(holds)} is the generator's bound, not the target's capacity (more --workers, or a "
                    f"bigger machine, to go further)")
        if bound == "machine":
            return (f"{who} {held}; at {rps(breaks)} this machine ran out of CPU, which the target and the generator "
                    f"share: {rps(holds)} is this machine's bound, not the target's capacity")
        return (f"{who} {held}; at {rps(breaks)} the gate could not decide ({first}) within --max-step "
                f"{self.options.max_step_s:g} s: a longer step would")


def _step_words(d: StepDoc) -> str:
    lat = "" if d.p50_ms is None else f"P50 {d.p50_ms:,.0f} ms, P99 {d.p99_ms or 0:,.0f} ms"
    ok = "" if d.success_rate is None else f", success {d.success_rate * 100:.2f} %"
    good = "" if d.goodput_rate is None else f", goodput {d.goodput_rate * 100:.2f} %"
    what = {"holds": "holds", "breaks": "BREAKS", "generator": "GENERATOR LIMIT", "machine": "MACHINE LIMIT",
            "inconclusive": "INCONCLUSIVE", "invalid": "NO VERDICT"}[d.outcome]
    why = f" — {d.first_broken}" if d.first_broken and d.outcome != "holds" else ""
    return f"{what} ({lat}{ok}{good}){why}"


# --- reports -----------------------------------------------------------------------------------------


def render_markdown(doc: CapacityDoc) -> str:
    icon = {"target": "✅", "none": "✅"}.get(doc.bound, "⚠️")
    lines = [f"{icon} **{doc.answer}** (bound: {doc.bound}, exit {doc.exit_code})", "",
             "| step | offered req/s | served req/s | P50 | P99 | success | goodput | outcome |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, s in enumerate(doc.steps, 1):
        lines.append(f"| {i} | {s.rate_rps:,.1f} | {s.achieved_rps or 0:,.1f} | "
                     f"{'n/a' if s.p50_ms is None else f'{s.p50_ms:,.1f} ms'} | "
                     f"{'n/a' if s.p99_ms is None else f'{s.p99_ms:,.1f} ms'} | "
                     f"{'n/a' if s.success_rate is None else f'{s.success_rate * 100:.3f} %'} | "
                     f"{'n/a' if s.goodput_rate is None else f'{s.goodput_rate * 100:.3f} %'} | "
                     f"{s.outcome}{f': {s.first_broken}' if s.first_broken and s.outcome != 'holds' else ''} |")
    lines += ["", "SLA: " + "; ".join(f"`{line.label}`" for line in doc.sla) + ".", ""]
    return "\n".join(lines)


def schema_text() -> str:
    import json
    doc = CapacityDoc.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = "https://imagegen-loadtest.invalid/schemas/capacity.schema.json"
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_reports(doc: CapacityDoc, outdir: Path) -> None:
    from .report import write_text
    outdir.mkdir(parents=True, exist_ok=True)
    doc.files.update({"capacity": "capacity.json", "markdown": "capacity.md"})
    try:
        from .report.plots import capacity_knee
        doc.files["knee"] = capacity_knee(doc.model_dump(mode="json"), outdir / "knee.png").name
    except Exception as exc:   # a broken plot must not lose the answer
        print(f"loadtest: the knee plot could not be drawn: {exc}", file=sys.stderr)
    doc.files["html"] = "capacity.html"
    write_text(outdir / "capacity.json", doc.model_dump_json(indent=2) + "\n")
    write_text(outdir / "capacity.md", render_markdown(doc))
    try:
        from .report.capacity_html import write_capacity_html
        write_capacity_html(doc, outdir)
    except Exception as exc:   # as the plot: the answer is in capacity.json and capacity.md already
        doc.files.pop("html", None)
        print(f"loadtest: capacity.html could not be written: {exc}", file=sys.stderr)


# --- the command -------------------------------------------------------------------------------------


def search(ref: str, options: CapacityOptions, print_: Any = print) -> tuple[CapacityDoc | None, int]:
    try:
        scenario = load_scenario(ref, options.overrides)
    except ScenarioError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return None, int(ExitCode.INVALID)
    if not step_thresholds(scenario):
        print("loadtest: capacity needs thresholds to hold (latency, success, goodput, dropped): the scenario has "
              "none a step can judge", file=sys.stderr)
        return None, int(ExitCode.INVALID)
    if options.factor <= 1 or not 0 < options.resolution < 1:
        print("loadtest: --factor must be above 1 and --resolution between 0 and 1", file=sys.stderr)
        return None, int(ExitCode.INVALID)
    stamp = datetime.now(UTC)
    outdir = Path(options.report_dir).resolve() if options.report_dir else \
        Path.cwd() / "reports" / f"{scenario.name}-capacity-{stamp.strftime('%Y%m%d-%H%M%S')}"
    outdir.mkdir(parents=True, exist_ok=True)
    mock: MockProcess | None = None
    mock_url = options.mock_url
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        if scenario.target.on_mock and not mock_url:
            from .runner import mock_args
            mock = MockProcess(*mock_args(scenario), new_session=True).start()
            mock_url = mock.url
        searcher = Searcher(scenario, ref, options, outdir, mock_url, print_)
        left_out = [t.label() for t in scenario.thresholds if t not in step_thresholds(scenario)]
        print_(f"capacity of {scenario.name} against {scenario.target.name}: open-model steps from "
               f"{searcher.start_rps():g} req/s, x{options.factor:g}, then bisecting to {options.resolution:.0%}; "
               f"each step judged at {scenario.gate.confidence.percent} confidence on: "
               + "; ".join(t.label() for t in step_thresholds(scenario)), flush=True)
        if left_out:
            print_(f"  not judged per step (the offered rate is what the search sets): {'; '.join(left_out)}")
        if scenario.actions:
            print_("  the scenario's [[actions]] are left out of the steps")
        try:
            searcher.search()
        except (KeyboardInterrupt, _Stop):
            searcher.interrupted = True
        doc = searcher.document(stamp)
        write_reports(doc, outdir)
        doc.files["folder"] = str(outdir)
        return doc, doc.exit_code
    except RuntimeError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return None, int(ExitCode.INVALID)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if mock is not None:
            mock.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="loadtest capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", help="a built-in scenario or the path of a TOML file: its target, client and SLA")
    p.add_argument("--target", help="a provider of the mock, or a base URL")
    p.add_argument("--api", help="wire format of a URL target")
    p.add_argument("--model", help="model to ask the target for")
    p.add_argument("--profiles", action="append", default=[], metavar="FILE", help="extra mock profile files")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME.SETTING=VALUE",
                   help="start the mock with a provider setting changed")
    p.add_argument("--mock-url", help="use an already running mock")
    p.add_argument("--workers", type=int, default=0, help="Locust workers per step (distributed mode)")
    p.add_argument("--start", type=float, help="the first step's rate, req/s (default: a quarter of the scenario's "
                                               "peak rate)")
    p.add_argument("--max", type=float, dest="max_rps", help="the highest rate to try (default: start x factor^6)")
    p.add_argument("--factor", type=float, default=2.0, help="the ramp's step factor (default 2)")
    p.add_argument("--resolution", type=float, default=0.05,
                   help="stop bisecting when breaks/holds - 1 is this small (default 0.05)")
    p.add_argument("--warmup", type=float, help="seconds of each step not judged (default: 3 s, or twice the "
                                                "target's latency)")
    p.add_argument("--min-step", type=float, default=MIN_STEP_S, help="the shortest measured step, s")
    p.add_argument("--max-step", type=float, default=120.0, help="the longest measured step, s")
    p.add_argument("--max-steps", type=int, default=14, help="at most this many steps")
    p.add_argument("--max-vus", type=int, help="VUs per step (default: twice the rate x the loosest latency limit)")
    p.add_argument("--require", type=float, dest="require_rps",
                   help="exit 1 unless the scenario holds at this rate, req/s")
    p.add_argument("--report-dir", help="where capacity.json, capacity.md, knee.png, capacity.html and the steps go")
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.sets and args.mock_url:
        p.error("--set changes the mock this command starts; with --mock-url, use its admin API")
    options = CapacityOptions(
        overrides=Overrides(target=args.target, api=args.api, model=args.model, profiles=tuple(args.profiles),
                            sets=tuple(args.sets)),
        start_rps=args.start, max_rps=args.max_rps, factor=args.factor, resolution=args.resolution,
        warmup_s=args.warmup, min_step_s=args.min_step, max_step_s=args.max_step, max_steps=args.max_steps,
        max_vus=args.max_vus, require_rps=args.require_rps, workers=args.workers, mock_url=args.mock_url,
        report_dir=args.report_dir)
    started = time.monotonic()
    doc, code = search(args.scenario, options)
    if doc is not None:
        where = os.path.relpath(doc.files.pop("folder"))
        print(f"\n{len(doc.steps)} steps in {time.monotonic() - started:,.0f} s; capacity.json, capacity.md, "
              f"knee.png and capacity.html in {where}")
        print(f"capacity: {doc.answer} (bound: {doc.bound}; exit {code})", flush=True)
    return code
