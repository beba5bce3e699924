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
from .arrival import ArrivalExecutor, Ticket, arrivals_for


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

    def next_arrival(self) -> Ticket | None:
        """The next generation's start, with what a trace says of it (model, use case); None: nothing now."""
        started = self.next_start()
        return None if started is None else Ticket(0, started)

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
        self.process_index = 0          # this Locust worker's index (set by the plugin); 0 in one process

    def on_spawned(self, user_count: int, target_user_count: int, on_drop: Callable[[float], None],
                   health: HealthSamples) -> bool:
        if self.arrivals is not None:
            return False
        load = self.load
        share = max(1, target_user_count or load.max_vus) / load.max_vus   # this process's part of the rate
        processes = max(1, round(1 / share))
        self.arrivals = ArrivalExecutor(arrivals_for(load, self.process_index % processes, processes),
                                        on_drop=on_drop, on_lag=health.add_schedule_lag)
        self.arrivals.start()
        return True

    def next_arrival(self) -> Ticket | None:
        if self.arrivals is None:      # VUs that are up before the clock starts wait for it
            gevent.sleep(0.05)
            return None
        ticket = self.arrivals.take()
        if ticket is None:              # the schedule is over: idle until the shape stops the run
            gevent.sleep(1.0)
            return None
        return ticket                   # latency counts from ticket.scheduled_at, when the request was due

    def next_start(self) -> float | None:
        ticket = self.next_arrival()
        return None if ticket is None else ticket.scheduled_at

    def stop(self) -> None:
        if self.arrivals is not None:
            self.arrivals.stop()

    def report(self) -> dict[str, Any]:
        a = self.arrivals
        return {"issued": a.issued, "dropped": a.dropped} if a else {}


DRIVERS: dict[type[LoadModel], type[LoadDriver]] = {ClosedLoad: ClosedDriver, OpenLoad: OpenDriver}


def driver_for(load: LoadModel) -> LoadDriver:
    return DRIVERS[type(load)](load)
