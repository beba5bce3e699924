"""The verdict: one pure function from (thresholds, recording, generator health, run facts) to a verdict.

Everything that decides whether a run counts and whether the SLA held is here: the end of a
run, the runner's unreachable-target path, the live SLA view and abort_on_fail all call
`judge` (live with `live=True`), so the tested code is the code that runs.

Exit codes (loadtest.exitcodes): 0 the SLA held; 1 it was breached by the target; 2 the run
proves nothing. The run proves nothing when the suite itself failed (a harness error, a lost
worker, a scheduled action that did not happen), the target could not be reached or refused
every request the same way (a misconfigured run), the run was stopped before its planned end
other than by its own abort, the load generator could not offer the load, or a threshold had
too few samples to judge. A generator that could not keep up outranks a breach — latency
measured by a saturated client is partly the client's — except a latency breach larger than
the generator's worst stall, which no generator delay can explain.

With the provider side's record of the same run (loadtest.attribution) the two ends decide
instead of the stall: a failed latency ceiling is the target's when the provider side's same
figure breaches too; when that figure holds with margin and the generator shows strain, the
breach is the generator's own queueing and the run proves nothing; when it breaches only by the
mock's own lateness (its profile's time holds, loadtest.attribution's MOCK_LATE), the rig was short of
CPU and the run proves nothing either. Live (the SLA view, abort_on_fail)
the same rule reads the record as it stands: an abort_on_fail threshold whose breach is the generator's
(or the mock's lateness) stops the run as INVALID (`generator_abort_trigger`, `RunFacts.generator_abort`),
never as the target's FAIL.

Past that floor each estimate is judged by its interval (loadtest.confidence): a threshold whose
interval at ``[gate] confidence`` straddles its limit is "inconclusive", and by default the run then
proves nothing, with the number of further requests that would decide it.

Fraction thresholds (success, failures, dropped and goodput rates) and latency thresholds with fewer
than ``min_samples`` scheduled requests in their selection are "insufficient": P99 of 40
requests is the second-worst request, not a tail — unless the breach is already beyond
repair: if even ``min_samples`` requests whose missing part all went well would still break
the limit, the threshold fails (so a short run against a slow target fails instead of
proving nothing, and abort_on_fail can act early). Counts and request rates have no such
floor — "count > 0" is itself the question.

Time to first image (`first_image`, streamed generations) is judged as latency is, over the
generations that received an image: the same percentiles, the same floor and best case, the
same allowance for a stalled generator.

A [sut] gateway's metrics (gateway_overhead, upstream_calls_per_request, silent_success, ...) are
judged from both ends once the run has ended (`gateway`: the providers' record behind it, read then;
loadtest/gateway_figures.py), with the same min_samples floor for overhead percentiles and means,
and no interval: they are exact facts of this run. Mid-run they cannot be judged yet.

Dropped starts (an open-model arrival that found every VU busy) count against success:
success rate = ok / (completed + dropped), and failures.rate = 1 - success.rate, so an
overloaded generator cannot hide failures by not sending the requests.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import attribution as attr
from . import confidence as conf
from . import gateway_figures
from .confidence import ConfidenceOptions, Interval
from .exitcodes import ExitCode
from .gateway_figures import GatewayFacts
from .health import STALL_LIMIT_MS, HealthReport
from .recorder import Recorder, Selection, Timings
from .saturation import is_saturation_abort
from .thresholds import GATEWAY_METRICS, TIME_METRICS, Threshold, format_limit, format_value

__all__ = ["End", "RunFacts", "GeneratorAbort", "Margin", "ThresholdResult", "Reason", "Verdict", "judge",
           "abort_trigger", "generator_abort_trigger", "attributions"]


class End(enum.Enum):
    """How a run ended."""
    SCHEDULE = "schedule"        # the scenario's stages ran to their end
    ABORT = "abort"              # an abort_on_fail threshold stopped it: the gate's own decision
    STOPPED = "stopped"          # stopped by hand (the web UI's STOP) before the end
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM before the end
    FAULT = "fault"              # stopped early by a fault of the harness (the mock died, a worker was lost, ...)
    NOT_RUN = "not_run"          # nothing ran (e.g. the target did not answer)


@dataclass(frozen=True)
class GeneratorAbort:
    """abort_on_fail stopped the run on a threshold whose breach the live gate found not to be the target's:
    the generator's own queueing (the provider side held, the generator was strained) or the mock's own
    lateness (the provider side breached, its profile's time held): a stop that proves nothing."""
    label: str          # the threshold's label
    at_s: float         # when, on the schedule's clock
    text: str           # the live attribution's words
    kind: str = "generator"    # the live attribution's kind: GENERATOR, or MOCK_LATE (the mock's lateness)

    @property
    def whose(self) -> str:
        return "the mock's lateness" if self.kind == attr.MOCK_LATE else "the generator's breach"


@dataclass(frozen=True)
class RunFacts:
    """What happened around the measurements, as the harness saw it."""
    planned_s: float = 0.0
    elapsed_s: float = 0.0
    end: End = End.SCHEDULE
    aborted_by: str | None = None                  # label of the threshold that aborted the run
    generator_abort: GeneratorAbort | None = None  # or: the threshold that stopped it was the generator's breach
    harness_errors: tuple[str, ...] = ()           # the suite's own failures; each makes the run prove nothing
    target_unreachable: str | None = None          # why the target could not be reached, when known up front
    workers_expected: int = 0
    workers_lost: tuple[str, ...] = ()
    actions_failed: tuple[str, ...] = ()
    errors: tuple[tuple[str, int], ...] = ()       # the commonest failure messages, with their counts
    key_pool: int | None = None                    # API keys the users shared
    open_pool: tuple[int, float] | None = None     # an open model's VUs and its schedule's highest rate (req/s)
    direct: bool = False   # nothing between the client and the provider side but this machine's loopback
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Margin:
    """How far an observed value is from its limit, in the threshold's own unit."""
    amount: float            # |observed - limit|, in `unit` (a rate's in percentage points)
    unit: str                # "ms", "req/s", "requests", or "percentage points"
    percent: float | None    # of the limit, where that reads sensibly (not for rates)
    words: str               # "over by 112.4 ms (18.7 %)", "12.3 ms to spare", ...


@dataclass
class ThresholdResult:
    threshold: Threshold
    observed: float | None
    samples: int
    verdict: str             # "pass", "fail", "insufficient", "inconclusive"
    unit: str
    detail: str
    margin: Margin | None = None
    needed_samples: int | None = None   # insufficient: how many the gate asked for
    interval: Interval | None = None    # the observed value's confidence interval, where it is an estimate
    more_samples: int | None = None     # inconclusive: roughly how many more requests would decide it
    # With the provider side's record (latency thresholds): its value of the same figure and its samples,
    # and, for a failed ceiling, whose breach it is.
    provider_observed: float | None = None
    provider_samples: int | None = None
    attribution: attr.Attribution | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True)
