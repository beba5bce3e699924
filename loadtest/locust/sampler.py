"""Samples the load generator's own health in each Locust process (see loadtest.health)."""

from __future__ import annotations

import time

import gevent
import psutil

from ..health import SAMPLE_S, HealthSamples
from . import heap


class HealthSampler:
    """A greenlet: event-loop lag 4 times a second; the process's CPU and the machine's once a second; the
    heap's free pages handed back every 10 s (loadtest.locust.heap)."""

    def __init__(self, samples: HealthSamples) -> None:
        self.samples = samples
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _run(self) -> None:
        # Our own CPU reading, once a second: Locust's refreshes only every 10 s and reads 0 for its
        # first interval, which would hide a short run's saturation. The machine's beside it: with
        # several processes on one box, each can look fine while the box is full.
        process = psutil.Process()
        process.cpu_percent(None)
        psutil.cpu_percent(None)
        n = 0
        trim_every = round(heap.TRIM_EVERY_S / SAMPLE_S)
        while True:
            t = time.perf_counter()
            gevent.sleep(SAMPLE_S)
            self.samples.lag_ms.append(max(0.0, (time.perf_counter() - t - SAMPLE_S) * 1000.0))
            self.samples.lag_at.append(time.time())
            n += 1
            if n % 4 == 0:
                self.samples.cpu.append(process.cpu_percent(None))
                self.samples.machine_cpu.append(psutil.cpu_percent(None))
            if n % trim_every == 0:
                heap.trim()
