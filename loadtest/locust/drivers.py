"""What each load model does at run time, in one Locust process (the models are loadtest.loadmodel).

A driver paces the users: a closed user thinks between generations and starts the next at
once; an open-model VU waits for a ticket from the arrival clock and its latency counts from
the ticket's scheduled time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import gevent

from ..health import HealthSamples
from ..loadmodel import ClosedLoad, LoadModel, OpenLoad
from .arrival import ArrivalExecutor, ArrivalSchedule


class LoadDriver:
    # Whether the recorder's clock starts when the users are up (the open model's schedule does) rather
    # than at the test's start.
    clock_starts_on_spawn = False

    def __init__(self, load: LoadModel) -> None:
        self.load = load

    def on_spawned(self, user_count: int, target_user_count: int, on_drop: Callable[[float], None],
                   health: HealthSamples) -> bool:
        """The users are up; True if this started the schedule's clock."""
        return False

    def wait_time(self, rng: random.Random) -> float:
        return 0.0

    def next_start(self) -> float | None:
        """perf_counter() time the user's next generation counts from; None: nothing to do now."""
        return time.perf_counter()

    def stop(self) -> None:
        pass


class ClosedDriver(LoadDriver):
    load: ClosedLoad

    def wait_time(self, rng: random.Random) -> float:
        lo, hi = self.load.think_time_s
        return rng.uniform(lo, hi) if hi > 0 else 0.0


class OpenDriver(LoadDriver):
    load: OpenLoad
    clock_starts_on_spawn = True

    def __init__(self, load: LoadModel) -> None:
        super().__init__(load)
        self.arrivals: ArrivalExecutor | None = None

    def on_spawned(self, user_count: int, target_user_count: int, on_drop: Callable[[float], None],
                   health: HealthSamples) -> bool:
        if self.arrivals is not None:
            return False
        load = self.load
        share = max(1, target_user_count or load.max_vus) / load.max_vus   # this process's part of the rate
        self.arrivals = ArrivalExecutor(ArrivalSchedule(load.stages, load.start_rate), share=share, on_drop=on_drop,
                                        on_lag=health.add_schedule_lag)
        self.arrivals.start()
        return True

    def next_start(self) -> float | None:
        if self.arrivals is None:      # VUs that are up before the clock starts wait for it
            gevent.sleep(0.05)
            return None
        ticket = self.arrivals.take()
        if ticket is None:              # the schedule is over: idle until the shape stops the run
            gevent.sleep(1.0)
            return None
        return ticket.scheduled_at      # latency counts from when the request was due

    def stop(self) -> None:
        if self.arrivals is not None:
            self.arrivals.stop()

    def report(self) -> dict[str, Any]:
        a = self.arrivals
        return {"issued": a.issued, "dropped": a.dropped} if a else {}


DRIVERS: dict[type[LoadModel], type[LoadDriver]] = {ClosedLoad: ClosedDriver, OpenLoad: OpenDriver}


def driver_for(load: LoadModel) -> LoadDriver:
    return DRIVERS[type(load)](load)