class Reason:
    kind: str    # harness, unreachable, misconfigured, incomplete, workers, action, mock, generator, aborted,
    #              breach, insufficient, inconclusive, saturated, no_thresholds, note
    text: str


@dataclass
class Verdict:
    status: str              # "pass", "fail", "invalid"
    exit_code: ExitCode
    results: list[ThresholdResult]
    reasons: list[Reason] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def reason_texts(self) -> list[str]:
        return [r.text for r in self.reasons]


# --- one threshold --------------------------------------------------------------------------


def _observe(t: Threshold, sel: Selection, good: int | None = None) -> tuple[float | None, int, bool]:
    """(observed value, samples, whether min_samples applies). `good`: goodput's successes within its SLO."""
    if t.metric == "first_image":
        return _observe_first_image(t, sel.first_image)
    scheduled = sel.requests + sel.dropped
    if t.metric == "goodput":
        assert good is not None
        if t.aggregation == "count":
            return float(good), scheduled, False
        if t.aggregation == "rps":
            return (good / sel.window_s if sel.window_s > 0 else None), scheduled, False
        return (good / scheduled if scheduled else None), scheduled, True
    if t.metric == "latency":
        if not sel.requests:
            return None, 0, True
        if t.aggregation == "p":
            assert t.percentile is not None
            value = sel.percentile(t.percentile)
        else:
            value = {"med": lambda: sel.percentile(50.0), "avg": lambda: sel.mean_ms,
                     "min": lambda: sel.min_ms, "max": lambda: sel.max_ms}[t.aggregation]()
        return value, sel.requests, True
    if t.metric == "success":
        return (sel.success_rate if scheduled else None), scheduled, True
    if t.metric == "failures":
        return (sel.failure_rate if scheduled else None), scheduled, True
    if t.metric == "requests":
        if t.aggregation == "count":
            return float(sel.requests), sel.requests, False
        # A stage that has not begun (live) or never ran has no rate, not a rate of zero.
        return (sel.rps if sel.window_s > 0 else None), sel.requests, False
    if t.metric == "dropped":
        if t.aggregation == "count":
            return float(sel.dropped), scheduled, False
        return (sel.dropped_rate if scheduled else None), scheduled, True
    raise ValueError(f"unknown metric {t.metric!r}")


