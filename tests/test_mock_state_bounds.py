"""Per-key state is bounded by count and by bytes, and every step on it is O(1): the rate-limit table,
per-key capacity pools, and the key cache, driven through their real code paths in process."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockprovider.behaviours import Call, Capacity, Kind, Outcome, RateLimit
from mockprovider.behaviours.base import OK
from mockprovider.limits import MAX_KEY_BYTES
from mockprovider.settings import Settings
from mockprovider.wire.common import KeyCheck


async def _generated() -> Outcome:
    return OK


def at(loop: asyncio.AbstractEventLoop, key: str, t: float) -> Call:
    call = Call("relay", key, loop=loop)
    call.received_at = t   # the bucket's clock, set by hand so the test needs no waiting
    return call


def run(coro_fn):
    return asyncio.run(coro_fn())


def test_the_rate_limit_table_never_passes_its_cap_and_keeps_the_keys_in_use() -> None:
    """One request an hour (the slowest allowed), so no bucket ever refills: the old table kept them
    all and rebuilt itself for every new key past its cap."""
    limiter = RateLimit(Settings(requests_per_minute=1 / 60, burst=2), max_keys=1_000)

    async def flood() -> list[Kind]:
        loop = asyncio.get_running_loop()
        hot: list[Kind] = []
        table = limiter.buckets
        for i in range(5_000):
            await limiter.handle(at(loop, f"hs_flood_{i:05d}", i * 0.01), _generated)
            if i % 100 == 0:   # a key in use, among the flood
                hot.append((await limiter.handle(at(loop, "hs_hot_key", i * 0.01), _generated)).kind)
            assert len(limiter.buckets) <= 1_000
            assert limiter.buckets is table   # updated in place, never rebuilt
        return hot

    hot = run(flood)
    assert hot[:2] == [Kind.OK, Kind.OK] and set(hot[2:]) == {Kind.RATE_LIMITED}   # its budget was kept
    assert "hs_flood_00000" not in limiter.buckets and "hs_flood_04999" in limiter.buckets
    order = list(limiter.buckets)   # by last use: the hot key, last seen at request 4,900, among the newest
    assert order[-1] == "hs_flood_04999" and order.index("hs_hot_key") == len(order) - 100


def test_refilled_buckets_are_forgotten_before_any_other() -> None:
    limiter = RateLimit(Settings(requests_per_minute=60, burst=1), max_keys=100_000)   # full again in 1 s

    async def two_waves() -> None:
        loop = asyncio.get_running_loop()
        for i in range(500):
            await limiter.handle(at(loop, f"hs_first_{i}", 0.0), _generated)
        for i in range(500):   # ten seconds on, every first-wave bucket is full: two go per new key
            await limiter.handle(at(loop, f"hs_second_{i}", 10.0), _generated)

    run(two_waves)
    assert len(limiter.buckets) == 500 and all(str(k).startswith("hs_second_") for k in limiter.buckets)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 5)), min_size=1, max_size=300))
def test_a_key_the_table_kept_is_limited_exactly_as_a_lone_bucket(steps: list[tuple[int, float]]) -> None:
    """Against a reference token bucket per key, with no cap: while a key stays in the table its
    answers are the reference's; an evicted key starts full (the documented approximation)."""
    rpm, burst = 30.0, 3
    limiter = RateLimit(Settings(requests_per_minute=rpm, burst=burst), max_keys=8)
    reference: dict[str, list[float]] = {}

    async def replay() -> None:
        loop = asyncio.get_running_loop()
        now = 0.0
        for key_no, dt in steps:
            now += dt
            key = f"hs_prop_{key_no}"
            kept = key in limiter.buckets
            got = (await limiter.handle(at(loop, key, now), _generated)).kind
            if not kept:
                reference[key] = [float(burst), now]
            tokens, last = reference[key]
            tokens = min(burst, tokens + (now - last) * (rpm / 60.0))
            want = Kind.OK if tokens >= 1 else Kind.RATE_LIMITED
            reference[key] = [tokens - 1 if want is Kind.OK else tokens, now]
            assert got is want, (key, now)
            assert len(limiter.buckets) <= 8

    run(replay)


