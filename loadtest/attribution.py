"""Whose latency breach is it? The client's figure against the provider side's, with the generator's health.

The suite times each generation at the load generator, from its scheduled start to its answer;
the simulated providers time the same requests on their side (mockprovider.record). What lies
between the two is the generator's own queueing (a saturated Locust process answers late to
itself) and the network, or a gateway the team put in front of the providers. So a latency
ceiling that fails client-side is judged against the provider side's same figure:

- the provider side breaches too: the target breached (FAIL blames it) — unless it breached only
  by running late: the mock's record keeps, beside each answer's total time, the time its profile
  meant (`intended`: the total less how late the generation's sleep woke). A provider side that
  holds with ``MARGIN`` on that figure fell behind its own profile, short of CPU: the rig failed,
  not the target, and the run proves nothing (INVALID);
- the provider side holds with ``MARGIN`` to spare and the generator shows strain (its CPU, the
  machine's, its event loop or its schedule): the breach is the generator's own queueing, and the
  run proves nothing (INVALID);
- the provider side holds with margin and the generator shows no strain: the gap lies between the
  provider and the client (network, a gateway); the client-side breach stands — unless nothing lies
  between them but this machine's loopback (the target is the mock itself, no gateway, no connection
  toxic set): then the gap is this machine's own (the generator's queueing, or the mock's before its
  handler starts), and the run proves nothing (INVALID);
- the provider side holds narrowly, or has no figure for it: undecided here; the generator-health
  rules decide as before.

Dropped starts (an open model's VUs all busy) are judged by the same two ends, through Little's law:
at the schedule's highest rate, answers as slow as the provider side's slowest (its p99.9; its max
for a count of drops) keep that rate x that time VUs busy. When that fills the VUs (within
``MARGIN``), the target's own time held them: its breach. When it leaves a tenth of them free, the
VUs were held by what lies between: the generator's own queueing when it shows strain (INVALID),
else the network or a gateway (the breach stands, the gap named). A success (or failures) rate
that would hold without its dropped starts is judged as the drops are.

Plain data and arithmetic (the gate calls it); the reading of the record is loadtest.provider_side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mockprovider.record_client import Histogram
from mockprovider.record_client import Summary as RecordSummary

from .health import CPU_HOT, STALL_LIMIT_MS, HealthReport
from .thresholds import Threshold, format_value

# The provider side "holds with margin" when its figure keeps this share of the limit to spare: with
# the record's 3 significant figures a percentile is exact to 0.1 %, so a 10 % margin is not a matter
# of rounding; a provider figure within it leaves too little room for the gap to be the whole story.
MARGIN = 0.10

TARGET = "target"          # both sides breach
GENERATOR = "generator"    # the provider side held with margin; the generator was strained
BETWEEN = "between"        # the provider side held with margin; no strain on the generator
UNDECIDED = "undecided"    # the provider side held narrowly
MOCK_LATE = "mock_late"    # the provider side breached, but only by waking late: its profile's time held


@dataclass(frozen=True)
class ProviderSide:
    """The provider-side record as the gate reads it: which providers count (the target's, when it is
    one of the mock's; all of them behind a gateway) and which record windows stand for the stages."""
    record: RecordSummary
    providers: tuple[str, ...] = ()      # empty: every provider of the record

    def histogram(self, filters: Iterable[tuple[str, str]], metric: str = "total") -> Histogram | None:
        """The provider side's total time (or another of the record's metrics) over the series a threshold's
        filters select; None when a filter has no provider-side counterpart (e.g. a stage the record has no
        window for)."""
        f = dict(filters)
        windows = [f["stage"]] if "stage" in f else [None]
        if "stage" in f and f["stage"] not in self.record.window_names():
            return None
        providers: Sequence[str | None] = list(self.providers) or [None]
        if "target" in f:
            if self.providers and f["target"] not in self.providers:
                return None
            providers = [f["target"]] if self.providers else providers
        outcome: str | list[str] | None = None
        if "expected_response" in f:
            ok = f["expected_response"] == "true"
            outcome = "ok" if ok else sorted({s.outcome for s in self.record.series} - {"ok"})
        parts = [self.record.histogram(metric, provider=p, window=w, outcome=outcome)
                 for p in providers for w in windows]
        out = Histogram()
        for part in parts:
            out = out + part
        return out

    def figure(self, t: Threshold, metric: str = "total") -> tuple[float, int] | None:
        """The provider side's value of a latency threshold's aggregation, and its sample count."""
        if t.metric != "latency":
            return None      # time to first image has no provider-side counterpart
        h = self.histogram(t.filters, metric)
        if h is None or not h.count:
            return None
        if t.aggregation == "p":
            assert t.percentile is not None
            value = h.percentile(t.percentile)
        else:
            value = {"med": lambda: h.percentile(50.0), "avg": lambda: h.mean_ms, "min": lambda: h.min_ms,
                     "max": lambda: h.max_ms}[t.aggregation]()
        return (value, h.count) if math.isfinite(value) else None


@dataclass(frozen=True)
class Attribution:
    kind: str                 # TARGET, MOCK_LATE, GENERATOR, BETWEEN or UNDECIDED
    client_ms: float
    provider_ms: float
    provider_samples: int
    text: str


def strain(health: HealthReport | None) -> list[str]:
    """The generator's signs of strain: looser than its own invalidating rules (health.assess), since
    here they only have to say where a gap the provider side already proves came from."""
    if health is None:
        return []
    found = list(health.reasons)
    if health.cpu_max >= CPU_HOT and not any("CPU" in r for r in found):
        found.append(f"its CPU peaked at {health.cpu_max:.0f} % of a core "
                     f"(at or above {CPU_HOT:.0f} % for {health.cpu_hot_share:.0%} of the run)")
    if health.machine_cpu_max >= CPU_HOT and not any("machine" in r for r in found):
        found.append(f"the machine's CPU peaked at {health.machine_cpu_max:.0f} %")
    if health.worst_stall_ms > STALL_LIMIT_MS and not any("event loop" in r for r in found):
        found.append(f"its event loop stalled for {health.worst_stall_ms:.0f} ms")
    return found


def dropped_starts(t: Threshold, observed: float, max_vus: int, peak_rps: float, side: ProviderSide,
                   health: HealthReport | None, direct: bool = False) -> Attribution | None:
    """Whose are the dropped starts behind a failed threshold (see the module's note); None when the
    provider side has no answers to judge them by."""
    h = side.histogram(())
    if h is None or not h.count or max_vus <= 0 or peak_rps <= 0:
        return None
    which = "max" if t.aggregation == "count" else "p(99.9)"
    held_ms = h.max_ms if which == "max" else h.percentile(99.9)
    if not math.isfinite(held_ms):
        return None
    need = peak_rps * held_ms / 1000.0
    own = (f"at {peak_rps:,.0f} req/s, answers as slow as the provider side's {which} of {held_ms:,.1f} ms "
           f"(over {h.count:,} answers) keep about {need:,.0f} of the {max_vus:,} VUs busy")
    if need > max_vus * (1.0 - MARGIN):
        return Attribution(TARGET, observed, held_ms, h.count, f"the target's own time held the VUs: {own}")
    signs = _this_machine(strain(health), direct)
    if signs:
        return Attribution(GENERATOR, observed, held_ms, h.count,
                           f"{t.label()} failed on VUs the target did not hold ({own}): the generator's own "
                           f"queueing held the rest ({'; '.join(signs)})")
    return Attribution(BETWEEN, observed, held_ms, h.count,
                       f"the target did not hold the VUs ({own}): they were held between the provider and the "
                       f"client (the network, a gateway), the generator showed no strain")


def _holds_with_margin(t: Threshold, value: float) -> bool:
    return t.check(value) and value <= t.value * (1.0 - MARGIN)


def _this_machine(signs: list[str], direct: bool) -> list[str]:
    """The generator's signs of strain; on a direct loopback run, a gap with none is still this machine's."""
    if signs or not direct:
        return signs
    return ["nothing but this machine's loopback lies between the two ends (the mock itself, no gateway, no "
            "connection toxic), so the gap is this machine's: the generator's own queueing, or the mock's before "
            "its handler starts"]


def attribute(t: Threshold, client_ms: float, side: ProviderSide, health: HealthReport | None,
              direct: bool = False) -> Attribution | None:
    """Whose is a failed latency ceiling (op < or <=); None when the provider side has no figure for it.
    `direct`: nothing lies between the client and the provider side but this machine's loopback."""
    if t.op not in ("<", "<="):
        return None
    got = side.figure(t)
    if got is None:
        return None
    provider_ms, samples = got
    what = t.aggregation_text()
    shown = format_value(t.metric, t.aggregation, provider_ms)
    seen = format_value(t.metric, t.aggregation, client_ms)
    if not t.check(provider_ms):
        meant = side.figure(t, "intended")
        if meant is not None and _holds_with_margin(t, meant[0]):
            return Attribution(MOCK_LATE, client_ms, provider_ms, samples,
                               f"the provider side breached only by running late: its profile meant {what} "
                               f"{format_value(t.metric, t.aggregation, meant[0])}, it answered {shown} over "
                               f"{samples:,} requests (the client saw {seen}) because the mock woke its timers "
                               f"late, short of CPU")
        return Attribution(TARGET, client_ms, provider_ms, samples,
                           f"the provider side breached too: it answered {what} {shown} over {samples:,} "
                           f"requests, the client saw {seen}")
    if not _holds_with_margin(t, provider_ms):
        return Attribution(UNDECIDED, client_ms, provider_ms, samples,
                           f"the provider side held narrowly ({what} {shown}, the client saw {seen})")
    signs = _this_machine(strain(health), direct)
    if signs:
        cpu = max(health.cpu_max, health.machine_cpu_max) if health is not None else 0.0
        return Attribution(GENERATOR, client_ms, provider_ms, samples,
                           f"{t.label()} failed through the generator's own queueing: the provider answered "
                           f"{what} {shown}, the client saw {seen}, CPU {cpu:.0f} % ({'; '.join(signs)})")
    return Attribution(BETWEEN, client_ms, provider_ms, samples,
                       f"the provider side held ({what} {shown} over {samples:,} requests, the client saw {seen}): "
                       f"the gap lies between the provider and the client (the network, a gateway), the generator "
                       f"showed no strain")


__all__ = ["BETWEEN", "GENERATOR", "MARGIN", "MOCK_LATE", "TARGET", "UNDECIDED", "Attribution", "ProviderSide",
           "attribute", "dropped_starts", "strain"]