def _observe_first_image(t: Threshold, first: Timings) -> tuple[float | None, int, bool]:
    """Time to first image: judged like latency, over the generations that received an image."""
    if not first.count:
        return None, 0, True
    if t.aggregation == "p":
        assert t.percentile is not None
        return first.percentile(t.percentile), first.count, True
    value = {"med": lambda: first.percentile(50.0), "avg": lambda: first.mean_ms, "min": lambda: first.min_ms,
             "max": lambda: first.max_ms}[t.aggregation]()
    return value, first.count, True


def margin(t: Threshold, observed: float) -> Margin:
    diff = observed - t.value
    if t.unit == "":   # a rate: percentage points say it; a percentage of a percentage would not
        amount, unit, pct = abs(diff) * 100, "percentage points", None
        shown = f"{amount:.3g} percentage points"
    else:
        amount, unit = abs(diff), t.unit
        pct = abs(diff) / abs(t.value) * 100 if t.value else None
        shown = format_value(t.metric, t.aggregation, amount) + (f" ({pct:.1f} %)" if pct is not None else "")
    if t.check(observed):
        words = f"{shown} to spare" if diff else "exactly at the limit"
    elif t.op == "==":
        words = f"off by {shown}"
    elif t.op == "!=":
        words = "equal to the excluded value"
    else:
        # A failing "<" limit is exceeded; a failing ">" limit is not reached.
        words = (f"{'over' if t.op in ('<', '<=') else 'short'} by {shown}") if diff else "exactly at the limit"
    return Margin(amount=amount, unit=unit, percent=pct, words=words)


def _judge_one(t: Threshold, sel: Selection, min_samples: int, recorder: Recorder,
               good: int | None = None, live: bool = False) -> ThresholdResult:
    """`live`: mid-run, when the selection is still growing, so "beyond repair" (which assumes the run ends at
    min_samples) is not yet known: one failure in the first 500 of a run that will make 50,000 is no breach."""
    observed, samples, needs_samples = _observe(t, sel, good)
    if observed is not None and math.isnan(observed):
        observed = None
    limit = f"{t.op} {format_limit(t.metric, t.aggregation, t.value)}"
    if observed is None:
        nothing = f"no requests in this selection; limit {limit}"
        if t.metric == "first_image" and sel.requests:
            nothing = (f"none of the {sel.requests:,} requests received a streamed image (first_image needs "
                       f"client.stream = true); limit {limit}")
        detail = _missing_tags(t, recorder) or nothing
        return ThresholdResult(t, None, samples, "insufficient", t.unit, detail, needed_samples=min_samples)
    shown = format_value(t.metric, t.aggregation, observed)
    m = margin(t, observed)
    if needs_samples and samples < min_samples:
        best = None if live else _best_case(t, sel, min_samples, good)
        if best is not None and not t.check(best):
            return ThresholdResult(t, observed, samples, "fail", t.unit,
                                   f"observed {shown} over {samples:,} requests, limit {limit}: {m.words}; "
                                   f"already beyond repair: had the {min_samples - samples:,} requests still "
                                   f"missing (of the {min_samples:,} the gate needs) all been fast and successful, "
                                   f"it would still be {format_value(t.metric, t.aggregation, best)}",
                                   margin=m)
        return _too_few(t, observed, samples, min_samples, shown, limit, m)
    return _observed(t, observed, samples, shown, limit, m)


def _too_few(t: Threshold, observed: float, samples: int, min_samples: int, shown: str, limit: str,
             m: Margin) -> ThresholdResult:
    return ThresholdResult(t, observed, samples, "insufficient", t.unit,
                           f"only {samples:,} requests, at least {min_samples:,} needed to judge "
                           f"(observed {shown}, limit {limit})", margin=m, needed_samples=min_samples)


