"""Nothing in the load generator keeps memory per request: twice the requests, the same memory.

The pieces that see every request or scheduled start (the exact recorder, the arrival executor with
its lateness and drop callbacks, the health samples) are driven with N and then 2N events inside the
same few seconds of run time, and Python's allocations are traced (tracemalloc). A per-request list
would add at least 8 bytes (a pointer) per event, 400 KB for the extra 50,000; the bound below is a
tenth of that, and leaves room for a dict resizing once.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import gevent

from loadtest.health import HealthSamples
from loadtest.locust.arrival import ArrivalExecutor
from loadtest.recorder import Recorder

EVENTS = 50_000
EXTRA_BYTES_ALLOWED = 40_000     # < 1 byte per extra event


def traced(work: Callable[[int], object], n: int) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        kept = work(n)
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return size


def record(n: int) -> Recorder:
    rec = Recorder(stages=[("ramp", 0.0, 5.0), ("hold", 5.0, 10.0)], start_time=1000.0)
    for i in range(n):
        ts = 1000.0 + 10.0 * i / n          # the same ten seconds whatever n is: only the count changes
        rec.record(name="relay midjourney-v7", target="relay", latency_ms=20.0 + (i % 500), ok=i % 97 != 0,
                   status=200 if i % 97 else 503, ts=ts)
        if i % 50 == 0:
            rec.record_dropped(name="relay midjourney-v7", target="relay", ts=ts)
    rec.select()                             # flushes every buffer into the histograms
    return rec


def schedule(n: int) -> tuple[ArrivalExecutor, HealthSamples]:
    samples = HealthSamples()
    dropped: list[int] = [0]

    def on_drop(due: float) -> None:
        dropped[0] += 1

    def on_lag(lag_ms: float) -> None:
        # Every start here is due at once, so its lateness grows with the test's own run time, and so would
        # the lateness histogram's keys (whole milliseconds: bounded by the worst lag, not by the count).
        # One lateness for all keeps this test about the count.
        samples.add_schedule_lag(min(lag_ms, 1.0))

    executor = ArrivalExecutor(((0.0, None, None) for _ in range(n)), on_drop=on_drop, on_lag=on_lag)
    executor.start()
    assert executor._greenlet is not None
    gevent.joinall([executor._greenlet])
    assert executor.dropped == dropped[0] == n    # no VU waited: every start was dropped, and counted
    assert sum(samples.schedule_lag.values()) == n
    return executor, samples


def test_the_recorder_keeps_no_memory_per_request() -> None:
    traced(record, 1_000)      # numpy, HDR layouts and caches allocated once, before measuring
    one, two = traced(record, EVENTS), traced(record, 2 * EVENTS)
    assert two - one < EXTRA_BYTES_ALLOWED, (one, two)


def test_the_arrival_clock_keeps_no_memory_per_start() -> None:
    traced(schedule, 1_000)
    one, two = traced(schedule, EVENTS), traced(schedule, 2 * EVENTS)
    assert two - one < EXTRA_BYTES_ALLOWED, (one, two)


def test_a_histogram_made_and_dropped_is_freed_at_once_not_left_to_the_cyclic_collector() -> None:
    import weakref

    from hdrh.histogram import HdrHistogram

    from mockprovider.hdr import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES, acyclic

    gc.disable()
    try:
        plain = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        plain_ref = weakref.ref(plain)
        del plain
        assert plain_ref() is not None          # hdrh's histogram/encoder cycle: it waits for the collector
        made = acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES))
        made.record_value(1500)
        other = acyclic(HdrHistogram.decode(made.encode()))   # it still encodes, decodes and adds
        other.add(made)
        assert other.get_total_count() == 2
        made_ref = weakref.ref(made)
        del made
        assert made_ref() is None               # freed by its reference count alone
    finally:
        gc.enable()
