"""Thresholds + recording -> verdict and exit code.

Exit codes: 0 the SLA held; 1 it was breached; 2 the run proves nothing (the target was
unreachable, the load generator could not offer the load, or a threshold had too few
samples to judge). A generator that could not keep up outranks a breach — latency measured
by a saturated client is partly the client's — except a latency breach larger than the
generator's worst stall, which no generator delay can explain.

Fraction thresholds (success, failures and dropped rates) and latency thresholds with fewer
than ``min_samples`` scheduled requests in their selection are "insufficient": P99 of 40
requests is the second-worst request, not a tail — unless the breach is already beyond
repair: if even ``min_samples`` requests whose missing part all went well would still break
the limit, the threshold fails (so a short run against a slow target fails instead of
proving nothing, and abort_on_fail can act early). Counts and request rates have no such
floor — "count > 0" is itself the question.

Dropped starts (an open-model arrival that found every VU busy) count against success:
success rate = ok / (completed + dropped), and failures.rate = 1 - success.rate, so an
overloaded generator cannot hide failures by not sending the requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .recorder import Recorder, Selection
from .thresholds import Threshold, format_value

__all__ = ["RunFacts", "ThresholdResult", "Verdict", "evaluate", "evaluate_live", "abort_trigger",
           "EXIT_PASS", "EXIT_FAIL", "EXIT_INVALID"]

EXIT_PASS, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


@dataclass
class RunFacts:
    target_reachable: bool = True
    generator_saturated: bool = False
    saturation_detail: str = ""
    aborted_by: str | None = None
    notes: list[str] = field(default_factory=list)
    generator_worst_stall_ms: float | None = None   # the longest the generator's loop ran late, if measured


@dataclass
class ThresholdResult:
    threshold: Threshold
    observed: float | None
    samples: int
    verdict: str
    unit: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass
class Verdict:
    status: str
    exit_code: int
    results: list[ThresholdResult]
    reasons: list[str]

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _observe(t: Threshold, sel: Selection) -> tuple[float | None, int, bool]:
    """(observed value, samples, whether min_samples applies)."""
    scheduled = sel.requests + sel.dropped
    if t.metric == "latency":
        if not sel.requests:
            return None, 0, True
        value = {
            "p": lambda: sel.percentile(t.percentile),
            "med": lambda: sel.percentile(50.0),
            "avg": lambda: sel.mean_ms,
            "min": lambda: sel.min_ms,
            "max": lambda: sel.max_ms,
        }[t.aggregation]()
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


def _margin(t: Threshold, observed: float) -> str:
    """How far observed is from the limit, in the threshold's own unit and in percent."""
    diff = observed - t.value
    amount = format_value(t.metric, t.aggregation, abs(diff))
    pct = f" ({abs(diff) / abs(t.value) * 100:.1f} %)" if t.value else ""
    if t.unit == "":   # a rate: percentage points say it; a percentage of a percentage would not
        amount, pct = f"{abs(diff) * 100:.3g} percentage points", ""
    if t.check(observed):
        return f"{amount}{pct} to spare" if diff else "exactly at the limit"
    if t.op == "==":
        return f"off by {amount}{pct}"
    if t.op == "!=":
        return "equal to the excluded value"
    # A failing "<" limit is exceeded; a failing ">" limit is not reached.
    word = "over" if t.op in ("<", "<=") else "short"
    return f"{word} by {amount}{pct}" if diff else "exactly at the limit"


def _judge(t: Threshold, sel: Selection, min_samples: int, recorder: Recorder) -> ThresholdResult:
    observed, samples, needs_samples = _observe(t, sel)
    if observed is not None and isinstance(observed, float) and math.isnan(observed):
        observed = None
    limit = f"{t.op} {format_value(t.metric, t.aggregation, t.value)}"
    if observed is None:
        missing = _missing_tags(t, recorder)
        detail = missing or f"no requests in this selection; limit {limit}"
        return ThresholdResult(t, None, samples, "insufficient", t.unit, detail)
    shown = format_value(t.metric, t.aggregation, observed)
    if needs_samples and samples < min_samples:
        best = _best_case(t, sel, min_samples)
        if best is not None and not t.check(best):
            missing = min_samples - samples
            return ThresholdResult(t, observed, samples, "fail", t.unit,
                                   f"observed {shown} over {samples} requests, limit {limit}: "
                                   f"{_margin(t, observed)}; even if the {missing} more min_samples asks "
                                   f"for had all gone well it would be "
                                   f"{format_value(t.metric, t.aggregation, best)}")
        return ThresholdResult(t, observed, samples, "insufficient", t.unit,
                               f"only {samples} requests, at least {min_samples} needed to judge "
                               f"(observed {shown}, limit {limit})")
    verdict = "pass" if t.check(observed) else "fail"
    return ThresholdResult(t, observed, samples, verdict, t.unit,
                           f"observed {shown}, limit {limit}: {_margin(t, observed)}")


def _best_case(t: Threshold, sel: Selection, m: int) -> float | None:
    """The value this threshold would see if the run went on to m samples and every one of
    the missing samples were fast and successful; None where that bound says nothing.

    A run smaller than min_samples cannot *pass* on thin evidence, but it can already have
    *failed* beyond repair: 400 requests all slower than 600 ms break a P99 < 600 ms
    however many fast requests might follow.
    """
    scheduled = sel.requests + sel.dropped
    missing = m - scheduled
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
    if t.metric == "failures" and t.op in ("<", "<="):
        return (scheduled - sel.ok) / m
    if t.metric == "dropped" and t.aggregation == "rate" and t.op in ("<", "<="):
        return sel.dropped / m
    return None


