"""Was the load generator itself the bottleneck? Its samples, and what they say.

A generator that cannot keep up offers less load than the scenario says and adds its own
delay to every latency; such a run proves nothing about the target. Each Locust process
samples how late a 0.25 s sleep wakes (event-loop lag), its own CPU and the machine's, and
(open model) how late each scheduled start went out; the master merges the workers'
samples. The sampling itself is `loadtest.locust.sampler`; this module is plain data and
arithmetic, so the gate can judge from it anywhere.

Memory stays flat over a 4-hour run: loop lag and CPU are a few samples a second, kept as C
doubles (8 bytes each, not a 32-byte Python float in a list: 1.2 MB over 4 hours instead of
4.6), and the open model's per-start lateness goes into a histogram of whole milliseconds.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, MutableSequence
from dataclasses import dataclass, field
from typing import Any

SAMPLE_S = 0.25
# A run is invalid when the generator was hot or late for a sustained share of it.
CPU_HOT = 90.0                # percent of one core, per process
HOT_SHARE = 0.2               # ... for more than this share of the samples
LAG_P95_LIMIT_MS = 100.0      # event-loop lag
SCHEDULE_P95_LIMIT_MS = 50.0  # open model: starts issued this late
# A failed latency threshold is not the target's if the generator stalled this long inside its
# window: every request in flight during the stall was timed that much too slow.
STALL_LIMIT_MS = 100.0


@dataclass
class HealthSamples:
    """What one or more Locust processes measured of themselves; mergeable (workers -> master)."""
    lag_ms: MutableSequence[float] = field(default_factory=lambda: array("d"))
    lag_at: MutableSequence[float] = field(default_factory=lambda: array("d"))   # wall-clock time of each
    cpu: MutableSequence[float] = field(default_factory=lambda: array("d"))      # percent of one core
    machine_cpu: MutableSequence[float] = field(default_factory=lambda: array("d"))  # of the whole machine
    schedule_lag: dict[int, int] = field(default_factory=dict)  # whole ms late -> starts (open model)

    def __post_init__(self) -> None:
        for name in ("lag_ms", "lag_at", "cpu", "machine_cpu"):
            values = getattr(self, name)
            if not isinstance(values, array):
                setattr(self, name, array("d", values))

    def add_schedule_lag(self, lag_ms: float) -> None:
        ms = math.ceil(lag_ms) if lag_ms > 0 else 0
        self.schedule_lag[ms] = self.schedule_lag.get(ms, 0) + 1

    def drain(self) -> dict[str, Any]:
        """Everything since the last drain, as plain data for a message to the master; then forget it."""
        out = {"lag_ms": list(self.lag_ms), "lag_at": list(self.lag_at), "cpu": list(self.cpu),
               "machine_cpu": list(self.machine_cpu),
               "schedule_lag": {str(k): v for k, v in self.schedule_lag.items()}}
        self.lag_ms, self.lag_at, self.cpu, self.machine_cpu = array("d"), array("d"), array("d"), array("d")
        self.schedule_lag = {}
        return out

    def merge(self, data: Mapping[str, Any]) -> None:
        self.lag_ms.extend(float(x) for x in data.get("lag_ms", ()))
        self.lag_at.extend(float(x) for x in data.get("lag_at", ()))
        self.cpu.extend(float(x) for x in data.get("cpu", ()))
        self.machine_cpu.extend(float(x) for x in data.get("machine_cpu", ()))
        for k, v in (data.get("schedule_lag") or {}).items():
            self.schedule_lag[int(k)] = self.schedule_lag.get(int(k), 0) + int(v)

    def worst_stall_ms(self, start: float = -math.inf, end: float = math.inf) -> float:
        """The longest the loop ran late between two wall-clock times."""
        return max((lag for lag, at in zip(self.lag_ms, self.lag_at) if start <= at <= end + SAMPLE_S),
                   default=0.0)


@dataclass(frozen=True)
class HealthReport:
    """The figures, and the reasons the generator was not fit to measure (empty when it was)."""
    cpu_max: float
    cpu_hot_share: float
    machine_cpu_max: float
    machine_cpu_mean: float
    loop_lag_p95_ms: float
    worst_stall_ms: float
    schedule_lag_p95_ms: float | None
    scheduled_starts: int
    reasons: tuple[str, ...]
    samples: HealthSamples
    machine_cpu_hot_share: float = 0.0

    @property
    def saturated(self) -> bool:
        return bool(self.reasons)

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cpu_max": self.cpu_max, "cpu_hot_share": self.cpu_hot_share,
                               "machine_cpu_max": self.machine_cpu_max, "machine_cpu_mean": self.machine_cpu_mean,
                               "loop_lag_p95_ms": self.loop_lag_p95_ms, "worst_stall_ms": self.worst_stall_ms,
                               "machine_cpu_hot_share": self.machine_cpu_hot_share}
        if self.schedule_lag_p95_ms is not None:
            out["schedule_lag_p95_ms"] = self.schedule_lag_p95_ms
            out["scheduled_starts_measured"] = self.scheduled_starts
        return out


def _p95(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _p95_counts(counts: Mapping[int, int]) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    rank, seen = math.ceil(0.95 * total), 0
    for ms in sorted(counts):
        seen += counts[ms]
        if seen >= rank:
            return float(ms)
    return float(max(counts))


def assess(samples: HealthSamples, *, machine_wide: bool = False) -> HealthReport:
    """`machine_wide`: the generator ran as several processes (Locust workers), each of which can look
    fine while the box is full; then the machine's CPU (all cores) counts by the same rule as one process's."""
    hot = sum(1 for c in samples.cpu if c >= CPU_HOT) / len(samples.cpu) if samples.cpu else 0.0
    lag = _p95(samples.lag_ms)
    schedule = _p95_counts(samples.schedule_lag)
    reasons = []
    if hot > HOT_SHARE:
        reasons.append(f"load generator CPU was at or above {CPU_HOT:.0f} % for {hot:.0%} of the run")
    if lag > LAG_P95_LIMIT_MS:
        reasons.append(f"the load generator's event loop ran {lag:.0f} ms late (P95)")
    if schedule is not None and schedule > SCHEDULE_P95_LIMIT_MS:
        reasons.append(f"scheduled starts went out {schedule:.0f} ms late (P95)")
    machine = samples.machine_cpu
    machine_hot = sum(1 for c in machine if c >= CPU_HOT) / len(machine) if machine else 0.0
    if machine_wide and machine_hot > HOT_SHARE:
        reasons.append(f"the machine's CPU (all cores) was at or above {CPU_HOT:.0f} % for {machine_hot:.0%} "
                       f"of the run")
    return HealthReport(cpu_max=round(max(samples.cpu, default=0.0), 1), cpu_hot_share=round(hot, 3),
                        machine_cpu_max=round(max(machine, default=0.0), 1),
                        machine_cpu_mean=round(sum(machine) / len(machine), 1) if machine else 0.0,
                        loop_lag_p95_ms=round(lag, 2), worst_stall_ms=round(samples.worst_stall_ms(), 2),
                        schedule_lag_p95_ms=schedule, scheduled_starts=sum(samples.schedule_lag.values()),
                        reasons=tuple(reasons), samples=samples, machine_cpu_hot_share=round(machine_hot, 3))
