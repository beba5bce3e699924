"""Is the load generator itself the bottleneck? Loop lag and CPU, per Locust process.

A generator that cannot keep up offers less load than the scenario says and adds
its own delay to every latency; such a run proves nothing about the target. Each
process samples how late a 0.25 s sleep wakes (gevent loop lag) and its CPU; the
master merges workers' samples.
"""

from __future__ import annotations

import time

import gevent
import psutil

SAMPLE_S = 0.25
# A run is invalid when the generator was hot or late for a sustained share of it.
CPU_HOT = 90.0               # percent of one core
HOT_SHARE = 0.2              # ... for more than this share of the samples
LAG_P95_LIMIT_MS = 100.0     # gevent loop lag
SCHEDULE_P95_LIMIT_MS = 50.0  # open model: starts issued this late
# A failed threshold is not the target's if the generator stalled this long inside its window:
# every request in flight during the stall was timed that much too slow.
STALL_LIMIT_MS = 100.0


class GeneratorHealth:
    def __init__(self) -> None:
        self.lag_ms: list[float] = []
        self.lag_at: list[float] = []            # wall-clock time of each lag sample
        self.cpu: list[float] = []
        self.schedule_lag_ms: list[float] = []   # open model: how late each start went out
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)

    def _run(self) -> None:
        # Our own CPU reading, once a second: Locust's refreshes only every 10 s and reads
        # 0 for its first interval, which would hide a short run's saturation.
        process = psutil.Process()
        process.cpu_percent(None)
        n = 0
        while True:
            t = time.perf_counter()
            gevent.sleep(SAMPLE_S)
            self.lag_ms.append(max(0.0, (time.perf_counter() - t - SAMPLE_S) * 1000.0))
            self.lag_at.append(time.time())
            n += 1
            if n % 4 == 0:
                self.cpu.append(process.cpu_percent(None))

    def drain(self) -> dict[str, list[float]]:
        out = {"lag_ms": self.lag_ms, "lag_at": self.lag_at, "cpu": self.cpu,
               "schedule_lag_ms": self.schedule_lag_ms}
        self.lag_ms, self.lag_at, self.cpu, self.schedule_lag_ms = [], [], [], []
        return out

    def merge(self, data: dict[str, list[float]]) -> None:
        self.lag_ms.extend(data.get("lag_ms", []))
        self.lag_at.extend(data.get("lag_at", []))
        self.cpu.extend(data.get("cpu", []))
        self.schedule_lag_ms.extend(data.get("schedule_lag_ms", []))

    def worst_stall_ms(self, start: float = 0.0, end: float = float("inf")) -> float:
        """The longest the loop ran late between two wall-clock times."""
        return max((lag for lag, at in zip(self.lag_ms, self.lag_at) if start <= at <= end + SAMPLE_S),
                   default=0.0)


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def assess(health: GeneratorHealth) -> tuple[bool, str, dict[str, float]]:
    """(saturated, why in words, the figures)."""
    schedule_lag_p95_ms = _p95(health.schedule_lag_ms) if health.schedule_lag_ms else None
    hot = sum(1 for c in health.cpu if c >= CPU_HOT) / len(health.cpu) if health.cpu else 0.0
    lag = _p95(health.lag_ms)
    figures = {"cpu_max": max(health.cpu, default=0.0), "cpu_hot_share": round(hot, 3),
               "loop_lag_p95_ms": round(lag, 2)}
    reasons = []
    if hot > HOT_SHARE:
        reasons.append(f"load generator CPU was at or above {CPU_HOT:.0f} % for {hot:.0%} of the run")
    if lag > LAG_P95_LIMIT_MS:
        reasons.append(f"the load generator's event loop ran {lag:.0f} ms late (P95)")
    if schedule_lag_p95_ms is not None:
        figures["schedule_lag_p95_ms"] = round(schedule_lag_p95_ms, 2)
        if schedule_lag_p95_ms > SCHEDULE_P95_LIMIT_MS:
            reasons.append(f"scheduled starts went out {schedule_lag_p95_ms:.0f} ms late (P95)")
    return bool(reasons), "; ".join(reasons), figures
