"""Open-model load for Locust: requests start on a schedule, whatever the responses do.

Locust's users are closed loops: a slow target slows the load down with it, and the
time a request spent waiting to be sent never shows (coordinated omission). Here
users are VUs that wait for *tickets*; a scheduler greenlet issues one ticket per
scheduled start (constant or linearly ramping rate, as k6's arrival-rate
executors; evenly spaced, Poisson or gamma-bursty; or a replayed trace, whose
tickets also carry the model and use case it names). A ticket carries its scheduled
time and latency counts from it. A start
that finds every VU busy is *dropped* and counted: a slow target holding every VU
is the target's failure. A scheduler that wakes late shows a generator that could
not keep up: each start's lateness goes to `on_lag` (a histogram, so memory stays flat),
and a run whose lag is large proves nothing.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import gevent
from gevent.event import AsyncResult

from ..loadmodel import OpenLoad, Stage

# (seconds from the schedule's start, model, use case): one arrival, as a source hands it over
Arrival = tuple[float, str | None, str | None]


@dataclass(frozen=True)
class Ticket:
    index: int
    scheduled_at: float          # time.perf_counter() time the request was due to start
    model: str | None = None     # a trace's model for this request (None: the target's)
    use_case: str | None = None  # a trace's use case (None: drawn from the scenario's mix)


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

    def count_at(self, t: float) -> float:
        """Arrivals the schedule has made by t seconds (the inverse of time_of)."""
        for (t0, t1, r0, r1), c0 in zip(self.segments, self._cum):
            if t <= t1:
                x = max(0.0, t - t0)
                return c0 + r0 * x + (r1 - r0) / (t1 - t0) * x * x / 2 if t1 > t0 else c0
        return self.total

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


def even(schedule: ArrivalSchedule, index: int = 0, count: int = 1) -> Iterator[float]:
    """Evenly spaced starts; with `count` processes, this one (`index`) takes every count-th, interleaved."""
    n = index + 1
    while (t := schedule.time_of(n)) is not None:
        yield t
        n += count


def renewal(schedule: ArrivalSchedule, shape: float, rng: random.Random, count: int = 1) -> Iterator[float]:
    """Starts whose gaps (in expected arrivals) are Gamma(shape, 1/shape): shape 1 is a Poisson process,
    below 1 burstier, above 1 more regular. The schedule's rate is followed by time-rescaling: the k-th start
    comes when the schedule's cumulative count reaches the sum of k gaps. With `count` processes, each draws
    its own stream at 1/count of the rate (their sum is Poisson again at shape 1)."""
    n = 0.0
    while True:
        n += rng.gammavariate(shape, count / shape)
        t = schedule.time_of(n)
        if t is None:
            return
        yield t


def arrivals_for(load: OpenLoad, index: int = 0, count: int = 1) -> Iterator[Arrival]:
    """This process's part of an open model's starts: `index` of `count` processes sharing the load."""
    if load.trace is not None:
        yield from load.trace.replay(index, count, until_s=load.duration_s)
        return
    schedule = ArrivalSchedule(load.stages, load.start_rate)
    if load.arrivals in ("poisson", "gamma"):
        shape = 1.0 if load.arrivals == "poisson" else load.burstiness
        # A string seed is hashed with SHA-512 by random.Random: the same stream in every process and run.
        times: Iterator[float] = renewal(schedule, shape, random.Random(f"{load.seed or 0}/{index}"), count)
    else:
        times = even(schedule, index, count)
    for t in times:
        yield t, None, None


class ArrivalExecutor:
    def __init__(self, arrivals: Iterable[Arrival], on_drop: Callable[[float], None] | None = None,
                 on_lag: Callable[[float], None] | None = None) -> None:
        self.arrivals: Iterator[Arrival] = iter(arrivals)   # this process's part of the starts
        self.on_drop = on_drop
        self.on_lag = on_lag
        # The VUs waiting in take(), the last to come back on top: each start goes to the VU that went idle
        # last, whose connection is warm, so a run holds about as many connections as it has requests in
        # flight, not max_vus of them (a FIFO would cycle every VU through every connection).
        self._waiting: list[AsyncResult[Ticket | None]] = []
        self.issued = 0
        self.dropped = 0
        self.max_lag_ms = 0.0
        # The fewest VUs left waiting after a start was handed out. The stack's bottom that many have never
        # had a start (nothing below the top is taken), so the VUs ever used are the process's VUs less this.
        self.min_idle: int | None = None
        self.started_at: float | None = None
        self.finished = False
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._greenlet = gevent.spawn(self._run)

    @property
    def idle(self) -> int:
        """VUs waiting in take()."""
        return len(self._waiting)

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for slot in waiting:
            slot.set(None)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.finished = True
        self._release()

    def take(self) -> Ticket | None:
        """Block until this VU is handed a start; None once the schedule is over."""
        if self.finished:
            return None
        slot: AsyncResult[Ticket | None] = AsyncResult()
        self._waiting.append(slot)
        try:
            return slot.get()
        finally:
            if not slot.ready():          # the VU was stopped while it waited: no start may go to it
                with contextlib.suppress(ValueError):
                    self._waiting.remove(slot)

    def _run(self) -> None:
        assert self.started_at is not None
        i = 1
        for t, model, use_case in self.arrivals:
            due = self.started_at + t
            delay = due - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            lag_ms = max(0.0, (time.perf_counter() - due) * 1000.0)
            self.max_lag_ms = max(self.max_lag_ms, lag_ms)
            if self.on_lag is not None:
                self.on_lag(lag_ms)
            if self._waiting:
                # Taken off the stack now, so a burst of due starts cannot over-issue.
                self._waiting.pop().set(Ticket(i, due, model, use_case))
                self.issued += 1
                if self.min_idle is None or len(self._waiting) < self.min_idle:
                    self.min_idle = len(self._waiting)
            else:
                self.dropped += 1
                self.min_idle = 0
                if self.on_drop is not None:
                    self.on_drop(due)
            i += 1
        self.finished = True
        self._release()