def _observed(t: Threshold, observed: float, samples: int, shown: str, limit: str, m: Margin) -> ThresholdResult:
    verdict = "pass" if t.check(observed) else "fail"
    return ThresholdResult(t, observed, samples, verdict, t.unit, f"observed {shown}, limit {limit}: {m.words}",
                           margin=m)


def _judge_gateway(t: Threshold, recorder: Recorder, gateway: GatewayFacts | None, min_samples: int,
                   live: bool) -> ThresholdResult:
    """A gateway metric: from both ends, once the run has ended (the providers' record is read then)."""
    limit = f"{t.op} {format_limit(t.metric, t.aggregation, t.value)}"
    if gateway is None:
        why = ("judged once the run has ended, from the providers' record behind the gateway" if live else
               "the providers' record behind the gateway was not read (a [sut] run reads it at its end)")
        return ThresholdResult(t, None, 0, "insufficient", t.unit, f"{why}; limit {limit}")
    observed, samples, needs_samples, why = gateway_figures.observe(t, recorder, gateway)
    if observed is None or math.isnan(observed):
        return ThresholdResult(t, None, samples, "insufficient", t.unit, f"{why or 'no value'}; limit {limit}")
    shown = format_value(t.metric, t.aggregation, observed)
    m = margin(t, observed)
    if needs_samples and samples < min_samples:
        return _too_few(t, observed, samples, min_samples, shown, limit, m)
    return _observed(t, observed, samples, shown, limit, m)


def _best_case(t: Threshold, sel: Selection, m: int, good: int | None = None) -> float | None:
    """The value this threshold would see if the run went on to m samples and every one of
    the missing samples were fast and successful; None where that bound says nothing.

    A run smaller than min_samples cannot *pass* on thin evidence, but it can already have
    *failed* beyond repair: 400 requests all slower than 600 ms break a P99 < 600 ms
    however many fast requests might follow.
    """
    scheduled = sel.requests + sel.dropped
    missing = m - scheduled
    if t.metric == "first_image" and t.op in ("<", "<="):
        return _best_first_image(t, sel.first_image, m)
    if t.metric == "latency" and t.op in ("<", "<="):
        if t.aggregation == "max":
            return sel.max_ms
        q = 50.0 if t.aggregation == "med" else t.percentile if t.aggregation == "p" else None
        if q is None or not sel.requests:
            return None
        rank = math.ceil(q / 100.0 * m) - (m - sel.requests)   # the missing samples rank first
        if rank < 1:
            return None
        return sel.percentile(100.0 * (rank - 0.5) / sel.requests)
    if t.metric == "success" and t.op in (">", ">="):
        return (sel.ok + missing) / m
    if t.metric == "goodput" and t.aggregation == "rate" and t.op in (">", ">=") and good is not None:
        return (good + missing) / m
    if t.metric == "failures" and t.op in ("<", "<="):
        return (scheduled - sel.ok) / m
    if t.metric == "dropped" and t.aggregation == "rate" and t.op in ("<", "<="):
        return sel.dropped / m
    return None


def _best_first_image(t: Threshold, first: Timings, m: int) -> float | None:
    """As latency's best case, over first images: the missing ones all arrive at once."""
    if t.aggregation == "max":
        return first.max_ms if first.count else None
    q = 50.0 if t.aggregation == "med" else t.percentile if t.aggregation == "p" else None
    if q is None or not first.count:
        return None
    rank = math.ceil(q / 100.0 * m) - (m - first.count)
    if rank < 1:
        return None
    return first.percentile(100.0 * (rank - 0.5) / first.count)


def _missing_tags(t: Threshold, recorder: Recorder) -> str:
    known = recorder.tags()
    for tag, value in t.filters:
        if tag in known and value not in known[tag]:
            names = ", ".join(known[tag]) or "none"
            return f"no {tag} named {value!r} in this run (known: {names})"
    return ""


def goodput_count(recorder: Recorder, filters: Sequence[tuple[str, str]], slo_ms: float,
                  now_s: float | None = None) -> int:
    """Requests in the selection that succeeded within slo_ms (a request whose HDR bucket straddles the
    objective does not count: goodput is never over-counted)."""
    return recorder.select((*filters, ("expected_response", "true")), now_s=now_s).count_within(slo_ms)


