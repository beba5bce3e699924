"""The Midjourney task store under a flood: a submit's cost stays flat however many tasks are held.

Counted, not timed: the store counts every task its pruning looks at (`visits`), and a store that
scanned would look at all of them on every submit. The same count is on /metrics for the real mock.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from mjhelpers import metrics, submit
from mockserver import MockServer

from mockprovider.behaviours import Call
from mockprovider.behaviours.base import OK
from mockprovider.wire.midjourney.notify import Notifier
from mockprovider.wire.midjourney.store import RUNNING_TASK_BYTES, Job, JobCall, JobStore

_ids = itertools.count()


def job(owner: str = "acct", size: int = 100) -> Job:
    return Job(str(next(_ids)), owner, "IMAGINE", "p", "midjourney-v7", True, "", None, None, 0, "h", "u", 0.08,
               size=size)


def submit_to(store: JobStore, now: float, finish: bool = True, size: int = 100) -> bool:
    """A submit as the proxy makes it: room first, then the task; finished at once if `finish`."""
    if not store.make_room(size + RUNNING_TASK_BYTES, now):
        return False
    task = job(size=size)
    store.add(task)
    if finish:
        task.outcome = OK
        store.finish(task, now)
    return True


def test_a_submit_never_scans_the_store() -> None:
    """100,000 tasks held, 90,000 of them still running: a thousand more submits look at no more
    than two tasks each (the head of the finished queue, and the one evicted), not at 100,000."""
    store = JobStore(max_tasks=100_000, max_bytes=10**12, retention_s=600)
    assert all(submit_to(store, 0.0) for _ in range(10_000))
    assert all(submit_to(store, 1.0, finish=False) for _ in range(90_000))
    assert len(store.jobs) == 100_000 and store.live == 90_000
    before = store.visits
    for _ in range(1000):
        assert submit_to(store, 2.0, finish=False)    # full: the oldest finished task makes room
    assert store.visits - before <= 2 * 1000
    assert store.evicted == 1000 and len(store.jobs) == 100_000 and store.live == 91_000


def test_the_live_count_is_kept_not_counted() -> None:
    store = JobStore(max_tasks=1000, max_bytes=10**12, retention_s=600)
    running = [job() for _ in range(10)]
    for task in running:
        store.add(task)
    for task in running[:4]:
        task.outcome = OK
        store.finish(task, 0.0)
    assert store.live == 6 == sum(1 for t in store.jobs.values() if t.outcome is None)


def test_pruning_on_time_is_amortised_constant() -> None:
    """Tasks expire in the order they finished, so pruning pops from the head: over any run the
    tasks looked at are at most the tasks let go plus one per call."""
    store = JobStore(max_tasks=10**6, max_bytes=10**12, retention_s=10)
    calls = 0
    for second in range(60):
        for _ in range(500):
            assert submit_to(store, float(second))
            calls += 1
    assert store.expired == 500 * (60 - 11)        # finished at 0..48 and more than 10 s old at 59
    assert store.visits <= store.expired + store.evicted + calls
    assert len(store.jobs) == 500 * 11


def test_the_store_keeps_under_its_bytes_and_refuses_when_only_running_tasks_fill_it() -> None:
    """A task is charged its size, and RUNNING_TASK_BYTES more while it runs."""
    store = JobStore(max_tasks=10**6, max_bytes=20_000, retention_s=600)
    for _ in range(50):
        assert submit_to(store, 0.0, size=1000)
        assert store.bytes <= 20_000
    assert 10 <= len(store.jobs) < 20 and store.evicted == 50 - len(store.jobs)
    running = JobStore(max_tasks=10**6, max_bytes=20_000, retention_s=600)
    while submit_to(running, 0.0, finish=False, size=1000):
        pass
    assert running.bytes <= 20_000 and running.live == len(running.jobs) == 20_000 // (1000 + RUNNING_TASK_BYTES)


def test_an_account_gets_only_its_own_task_and_expired_tasks_are_gone() -> None:
    store = JobStore(max_tasks=10, max_bytes=10**9, retention_s=5)
    task = job(owner="shop-a")
    store.add(task)
    assert store.get(task.id, "shop-a", 0.0) is task and store.get(task.id, "shop-b", 0.0) is None
    task.outcome = OK
    store.finish(task, 100.0)
    assert store.get(task.id, "shop-a", 104.0) is task and store.get(task.id, "shop-a", 105.5) is None


@pytest.mark.parametrize("hook, allowed", [
    ("http://127.0.0.1:8080/cb", True), ("http://localhost/cb", True), ("https://[::1]/cb", True),
    ("http://LOCALHOST./cb", True), ("http://hooks.shop.example/cb", False), ("http://192.168.1.5/cb", False),
    ("http://user@127.0.0.1.evil.example/cb", False), ("file:///etc/passwd", False), ("http:///cb", False),
])
def test_callbacks_go_to_loopback_unless_the_operator_allows_more(hook: str, allowed: bool) -> None:
    assert (Notifier(frozenset()).check(hook) is None) is allowed
    assert Notifier(frozenset({"hooks.shop.example"})).check("http://hooks.shop.example/cb") is None
    assert Notifier(frozenset({"*"})).check("http://192.168.1.5/cb") is None
    assert Notifier(frozenset({"*"})).check("ftp://192.168.1.5/cb") is not None


def test_a_job_call_is_a_call() -> None:
    # The store's calls go through the behaviours as any call does.
    async def made() -> JobCall:
        return JobCall("midjourney-v7", "acct", 1, watch_admission=True)

    assert isinstance(asyncio.run(made()), Call)


def test_a_flood_of_submits_costs_each_the_same_on_the_real_mock(start_mock) -> None:
    """Through HTTP: 3,000 submits into a store of 2,000 tasks (finished at once: --latency-scale 0).
    Once it is full each submit evicts one task; the store looks at two tasks a submit at most."""
    server = start_mock("--latency-scale", "0", "--no-limits", "--mj-max-tasks", "2000")
    for i in range(2000):
        assert submit(server, f"flood-{i % 20}")["code"] == 1
    full = metrics(server)
    for i in range(1000):
        assert submit(server, f"flood-{i % 20}")["code"] == 1
    after = metrics(server)
    visits = after["mock_midjourney_store_visits_total"] - full["mock_midjourney_store_visits_total"]
    assert visits <= 2 * 1000
    assert after['mock_midjourney_tasks_pruned_total{reason="evicted"}'] == 1000
    assert after['mock_midjourney_tasks{state="finished"}'] + after['mock_midjourney_tasks{state="live"}'] == 2000


def test_the_metrics_exist_on_a_fresh_mock(fast_mock: MockServer) -> None:
    names = metrics(fast_mock)
    for name in ('mock_midjourney_tasks{state="live"}', "mock_midjourney_store_bytes",
                 'mock_midjourney_callbacks_total{outcome="dropped"}', "mock_midjourney_callbacks_waiting"):
        assert names[name] == 0, name
