"""Open-model load for Locust: requests start on a schedule, whatever the responses do.

Locust's users are closed loops: a slow target slows the load down with it, and the
time a request spent waiting to be sent never shows (coordinated omission). Here
users are VUs that wait for *tickets*; a scheduler greenlet issues one ticket per
scheduled start (constant or linearly ramping rate, as k6's arrival-rate
executors). A ticket carries its scheduled time and latency counts from it. A start
that finds every VU busy is *dropped* and counted: a slow target holding every VU
is the target's failure. A scheduler that wakes late shows a generator that could
not keep up: each start's lateness goes to `on_lag` (a histogram, so memory stays flat),
and a run whose lag is large proves nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent
from gevent.queue import Queue

from ..loadmodel import Stage


@dataclass(frozen=True)
class Ticket:
    index: int
    scheduled_at: float      # time.perf_counter() time the request was due to start


class ArrivalSchedule:
    """Arrival times for stages of (duration, rate at the stage's end), rates ramping linearly."""

    def __init__(self, stages: Sequence[Stage], start_rate: float | None = None) -> None:
        self.segments: list[tuple[float, float, float, float]] = []   # (t0, t1, r0, r1)
        t, prev = 0.0, stages[0].rate if start_rate is None else start_rate
        for s in stages:
            self.segments.append((t, t + s.duration_s, prev, s.rate))
            t += s.duration_s
            prev = s.rate
        self.duration_s = t
        self._cum = [0.0]
        for t0, t1, r0, r1 in self.segments:
            self._cum.append(self._cum[-1] + (r0 + r1) / 2 * (t1 - t0))

    @property
    def total(self) -> float:
        return self._cum[-1]

    def time_of(self, n: float) -> float | None:
        """When the cumulative count of arrivals reaches n (seconds from the start), or None past the end."""
        for (t0, t1, r0, r1), c0, c1 in zip(self.segments, self._cum, self._cum[1:]):
            if n <= c1 and c1 > c0:
                need, span = n - c0, t1 - t0
                slope = (r1 - r0) / span
                if abs(slope) < 1e-12:
                    return t0 + need / r0
                # need = r0*x + slope*x^2/2, solved for x in [0, span]
                disc = r0 * r0 + 2 * slope * need
                x = (-r0 + math.sqrt(max(disc, 0.0))) / slope
                return t0 + min(max(x, 0.0), span)
        return None


class ArrivalExecutor:
    def __init__(self, schedule: ArrivalSchedule, share: float = 1.0,
                 on_drop: Callable[[float], None] | None = None,
                 on_lag: Callable[[float], None] | None = None) -> None:
        self.schedule = schedule
        self.share = share                 # this process's part of the rate (distributed runs)
        self.on_drop = on_drop
        self.on_lag = on_lag
        self.tickets: Queue[Ticket | None] = Queue()
        self.idle = 0                      # VUs waiting in take()
        self.issued = 0
        self.dropped = 0
        self.max_lag_ms = 0.0
        self.started_at: float | None = None
        self.finished = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.finished = True
        for _ in range(self.idle):
            self.tickets.put(None)

    def take(self) -> Ticket | None:
        """Block until this VU is handed a start; None once the schedule is over."""
        if self.finished:
            return None
        self.idle += 1
        return self.tickets.get()

    def _run(self) -> None:
        assert self.started_at is not None
        i = 1
        while True:
            t = self.schedule.time_of(i / self.share)
            if t is None:
                break
            due = self.started_at + t
            delay = due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            lag_ms = max(0.0, (time.perf_counter() - due) * 1000.0)
            self.max_lag_ms = max(self.max_lag_ms, lag_ms)
            if self.on_lag is not None:
                self.on_lag(lag_ms)
            if self.idle > 0:
                self.idle -= 1            # reserved now, so a burst of due starts cannot over-issue
                self.tickets.put(Ticket(i, due))
                self.issued += 1
            else:
                self.dropped += 1
                if self.on_drop is not None:
                    self.on_drop(due)
            i += 1
        self.finished = True
        while self.idle > 0:
            self.idle -= 1
            self.tickets.put(None)