def evaluate_thresholds(thresholds: Sequence[Threshold], recorder: Recorder, min_samples: int,
                        now_s: float | None = None, confidence: ConfidenceOptions | None = None,
                        gateway: GatewayFacts | None = None) -> list[ThresholdResult]:
    options = confidence or conf.DEFAULT
    selections: dict[tuple[tuple[str, str], ...], Selection] = {}
    out = []
    for t in thresholds:
        if t.metric in GATEWAY_METRICS:
            # Facts of the run's end, not estimates of a population: no interval (as for counts).
            out.append(_judge_gateway(t, recorder, gateway, min_samples, live=now_s is not None))
            continue
        sel = selections.get(t.filters)
        if sel is None:
            sel = selections[t.filters] = recorder.select(t.filters, now_s=now_s)
        good = goodput_count(recorder, t.filters, t.slo_ms, now_s) if t.slo_ms is not None else None
        result = _judge_one(t, sel, min_samples, recorder, good, live=now_s is not None)
        conf.apply(result, sel, options, good=good)
        out.append(result)
    return out


# --- sentences -----------------------------------------------------------------------------

_SUBJECT = {
    ("success", "rate"): "success rate", ("failures", "rate"): "failure rate",
    ("requests", "count"): "the number of requests",
    ("requests", "rate"): "request rate", ("requests", "rps"): "request rate",
    ("dropped", "count"): "the number of dropped starts", ("dropped", "rate"): "share of starts dropped",
    ("goodput", "rate"): "goodput", ("goodput", "rps"): "goodput per second",
    ("goodput", "count"): "the number of requests within the SLO",
}


def _subject(t: Threshold) -> str:
    text = _SUBJECT.get((t.metric, t.aggregation), f"{t.metric} {t.aggregation_text()}")
    return f"{text} [{t.filter_text()}]" if t.filters else text


def result_sentence(r: ThresholdResult) -> str:
    """One sentence: "latency p(99) was 712.4 ms, limit < 600 ms (+18.7 %)"."""
    t = r.threshold
    if r.verdict == "insufficient" or r.observed is None:
        return f"{_subject(t)} could not be judged: {r.detail}"
    if r.verdict == "inconclusive":
        return f"{_subject(t)} is inconclusive: {r.detail}"
    shown = format_value(t.metric, t.aggregation, r.observed)
    limit = format_limit(t.metric, t.aggregation, t.value)
    if t.unit == "":
        off = f" ({(r.observed - t.value) * 100:+.3g} percentage points)"
    else:
        off = f" ({(r.observed - t.value) / abs(t.value) * 100:+.1f} %)" if t.value else ""
    return f"{_subject(t)} was {shown}, limit {t.op} {limit}{off}"


# --- the run as a whole ------------------------------------------------------------------------


def _latency_ceiling(r: ThresholdResult) -> bool:
    t = r.threshold
    return t.metric in TIME_METRICS and t.op in ("<", "<=") and r.observed is not None


def stall_explains(r: ThresholdResult, stall_ms: float) -> bool:
    """Whether a latency ceiling would have held had every request been timed `stall_ms` faster:
    a generator that stalls that long adds at most that much to a latency it measures."""
    return _latency_ceiling(r) and r.observed is not None and r.threshold.check(r.observed - stall_ms)


def _stalls_behind_failures(failed: Sequence[ThresholdResult], recorder: Recorder,
                            health: HealthReport) -> list[str]:
    """Generator stalls inside the window of a failed latency threshold, long enough to explain it."""
    t0 = recorder.start_time
    if t0 is None:
        return []
    windows = {name: (t0 + a, t0 + b) for name, a, b in recorder.stages}
    end = recorder.stop_time or recorder.last_ts or t0
    found = []
    for r in failed:
        if r.threshold.metric not in TIME_METRICS:
            continue
        stage = dict(r.threshold.filters).get("stage")
        start, stop = windows.get(stage, (t0, end)) if stage else (t0, end)
        stall = health.samples.worst_stall_ms(start, stop)
        if stall > STALL_LIMIT_MS and stall_explains(r, stall):
            where = f"during stage {stage}" if stage else "during the run"
            found.append(f"the load generator stalled for {stall:.0f} ms {where}, enough to explain "
                         f"{r.threshold.label()} failing")
    return found


