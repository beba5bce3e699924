"""Can this run show what its thresholds ask? Said up front, before any load is sent.

A threshold needs a number of requests before it can pass at all: the gate's `min_samples` floor,
and the evidence its interval needs at `[gate] confidence` even if every request is fast and
successful (a P99 needs 368 requests at 95 %, 99.95 % success 7,680; loadtest.confidence). A
scenario whose load cannot make that many — `single` against a direct provider makes about 27
images in 30 s — can fail, or prove nothing, but never pass. `warnings()` says so when the run
starts, with the length that would do, instead of after minutes of load.

The estimate is rough on purpose: an open model makes its scheduled starts; a closed user makes one
request per (latency + think time), with the latency the simulated target's profile gives (its
mean service time, scaled) and nothing known of a URL target's, so nothing is said for one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mockprovider.profile import load_profiles
from mockprovider.settings import parse_set_option

from .confidence import samples_to_pass
from .loadmodel import ClosedLoad, OpenLoad
from .scenario import Scenario
from .thresholds import Threshold

__all__ = ["Estimate", "expected_requests", "needed", "warnings"]

# Requests that count against min_samples (see loadtest.gate._observe).
_FLOORED = {"latency", "success", "failures", "goodput"}


@dataclass(frozen=True)
class Estimate:
    total: float
    by_stage: dict[str, float]
    per_request_s: float | None    # closed model: the latency assumed for one request
    basis: str                     # what it rests on, in words


def _latency_s(s: Scenario) -> float | None:
    """The simulated target's mean service time, as the run's mock is set up."""
    if not s.target.on_mock:
        return None
    try:
        profile = load_profiles(s.mock.profiles).get(s.target.name)
    except Exception:   # a broken profile file is reported by the run itself
        return None
    if profile is None:
        return None
    multiplier = 1.0
    for text in s.mock.sets:
        try:
            name, key, value = parse_set_option(text)
        except ValueError:
            continue
        if name == s.target.name and key == "latency_multiplier":
            multiplier = float(value)
    return profile.latency.mean_ms / 1000.0 * s.mock.latency_scale * multiplier


def expected_requests(s: Scenario) -> Estimate | None:
    load = s.load
    if isinstance(load, OpenLoad):
        if load.trace is not None:
            by_stage, at = {}, 0.0
            for st in load.stages:
                by_stage[st.name] = float(load.trace.count_between(at, at + st.duration_s))
                at += st.duration_s
        else:
            by_stage, prev = {}, load.stages[0].rate if load.start_rate is None else load.start_rate
            for st in load.stages:
                by_stage[st.name] = (prev + st.rate) / 2 * st.duration_s
                prev = st.rate
        return Estimate(load.scheduled_starts, by_stage, None, "its scheduled starts")
    if not isinstance(load, ClosedLoad):
        return None
    latency = _latency_s(s)
    if latency is None:
        return None
    think = sum(load.think_time_s) / 2
    size, concurrency = s.client.batch_size, s.client.batch_concurrency
    # A batch of `size` through `concurrency` slots takes ceil(size / concurrency) generations' time.
    per_cycle_s = math.ceil(size / concurrency) * latency + think
    by_stage = {st.name: st.users * size * st.duration_s / per_cycle_s if per_cycle_s > 0 else math.inf
                for st in load.stages}
    users = max(st.users for st in load.stages)
    thought = f" and {think:g} s of thought" if think else ""
    return Estimate(sum(by_stage.values()), by_stage, latency,
                    f"{users:,} users, about {latency:,.2f} s a request{thought}")


def needed(t: Threshold, s: Scenario) -> tuple[int, str] | None:
    """The fewest requests with which t can pass, and why; None where no number applies."""
    level = s.gate.confidence.level
    floor = s.min_samples if t.metric in _FLOORED or (t.metric == "dropped" and t.aggregation == "rate") else 0
    evidence = samples_to_pass(t, level) or 0
    if max(floor, evidence) <= 0:
        return None
    if evidence >= floor:
        return evidence, f"{evidence:,} at {s.gate.confidence.percent} confidence"
    return floor, f"{floor:,}, the [gate] min_samples floor"


def warnings(s: Scenario) -> list[str]:
    """What the run cannot show, said before it starts; empty when it can show everything it asks."""
    estimate = expected_requests(s)
    if estimate is None:
        return []
    short: list[tuple[float, Threshold, int, str]] = []
    for t in s.thresholds:
        need = needed(t, s)
        if need is None:
            continue
        stage = dict(t.filters).get("stage")
        expected = estimate.by_stage.get(stage, 0.0) if stage else estimate.total
        if expected < need[0]:
            short.append((expected, t, need[0], need[1]))
    if not short:
        return []
    worst = max(short, key=lambda x: x[2] / max(x[0], 1.0))
    expected_total = estimate.total
    what = "; ".join(f"{t.label()} needs at least {why}" + (f" (about {exp:,.0f} expected in its stage)"
                                                            if dict(t.filters).get("stage") else "")
                     for exp, t, _, why in short)
    factor = worst[2] / max(worst[0], 1.0)
    longer = s.duration_s * factor
    return [f"{s.name} against {s.target.name} will make about {expected_total:,.0f} requests in "
            f"{s.duration_s:,.0f} s ({estimate.basis}), too few for what it must show: {what}. It can fail or "
            f"prove nothing, but cannot pass; run it for about {_duration(longer)} (--duration) or with more load"]


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:,.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:,.0f} min"
    return f"{math.ceil(seconds):,} s"