def test_long_keys_are_tracked_by_a_digest() -> None:
    limiter = RateLimit(Settings(requests_per_minute=60, burst=1))

    async def two() -> tuple[Kind, Kind]:
        loop = asyncio.get_running_loop()
        long_key = "hs_" + "k" * 8000
        first = await limiter.handle(at(loop, long_key, 0.0), _generated)
        again = await limiter.handle(at(loop, long_key, 0.1), _generated)
        return first.kind, again.kind

    assert run(two) == (Kind.OK, Kind.RATE_LIMITED)   # still limited, as one key
    (stored,) = limiter.buckets
    assert isinstance(stored, int) and len(str(stored)) <= MAX_KEY_BYTES


def test_per_key_pools_are_capped_and_forgotten_when_idle() -> None:
    capacity = Capacity(Settings(slots=100, queue=100, per_key_slots=1, per_key_queue=1), max_key_pools=10)

    async def scenario() -> tuple[list[Outcome], Outcome, int, int]:
        loop = asyncio.get_running_loop()
        release = asyncio.Event()

        async def generating() -> Outcome:
            await release.wait()
            return OK

        held = [asyncio.create_task(capacity.handle(at(loop, f"mj-key-{i}", 0.0), generating)) for i in range(10)]
        queued = asyncio.create_task(capacity.handle(at(loop, "mj-key-0", 0.0), generating))
        await asyncio.sleep(0)
        eleventh = await capacity.handle(at(loop, "mj-key-10", 0.0), generating)
        waiting = capacity.queued
        release.set()
        done = await asyncio.gather(*held, queued)
        return done, eleventh, waiting, len(capacity.key_pools)

    done, eleventh, waiting, pools_after = run(scenario)
    assert eleventh.kind is Kind.OVERLOADED and eleventh.detail == "key"
    assert waiting == 1   # the second call of mj-key-0, counted without a scan of the pools
    assert all(o.ok for o in done)
    assert pools_after == 0 and capacity.queued == 0 and capacity.running == 0


def test_the_key_cache_is_bounded_by_count_and_by_bytes() -> None:
    keys = KeyCheck(re.compile(r"^hs_[A-Za-z0-9_\-]{4,}\Z"))
    for i in range(25_000):
        key = f"hs_flood_{i:06d}"
        assert keys.check(key, f"Bearer {key}") == key
        assert len(keys.by_header) <= KeyCheck.MAX_REMEMBERED
    long_key = "hs_" + "x" * 8000
    assert keys.check(long_key, f"Bearer {long_key}") == long_key   # still checked,
    assert f"Bearer {long_key}" not in keys.by_header                # never kept
    held = sum(len(h or "") + len(k) for h, k in keys.by_header.items())
    assert held <= KeyCheck.MAX_REMEMBERED * 2 * KeyCheck.MAX_HEADER


@pytest.mark.parametrize("flood", [1_000, 3_000])
def test_every_cancelled_waiter_leaves_the_queue(flood: int) -> None:
    """Every queued call cancelled, newest first (the worst order for a list): the queue is empty
    at once and the slot still works."""
    capacity = Capacity(Settings(slots=1, queue=flood))

    async def scenario() -> tuple[int, int, Outcome]:
        loop = asyncio.get_running_loop()
        release = asyncio.Event()

        async def generating() -> Outcome:
            await release.wait()
            return OK

        first = asyncio.create_task(capacity.handle(at(loop, "k", 0.0), generating))
        waiting = [asyncio.create_task(capacity.handle(at(loop, "k", 0.0), generating)) for _ in range(flood)]
        await asyncio.sleep(0)
        peak = capacity.queued
        for t in reversed(waiting):
            t.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        left = capacity.queued
        release.set()
        return peak, left, await first

    peak, left, first = run(scenario)
    assert peak == flood and left == 0 and first.ok and capacity.running == 0