def _refused_alike(sel: Selection, facts: RunFacts) -> str | None:
    """Every request refused with one and the same client error: the run, not the target's capacity."""
    if sel.requests < 10 or sel.ok:
        return None
    codes = {k: v for k, v in sel.status_codes.items() if k != "dropped"}
    code, count = max(codes.items(), key=lambda kv: kv[1], default=("", 0))
    if not code.isdigit() or not 400 <= int(code) < 500 or int(code) in (408, 429) or count < 0.99 * sel.requests:
        return None
    message = facts.errors[0][0] if facts.errors else ""
    return (f"every request was refused with HTTP {code}" + (f" ({message})" if message else "") +
            " — the target or the run is misconfigured (a key, a model name, a URL), not overloaded")


def _unreachable(sel: Selection, facts: RunFacts) -> str | None:
    if facts.target_unreachable:
        return facts.target_unreachable
    errors = sel.status_codes.get("connection_error", 0)
    if sel.requests and sel.ok == 0 and errors >= 0.9 * sel.requests:
        return f"{errors:,} of {sel.requests:,} requests could not connect"
    return None


def _key_pool_note(sel: Selection, facts: RunFacts) -> str | None:
    limited = sel.status_codes.get("429", 0)
    retried = max(0, sel.attempts - sel.requests)
    if facts.key_pool is None or not (limited or retried) or not sel.requests:
        return None
    if limited < 0.001 * sel.requests and retried < 0.01 * sel.requests:
        return None
    return (f"{limited:,} requests ended rate-limited (429) and {retried:,} attempts were retries, with "
            f"{facts.key_pool:,} API key(s) shared by every user: the key pool's own limits may be the cause "
            f"(client.keys in the scenario; LOADTEST_API_KEYS for a real target)")


def attributions(failed: Sequence[ThresholdResult], provider: attr.ProviderSide | None,
                 health: HealthReport | None, direct: bool = False) -> dict[int, attr.Attribution]:
    """Each failed latency ceiling the provider side has a figure for, by id() of its result."""
    if provider is None:
        return {}
    out = {}
    for r in failed:
        if _latency_ceiling(r) and r.observed is not None:
            a = attr.attribute(r.threshold, r.observed, provider, health, direct)
            if a is not None:
                out[id(r)] = a
    return out


def drop_attributions(failed: Sequence[ThresholdResult], recorder: Recorder, provider: attr.ProviderSide | None,
                      health: HealthReport | None, facts: RunFacts, now_s: float | None) -> dict[int, attr.Attribution]:
    """Each failed threshold that an open model's dropped starts decide (a dropped one, or a success or
    failures rate that holds without them), by id() of its result: whose the drops are
    (loadtest.attribution.dropped_starts)."""
    if provider is None or facts.open_pool is None:
        return {}
    max_vus, peak_rps = facts.open_pool
    out = {}
    for r in failed:
        t = r.threshold
        if r.observed is None or t.metric not in ("dropped", "success", "failures"):
            continue
        sel = recorder.select(t.filters, now_s=now_s)
        if not sel.dropped:
            continue
        if t.metric != "dropped":
            if t.aggregation != "rate" or not sel.requests:
                continue
            ok_share = sel.ok / sel.requests
            if not t.check(ok_share if t.metric == "success" else 1.0 - ok_share):
                continue       # it fails on its own answers too: the drops do not decide it
        a = attr.dropped_starts(t, r.observed, max_vus, peak_rps, provider, health, facts.direct)
        if a is not None:
            out[id(r)] = a
    return out


def provider_figures(results: Sequence[ThresholdResult], provider: attr.ProviderSide) -> None:
    """Set each latency result's provider-side value of the same figure, where the record has one."""
    for r in results:
        got = provider.figure(r.threshold)
        if got is not None:
            r.provider_observed, r.provider_samples = got


