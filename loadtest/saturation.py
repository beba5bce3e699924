"""Over-saturation: an open-model run whose target can no longer keep up, seen before its end.

Below its capacity a target settles: as many requests finish each second as start, the number in
flight stays near rate x latency (Little's law), latency holds steady. Past it, a queue grows
without bound: the backlog rises by (offered - served) every second, every queued request waits
longer than the one before, and once every VU is busy starts are dropped. A short run over
capacity can still pass a relaxed latency limit before its queue has grown enough to break it,
so a capacity search cannot wait for the thresholds alone (guidellm stops on the same signs).

`SaturationCheck` reads the recorder's per-second timeline from the end of the warm-up on and finds
the run over-saturated when

- starts were dropped (at least 2, and 0.1 % of those offered, in the last 5 s): every VU was
  already busy; or
- the backlog grew (offered minus finished and dropped since the warm-up is at least 3 % of what
  was offered, and twice the Poisson noise of that count) **and** latency rose with it (the
  per-second P50's least-squares slope is at least three standard errors above zero, and adds a
  quarter of the fitted starting P50, and 20 ms, over the window);

on two checks in a row, so one noisy second decides nothing. Rising latency alone is a queue filling
towards a steady state (which near capacity takes a while); a growing backlog alone is noise or a
slow completion burst; both together is a queue without a bound. Judging the whole measured window
rather than its last seconds is what lets 10 % over capacity show within a short step: its backlog
grows by a tenth of the rate every second, which a 5 s window cannot tell from noise.

This module is arithmetic only; `loadtest.locust.saturation_watch` runs it during a Locust run
(`[gate] stop_on_saturation = true`) and stops the run with the finding as its abort reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SaturationCheck", "Finding", "ABORT_PREFIX", "is_saturation_abort", "WINDOW_S", "GRACE_S"]

ABORT_PREFIX = "over-saturation"
WINDOW_S = 5             # the least window judged, and the one dropped starts are counted over
GRACE_S = 3.0            # a one-stage run is checked from here on; with stages, from the end of the first
BACKLOG_SHARE = 0.03
BACKLOG_SIGMAS = 2.0
SLOPE_SIGMAS = 3.0
LATENCY_RISE_SHARE = 0.25
LATENCY_RISE_MS = 20.0
DROPPED_SHARE = 0.001
HITS_IN_A_ROW = 2


def is_saturation_abort(aborted_by: str | None) -> bool:
    return bool(aborted_by) and str(aborted_by).startswith(ABORT_PREFIX)


@dataclass(frozen=True)
class Finding:
    at_s: float
    signal: str          # "dropped" or "backlog"
    words: str


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares: (slope, its standard error, intercept at xs[0])."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return 0.0, math.inf, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    se = math.sqrt(residual / (n - 2) / sxx) if n > 2 else math.inf
    return slope, se, intercept + slope * xs[0]


class SaturationCheck:
    """`offered(a, b)`: the starts the schedule offers between a and b seconds (its expectation for random
    arrivals); `since_s`: the first second worth judging (after a warm-up)."""

    def __init__(self, offered: Callable[[float, float], float], since_s: float = GRACE_S,
                 window_s: int = WINDOW_S) -> None:
        self.offered = offered
        self.since_s = since_s
        self.window_s = window_s
        self.hits = 0

    def check(self, timeline: Sequence[Mapping[str, Any]], complete_to_s: float) -> Finding | None:
        """Judge the seconds of `timeline` (recorder rows) that are complete up to `complete_to_s`."""
        finding = self.assess(timeline, complete_to_s)
        self.hits = self.hits + 1 if finding is not None else 0
        return finding if self.hits >= HITS_IN_A_ROW else None

    def assess(self, timeline: Sequence[Mapping[str, Any]], complete_to_s: float) -> Finding | None:
        end = math.floor(complete_to_s)               # seconds [start, end) are complete
        start = math.ceil(self.since_s)
        if end - start < self.window_s:
            return None
        rows = {int(r["t_s"]): r for r in timeline}
        window = [rows.get(s, {}) for s in range(start, end)]
        recent = window[-self.window_s:]
        offered_recent = self.offered(end - self.window_s, end)
        dropped_recent = sum(int(r.get("dropped") or 0) for r in recent)
        if dropped_recent >= 2 and dropped_recent >= DROPPED_SHARE * offered_recent:
            return Finding(end, "dropped", f"{dropped_recent:,} of {offered_recent:,.0f} starts in the last "
                                           f"{self.window_s} s found every VU busy")
        offered = self.offered(start, end)
        if offered <= 0:
            return None
        dropped = sum(int(r.get("dropped") or 0) for r in window)
        finished = sum(int(r.get("requests") or 0) for r in window)
        backlog = offered - finished - dropped
        if backlog < BACKLOG_SHARE * offered or backlog < BACKLOG_SIGMAS * math.sqrt(offered):
            return None
        points = [(float(s), float(r["p50_ms"])) for s, r in zip(range(start, end), window)
                  if r.get("p50_ms") is not None]
        if len(points) < 4:
            return None
        slope, se, first = _fit([p[0] for p in points], [p[1] for p in points])
        span = points[-1][0] - points[0][0]
        if slope < SLOPE_SIGMAS * se or slope * span < max(LATENCY_RISE_SHARE * max(first, 0.0), LATENCY_RISE_MS):
            return None
        return Finding(end, "backlog", f"{backlog:,.0f} more requests started than finished in {end - start} s "
                                       f"({finished:,} finished of {offered:,.0f} offered) while the median latency "
                                       f"rose {slope:,.0f} ms a second (from {max(first, 0.0):,.0f} ms)")