def _missing_tags(t: Threshold, recorder: Recorder) -> str:
    known = recorder.tags()
    for tag, value in t.filters:
        if tag in known and value not in known[tag]:
            names = ", ".join(known[tag]) or "none"
            return f"no {tag} named {value!r} in this run (known: {names})"
    return ""


def _results(thresholds: Sequence[Threshold], recorder: Recorder, min_samples: int,
             now_s: float | None) -> list[ThresholdResult]:
    selections: dict[tuple[tuple[str, str], ...], Selection] = {}
    out = []
    for t in thresholds:
        sel = selections.get(t.filters)
        if sel is None:
            sel = selections[t.filters] = recorder.select(t.filters, now_s=now_s)
        out.append(_judge(t, sel, min_samples, recorder))
    return out


_SUBJECT = {
    ("success", "rate"): "success rate", ("failures", "rate"): "failure rate",
    ("requests", "count"): "the number of requests",
    ("requests", "rate"): "request rate", ("requests", "rps"): "request rate",
    ("dropped", "count"): "the number of dropped starts", ("dropped", "rate"): "share of starts dropped",
}


def _subject(t: Threshold) -> str:
    text = _SUBJECT.get((t.metric, t.aggregation), f"{t.metric} {t.aggregation_text()}")
    return f"{text} [{t.filter_text()}]" if t.filters else text


def _reason(r: ThresholdResult) -> str:
    """One sentence: "latency p(99) was 712.4 ms, limit < 600 ms (+18.7 %)"."""
    t = r.threshold
    if r.verdict == "insufficient" or r.observed is None:
        return f"{_subject(t)} could not be judged: {r.detail}"
    shown = format_value(t.metric, t.aggregation, r.observed)
    limit = format_value(t.metric, t.aggregation, t.value)
    if t.unit == "":
        off = f" ({(r.observed - t.value) * 100:+.3g} percentage points)"
    else:
        off = f" ({(r.observed - t.value) / abs(t.value) * 100:+.1f} %)" if t.value else ""
    return f"{_subject(t)} was {shown}, limit {t.op} {limit}{off}"


def evaluate(thresholds: Sequence[Threshold], recorder: Recorder, facts: RunFacts = RunFacts(),
             min_samples: int = 100) -> Verdict:
    results = _results(thresholds, recorder, min_samples, None)
    if facts.aborted_by:
        for r in results:
            if r.threshold.label() == facts.aborted_by and r.verdict != "fail":
                # It broke while running and stopped the run; a recovery at the end does not undo that.
                r.verdict = "fail"
                r.detail += " — it failed during the run and aborted it"
    failed = [r for r in results if r.verdict == "fail"]
    insufficient = [r for r in results if r.verdict == "insufficient"]
    reasons: list[str] = []
    if not facts.target_reachable:
        reasons.append("the target could not be reached — this run proves nothing about it")
    if facts.generator_saturated:
        detail = f": {facts.saturation_detail}" if facts.saturation_detail else ""
        reasons.append(f"the load generator was saturated{detail} — the load was not offered as planned, "
                       f"so this run proves nothing about the target")
    if facts.aborted_by:
        reasons.append(f"the run was aborted early because {facts.aborted_by} failed")
    if facts.target_reachable and facts.generator_saturated and facts.generator_worst_stall_ms is not None:
        # A strained generator adds at most its stalls to a latency; a breach bigger than that
        # is the target's all the same.
        beyond = [r for r in failed if _beyond_generator(r, facts.generator_worst_stall_ms)]
        if beyond:
            reasons += [f"{_reason(r)} — the target's even after taking off the generator's worst stall "
                        f"({facts.generator_worst_stall_ms:.0f} ms)" for r in beyond]
            return Verdict("fail", EXIT_FAIL, results, reasons)
    if not facts.target_reachable or facts.generator_saturated:
        reasons += [f"measured anyway, not attributable to the target: {_reason(r)}" for r in failed]
        return Verdict("invalid", EXIT_INVALID, results, reasons)
    if failed or facts.aborted_by:
        reasons += [_reason(r) for r in failed]
        return Verdict("fail", EXIT_FAIL, results, reasons)
    if insufficient:
        reasons += [_reason(r) for r in insufficient]
        reasons.append("a run too small to judge proves nothing; run longer or lower [gate] min_samples")
        return Verdict("invalid", EXIT_INVALID, results, reasons)
    if not results:
        reasons.append("no thresholds were defined, so nothing was checked")
    return Verdict("pass", EXIT_PASS, results, reasons)


def _latency_ceiling(r: ThresholdResult) -> bool:
    t = r.threshold
    return t.metric == "latency" and t.op in ("<", "<=") and r.observed is not None


def stall_explains(r: ThresholdResult, stall_ms: float) -> bool:
    """Whether a latency ceiling would have held had every request been timed `stall_ms` faster:
    a generator that stalls that long adds at most that much to a latency it measures."""
    return _latency_ceiling(r) and r.threshold.check(r.observed - stall_ms)


def _beyond_generator(r: ThresholdResult, stall_ms: float) -> bool:
    return _latency_ceiling(r) and not stall_explains(r, stall_ms)


def evaluate_live(thresholds: Sequence[Threshold], recorder: Recorder, elapsed_s: float,
                  min_samples: int) -> list[ThresholdResult]:
    """The same judgement mid-run, with request rates over the elapsed time."""
    return _results(thresholds, recorder, min_samples, elapsed_s)


def abort_trigger(results: Sequence[ThresholdResult], elapsed_s: float) -> ThresholdResult | None:
    """The first abort_on_fail threshold that failed once its delay_abort_eval has passed."""
    for r in results:
        t = r.threshold
        if t.abort_on_fail and r.verdict == "fail" and elapsed_s >= t.delay_abort_eval_s:
            return r
    return None