def judge(thresholds: Sequence[Threshold], recorder: Recorder, health: HealthReport | None = None,
          facts: RunFacts | None = None, *, min_samples: int = 100, live: bool = False,
          now_s: float | None = None, confidence: ConfidenceOptions | None = None,
          provider: attr.ProviderSide | None = None, gateway: GatewayFacts | None = None) -> Verdict:
    """The verdict. `live`: mid-run (the SLA view, abort_on_fail), with rates over `now_s` seconds and
    only the evidence a running run has; the verdict is then provisional. `confidence`: the level of each
    threshold's interval and what an undecided one makes of the run (default: 95 %, the run proves nothing).
    `provider`: the provider side's record of the same run (loadtest.attribution), which decides whose a
    failed latency ceiling is before the generator's stall heuristic is asked; live too (with the live
    `health`, for the generator's strain), so the SLA view and abort_on_fail blame who the end would blame.
    `gateway`: the providers' record behind a [sut] gateway, read at the run's end, which the gateway
    metrics' thresholds are judged from (without it they cannot be judged)."""
    facts = facts or RunFacts()
    options = confidence or conf.DEFAULT
    results = evaluate_thresholds(thresholds, recorder, min_samples, now_s if live else None, options,
                                  gateway=None if live else gateway)
    if facts.aborted_by:
        for r in results:
            if r.threshold.label() == facts.aborted_by and r.verdict != "fail":
                # It broke while running and stopped the run; a recovery at the end does not undo that.
                r.verdict = "fail"
                r.detail += " — it failed during the run and aborted it"
    failed = [r for r in results if r.verdict == "fail"]
    insufficient = [r for r in results if r.verdict == "insufficient"]
    inconclusive = [r for r in results if r.verdict == "inconclusive"]
    everything = recorder.select(now_s=now_s if live else None)
    invalid: list[Reason] = []
    notes: list[Reason] = [Reason("note", n) for n in facts.notes]
    if (note := _key_pool_note(everything, facts)) is not None:
        notes.append(Reason("note", note))

    invalid += [Reason("harness", f"the suite itself failed: {e}") for e in facts.harness_errors]
    if (why := _unreachable(everything, facts)) is not None:
        invalid.append(Reason("unreachable", f"the target could not be reached ({why}) — this run proves "
                                             f"nothing about it"))
    elif (why := _refused_alike(everything, facts)) is not None:
        invalid.append(Reason("misconfigured", why))
    if not live and facts.end in (End.STOPPED, End.INTERRUPTED, End.FAULT):
        how = {End.STOPPED: "stopped by hand", End.INTERRUPTED: "interrupted",
               End.FAULT: "stopped by a fault of the suite"}[facts.end]
        invalid.append(Reason("incomplete", f"the run was {how} at {facts.elapsed_s:,.0f} s of its planned "
                                            f"{facts.planned_s:,.0f} s: an incomplete run proves nothing"))
    if facts.workers_lost:
        invalid.append(Reason("workers", f"{len(facts.workers_lost)} of {facts.workers_expected} Locust workers "
                                         f"were lost during the run ({', '.join(facts.workers_lost)}): the load "
                                         f"was not offered as planned"))
    invalid += [Reason("action", f"a scheduled action did not happen: {a}") for a in facts.actions_failed]

    if provider is not None:
        provider_figures(results, provider)
    found = attributions(failed, provider, health, facts.direct)
    found.update(drop_attributions(failed, recorder, provider, health, facts, now_s if live else None))
    for r in failed:
        r.attribution = found.get(id(r))
    decided = {k: a for k, a in found.items() if a.kind != attr.UNDECIDED}
    generator: list[str] = []
    if health is not None and not live:
        generator = list(health.reasons)
        if failed and not generator:
            generator = _stalls_behind_failures([r for r in failed if id(r) not in decided], recorder, health)
    stopped = facts.generator_abort
    # Breaches found not to be the target's: the generator's own queueing, or the mock's own lateness.
    not_targets = {attr.GENERATOR: ("generator", " — this run proves nothing about the target"),
                   attr.MOCK_LATE: ("mock", " — the mock could not keep its own profile, so this run proves "
                                            "nothing about the target")}
    queued = [Reason(not_targets[a.kind][0], a.text + not_targets[a.kind][1])
              for r in failed if (a := found.get(id(r))) is not None and a.kind in not_targets
              and not (stopped is not None and r.threshold.label() == stopped.label)]
    if stopped is not None:
        # The live gate's own finding, kept whatever the record says at the end (or if it cannot be read then).
        queued.insert(0, Reason("mock" if stopped.kind == attr.MOCK_LATE else "generator",
                                f"abort_on_fail stopped the run at {stopped.at_s:.0f} s on "
                                f"{stopped.whose}, not the target's: {stopped.text} — this run "
                                f"proves nothing about the target"))
    if generator or queued:
        if generator:
            detail = "; ".join(generator)
            invalid.append(Reason("generator", f"the load generator was saturated: {detail} — the load was not "
                                               f"offered as planned, so this run proves nothing about the target"))
        invalid += queued
        # A strained generator adds at most its stalls to a latency; a breach bigger than that is the
        # target's all the same — unless the suite itself failed too. With the provider side's record,
        # the target's is what breached on the provider's side as well.
        stall = health.worst_stall_ms if health is not None else 0.0

        def targets(r: ThresholdResult) -> bool:
            a = decided.get(id(r))
            if a is not None:
                return a.kind == attr.TARGET
            if stopped is not None and r.threshold.label() == stopped.label:
                return False      # the live gate found it the generator's; nothing at the end says otherwise
            return not stall_explains(r, stall)
        beyond = [r for r in failed if _latency_ceiling(r) and targets(r)]
        only_generator = all(r.kind == "generator" for r in invalid)
        if beyond and only_generator:
            reasons = invalid + [Reason("breach", f"{result_sentence(r)} — the target's: "
                                                  f"{decided[id(r)].text}" if id(r) in decided else
                                        f"{result_sentence(r)} — the target's even after taking off "
                                        f"the generator's worst stall ({stall:.0f} ms)") for r in beyond]
            return Verdict("fail", ExitCode.FAIL, results, reasons + notes)

    if invalid:
        reasons = invalid + [Reason("breach", f"measured anyway, not attributable to the target: "
                                              f"{result_sentence(r)}") for r in failed]
        return Verdict("invalid", ExitCode.INVALID, results, reasons + notes)
    if failed or facts.aborted_by:
        reasons = []
        if is_saturation_abort(facts.aborted_by):
            reasons.append(Reason("saturated", f"the run was stopped early on {facts.aborted_by}: past its capacity "
                                               f"the target's queue grows without bound"))
        elif facts.aborted_by:
            reasons.append(Reason("aborted", f"the run was aborted early because {facts.aborted_by} failed"))
        reasons += [Reason("breach", result_sentence(r) + (f" — {found[id(r)].text}" if id(r) in found else ""))
                    for r in failed]
        return Verdict("fail", ExitCode.FAIL, results, reasons + notes)
    if insufficient or inconclusive:
        reasons = [Reason("insufficient", result_sentence(r)) for r in insufficient]
        if insufficient:
            reasons.append(Reason("insufficient", "a run too small to judge proves nothing; run longer or lower "
                                                  "[gate] min_samples"))
        reasons += [Reason("inconclusive", result_sentence(r)) for r in inconclusive]
        if inconclusive:
            reasons.append(Reason("inconclusive", f"a threshold the run cannot decide at {options.percent} "
                                                  f"confidence proves nothing; run longer (or see [gate] "
                                                  f"confidence and inconclusive)"))
        return Verdict("invalid", ExitCode.INVALID, results, reasons + notes)
    if not results:
        notes.insert(0, Reason("no_thresholds", "no thresholds were defined, so nothing was checked"))
    return Verdict("pass", ExitCode.PASS, results, notes)


def _due(r: ThresholdResult, elapsed_s: float) -> bool:
    t = r.threshold
    return t.abort_on_fail and r.verdict == "fail" and elapsed_s >= t.delay_abort_eval_s


def _generators(r: ThresholdResult) -> bool:
    return r.attribution is not None and r.attribution.kind in (attr.GENERATOR, attr.MOCK_LATE)


def abort_trigger(results: Sequence[ThresholdResult], elapsed_s: float) -> ThresholdResult | None:
    """The first abort_on_fail threshold that failed once its delay_abort_eval has passed, unless the live
    gate found its breach to be the generator's own queueing (see generator_abort_trigger)."""
    for r in results:
        if _due(r, elapsed_s) and not _generators(r):
            return r
    return None


def generator_abort_trigger(results: Sequence[ThresholdResult], elapsed_s: float) -> ThresholdResult | None:
    """The first abort_on_fail threshold due to abort whose breach the provider side did not share while the
    generator was strained (judge's attribution, with `provider` and `health`): stopping on it proves nothing
    about the target, so the run is stopped as INVALID (RunFacts.generator_abort), not as the target's FAIL."""
    for r in results:
        if _due(r, elapsed_s) and _generators(r):
            return r
    return None
