"""`--workers N`: several server processes on one port, the limits counted across them.

Each request here goes on a connection of its own, so the kernel's SO_REUSEPORT hash spreads them
over the workers; every test checks (x-mock-worker) that both workers answered, so a limit that held
only because one worker saw everything would not pass. With 2 workers and n fresh connections, all
landing on one worker has probability 2^(1-n): below 1e-5 for 18 connections, 3e-5 for the 16 of
the smallest burst here. The limits themselves are asserted exactly: shared counts leave no tolerance.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from mockserver import MockServer
from prometheus_client.parser import text_string_to_metric_families

from mockprovider.record_client import RecordClient

KEY = "sk-test-openai-0001"
BODY = {"model": "dall-e-4", "prompt": "White sneaker on marble, studio lighting"}


def generate(server: MockServer, key: str = KEY) -> httpx.Response:
    # A client per request: a new connection, so the kernel picks a worker each time.
    with httpx.Client(timeout=30) as http:
        return http.post(f"{server.url}/openai/v1/images/generations", json=BODY,
                         headers={"Authorization": f"Bearer {key}"})


def total_requests(server: MockServer, provider: str) -> float:
    answer = httpx.get(f"{server.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    text = answer.text
    return sum(s.value for family in text_string_to_metric_families(text) if family.name == "mock_requests"
               for s in family.samples if s.name == "mock_requests_total" and s.labels["provider"] == provider)


def test_rate_limit_holds_across_workers(start_mock) -> None:
    """Burst 10 at 6 requests/minute (a token every 10 s): 20 requests sent one after another within a
    couple of seconds get exactly 10 successes, then 429s. The refill adds 0.1 token a second, so a
    whole extra token would need the 20 requests to take 10 s: the tolerance is zero."""
    server = start_mock("--workers", "2", "--latency-scale", "0", "--set", "dall-e-4.error_rate=0",
                        "--set", "dall-e-4.requests_per_minute=6", "--set", "dall-e-4.burst=10")
    started = time.monotonic()
    answers = [generate(server) for _ in range(20)]
    assert time.monotonic() - started < 10, "the burst took too long for the zero tolerance to hold"
    statuses = [r.status_code for r in answers]
    assert statuses == [200] * 10 + [429] * 10
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    assert {r.headers["x-mock-worker"] for r in answers[10:]} <= {"0", "1"}
    # Another key has its own budget, in whichever worker.
    assert generate(server, "sk-test-openai-0002").status_code == 200
    assert total_requests(server, "dall-e-4") == 21


def test_slots_hold_across_workers(start_mock) -> None:
    """slots=3 and no queue: of 9 requests sent at once (each generating for at least 0.4 s, the
    profile's minimum of 800 ms at half scale), exactly 3 run and 6 are refused as overloaded."""
    server = start_mock("--workers", "2", "--latency-scale", "0.5", "--seed", "1",
                        "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.requests_per_minute=6000",
                        "--set", "dall-e-4.burst=100", "--set", "dall-e-4.slots=3", "--set", "dall-e-4.queue=0")
    barrier = threading.Barrier(9)

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            return http.post(f"{server.url}/openai/v1/images/generations", json=BODY,
                             headers={"Authorization": f"Bearer {KEY}"})

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(one, range(9)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 3, statuses
    assert all(s != 200 for s in statuses[3:])
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}


def test_queue_is_shared_and_every_queued_call_starts(start_mock) -> None:
    """slots=2, queue=10: 6 concurrent requests over both workers show 2 running and 4 queued in
    total while they wait, and all 6 succeed: a slot freed in one worker starts a call queued in
    the other."""
    server = start_mock("--workers", "2", "--latency-scale", "0.5", "--seed", "1",
                        "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.requests_per_minute=6000",
                        "--set", "dall-e-4.burst=100", "--set", "dall-e-4.slots=2", "--set", "dall-e-4.queue=10")
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=10) as http:
            while not done.is_set():
                status = http.get(f"{server.url}/admin/providers/dall-e-4").json()
                seen.append((status["running"], status["queued"]))
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # The kernel's SO_REUSEPORT hash may send all six connections to one worker (2 x 2**-6, about 3 % of
        # batches): such a batch shows nothing shared, so it is sent again, at most three times in all.
        for _ in range(3):
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: generate(server), range(6)))
            if len({r.headers.get("x-mock-worker") for r in answers}) == 2:
                break
    finally:
        done.set()
        watcher.join()
    assert [r.status_code for r in answers] == [200] * 6
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    assert max(running for running, _ in seen) == 2
    assert (2, 4) in seen
    assert seen[-1] == (0, 0) or all(running <= 2 for running, _ in seen)


def test_admin_change_reaches_every_worker_before_it_answers(start_mock) -> None:
    server = start_mock("--workers", "2", "--latency-scale", "0", "--set", "dall-e-4.error_rate=0",
                        "--set", "dall-e-4.requests_per_minute=60000", "--set", "dall-e-4.burst=1000")
    before = [generate(server) for _ in range(18)]
    assert [r.status_code for r in before] == [200] * 18
    assert server.admin("dall-e-4", outage=True)["settings"]["outage"] is True
    after = [generate(server) for _ in range(18)]
    assert all(r.status_code >= 500 for r in after), [r.status_code for r in after]
    assert {r.headers["x-mock-worker"] for r in after} == {"0", "1"}
    reset = httpx.post(f"{server.url}/admin/providers/dall-e-4/reset", timeout=10)
    assert reset.status_code == 200
    again = [generate(server) for _ in range(18)]
    assert {r.headers["x-mock-worker"] for r in again} == {"0", "1"}
    assert all(r.status_code != 503 for r in again)


def test_metrics_and_record_count_every_worker(start_mock) -> None:
    server = start_mock("--workers", "2", "--latency-scale", "0", "--set", "dall-e-4.error_rate=0",
                        "--set", "dall-e-4.requests_per_minute=60000", "--set", "dall-e-4.burst=1000")
    answers = [generate(server) for _ in range(24)]
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    assert total_requests(server, "dall-e-4") == 24
    summary = RecordClient(server.url).summary()
    assert summary.requests == 24
    assert sum(s.requests for s in summary.select(provider="dall-e-4")) == 24
    assert len(summary.worker.split("+")) == 2


def _ready(server: MockServer) -> dict:
    assert server._dir is not None
    return json.loads((Path(server._dir.name) / "ready.json").read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_sigterm_stops_every_worker(start_mock) -> None:
    server = start_mock("--workers", "2", "--latency-scale", "0")
    workers = _ready(server)["workers"]
    assert len(workers) == 2 and all(not _gone(pid) for pid in workers)
    server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in workers)


def test_a_crashed_worker_is_reported(start_mock) -> None:
    server = start_mock("--workers", "2", "--latency-scale", "0")
    workers = _ready(server)["workers"]
    os.kill(workers[1], signal.SIGKILL)
    assert server.proc is not None
    assert server.proc.wait(15) == 1
    time.sleep(0.2)   # the output reader catches up
    assert any("worker 1" in line and "exited with code -9" in line for line in server.output), server.output
    deadline = time.monotonic() + 10
    while not _gone(workers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(workers[0])


def _at_once(server: MockServer, n: int, key: str = KEY) -> list[httpx.Response]:
    """n requests sent together, each on a connection of its own."""
    barrier = threading.Barrier(n)

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            return http.post(f"{server.url}/openai/v1/images/generations", json=BODY,
                             headers={"Authorization": f"Bearer {key}"})

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_per_key_slots_hold_across_workers(start_mock) -> None:
    """per_key_slots=2 and no per-key queue, the provider's own pool far larger: of 16 requests of one
    key sent at once (each generating for at least 0.4 s), exactly 2 run and 14 are refused, over both
    workers. Counted per worker, 2 workers would let up to 4 run. Another key has its own 2 slots."""
    server = start_mock("--workers", "2", "--latency-scale", "0.5", "--seed", "1",
                        "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.requests_per_minute=6000",
                        "--set", "dall-e-4.burst=100", "--set", "dall-e-4.per_key_slots=2",
                        "--set", "dall-e-4.per_key_queue=0")
    answers = _at_once(server, 16)
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 2, statuses
    assert all(s == 503 for s in statuses[2:]), statuses   # OpenAI's overloaded answer, as with one worker
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    # Every slot was given back, in both workers: the same burst again gets the same 2, and another
    # key at the same time gets 2 of its own.
    again = _at_once(server, 16)
    assert sorted(r.status_code for r in again).count(200) == 2
    other = _at_once(server, 4, "sk-test-openai-0002")
    assert sorted(r.status_code for r in other).count(200) == 2


def test_per_key_queue_holds_across_workers_and_every_queued_call_starts(start_mock) -> None:
    """per_key_slots=2, per_key_queue=3, set by the admin API (which reaches both workers): of 16
    requests of one key sent at once, 2 run, 3 wait and then run (a slot freed in one worker starts
    a call queued in the other), 11 are refused. While they wait, the provider shows 3 queued in all."""
    server = start_mock("--workers", "2", "--latency-scale", "0.5", "--seed", "1",
                        "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.requests_per_minute=6000",
                        "--set", "dall-e-4.burst=100")
    settings = server.admin("dall-e-4", per_key_slots=2, per_key_queue=3)["settings"]
    assert (settings["per_key_slots"], settings["per_key_queue"]) == (2, 3)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=10) as http:
            while not done.is_set():
                seen.append(http.get(f"{server.url}/admin/providers/dall-e-4").json()["queued"])
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        answers = _at_once(server, 16)
    finally:
        done.set()
        watcher.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 5, statuses
    assert all(s == 503 for s in statuses[5:]), statuses
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    assert max(seen) == 3 and 3 in seen, seen
    assert httpx.get(f"{server.url}/admin/providers/dall-e-4", timeout=10).json()["queued"] == 0


def test_midjourney_account_limit_holds_across_workers(start_mock) -> None:
    """The built-in account limit, 3 running and 10 queued per mj-api-secret, with jobs that take
    minutes: 20 submits of one account, each on a new connection, answer 3 submitted, 10 queued
    (with 0..9 tasks ahead, counted in both workers) and 7 queue-full, in that order."""
    server = start_mock("--workers", "2", "--set", "midjourney-v7.latency_multiplier=100",
                        "--set", "midjourney-v7.error_rate=0")
    answers = []
    for _ in range(20):
        with httpx.Client(timeout=10) as http:
            answers.append(http.post(f"{server.url}/midjourney/mj/submit/imagine", json={"prompt": "Gold watch"},
                                     headers={"mj-api-secret": "busy-account"}))
    assert all(r.status_code == 200 for r in answers)
    codes = [r.json()["code"] for r in answers]
    assert codes == [1] * 3 + [22] * 10 + [23] * 7, codes
    assert [r.json()["properties"]["numberOfQueues"] for r in answers[3:13]] == list(range(10))
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}
    with httpx.Client(timeout=10) as http:
        other = http.post(f"{server.url}/midjourney/mj/submit/imagine", json={"prompt": "Gold watch"},
                          headers={"mj-api-secret": "other-account"})
    assert other.json()["code"] == 1   # another account is not held up


def test_record_requests_and_live_cover_every_worker(start_mock) -> None:
    """24 requests, one after another on connections of their own, each with its own x-request-id:
    the raw entries come back from both workers, every one once, in arrival order, whether in one
    page or in pages of 5 (a cursor per worker); the live view counts all 24, with the percentiles
    of the merged exact histograms."""
    server = start_mock("--workers", "2", "--latency-scale", "0.01", "--seed", "3",
                        "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.requests_per_minute=60000",
                        "--set", "dall-e-4.burst=1000")
    client = RecordClient(server.url)
    record_id = client.reset("baseline")
    assert len(record_id.split("+")) == 2
    answers = []
    for i in range(24):
        with httpx.Client(timeout=30) as http:
            answers.append(http.post(f"{server.url}/openai/v1/images/generations", json=BODY,
                                     headers={"Authorization": f"Bearer {KEY}", "x-request-id": f"req-{i:02d}"}))
    assert [r.status_code for r in answers] == [200] * 24
    assert {r.headers["x-mock-worker"] for r in answers} == {"0", "1"}

    whole = client.page(0, 1000)
    assert whole.record_id == record_id and not whole.more and whole.missed == 0
    assert [e.correlation_id for e in whole.entries] == [f"req-{i:02d}" for i in range(24)]
    assert len({e.worker for e in whole.entries}) == 2
    by_worker = {w: [e.seq for e in whole.entries if e.worker == w] for w in {e.worker for e in whole.entries}}
    assert all(seqs == sorted(seqs) and len(set(seqs)) == len(seqs) for seqs in by_worker.values())
    paged = list(client.entries(page_size=5))
    assert [(e.worker, e.seq) for e in paged] == [(e.worker, e.seq) for e in whole.entries]
    first = client.page(0, 5)
    assert len(first.entries) == 5 and first.more and first.cursor.count(",") == 1
    assert client.page(whole.next_since, 5).entries == []

    summary = client.summary()
    assert summary.record_id == record_id and summary.requests == 24
    lean = client.summary(seconds=False)       # the query reaches every worker: none sends its timeline
    assert sum(n for _, _, n in summary.seconds) == 24 and lean.seconds == [] and lean.requests == 24
    live = client.live()
    assert live.record_id == record_id and len(live.workers) == 2
    (baseline,) = [w for w in live.windows if w.group.name == "baseline"]
    assert baseline.group.requests == 24 and baseline.group.outcomes == {"ok": 24}
    (provider,) = baseline.providers
    assert provider.name == "dall-e-4/dall-e-4" and provider.requests == 24
    exact = summary.histogram("total", provider="dall-e-4", window="baseline")
    assert exact.count == 24
    assert [provider.total_ms[f"p{p}"] for p in (50, 90, 99)] == [round(v, 3) for v in exact.percentiles((50, 90, 99))]
    assert provider.total_ms["max"] == round(exact.max_ms, 3)
    assert sum(n for _, n, _ in live.seconds) == 24


def test_record_cursor_of_several_workers_is_checked(start_mock) -> None:
    server = start_mock("--workers", "2", "--latency-scale", "0")
    for query in ("since=1,2,3", "since=x,1", "since=-1", "limit=0"):
        r = httpx.get(f"{server.url}/admin/record/requests?{query}", timeout=10)
        assert r.status_code == 400 and "error" in r.json(), (query, r.text)
    assert httpx.get(f"{server.url}/admin/record/requests?since=0,0", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/admin/record/live?hdr=2", timeout=10).status_code == 400


def _mj(server: MockServer, method: str, path: str, secret: str, body: dict | None = None) -> httpx.Response:
    # A client per request: a new connection, so a task's submit and its polls land on either worker.
    with httpx.Client(timeout=30) as http:
        return http.request(method, f"{server.url}/midjourney/mj{path}", json=body,
                            headers={"mj-api-secret": secret})


def test_midjourney_tasks_are_found_whichever_worker_is_asked(start_mock) -> None:
    """A task lives in the worker that took its submit. Fetches, a list and buttons sent on new
    connections find it from either worker, and each request is counted once, in /metrics and in
    the record (a fetch as a poll of its job)."""
    server = start_mock("--workers", "2", "--latency-scale", "0.01", "--seed", "2",
                        "--set", "midjourney-v7.error_rate=0")
    secret = "shop-account"
    submits = [_mj(server, "POST", "/submit/imagine", secret, {"prompt": f"Gold watch {i}"}) for i in range(16)]
    # 1: submitted; 22: submitted and queued behind the account's running tasks (on a busy machine the
    # first ones may not have finished yet). Both are accepted tasks.
    assert all(r.json()["code"] in (1, 22) for r in submits), [r.json()["code"] for r in submits]
    ids = [r.json()["result"] for r in submits]
    took = {r.json()["result"]: r.headers["x-mock-worker"] for r in submits}
    # Task ids are the proxy's 16 digits; the last three of worker w are w modulo 2, so no two workers
    # ever make the same id.
    assert len(took) == 16 and all(len(t) == 16 and int(t[-3:]) % 2 == int(w) for t, w in took.items())
    requests = len(submits)
    polled: set[str] = set()   # workers that answered a fetch
    elsewhere = 0              # fetches answered by a worker other than the one that took the submit

    def follow(task: str) -> dict:
        nonlocal requests, elsewhere
        for _ in range(3000):        # bounded: at least 30 s, for a queued task on a busy machine
            r = _mj(server, "GET", f"/task/{task}/fetch", secret)
            requests += 1
            assert r.status_code == 200 and r.content, f"task {task} not found by worker {r.headers['x-mock-worker']}"
            polled.add(r.headers["x-mock-worker"])
            elsewhere += took.get(task, r.headers["x-mock-worker"]) != r.headers["x-mock-worker"]
            if r.json()["status"] in ("SUCCESS", "FAILURE"):
                return r.json()
            time.sleep(0.01)
        raise AssertionError(f"task {task} did not finish")

    assert all(follow(task)["status"] == "SUCCESS" for task in ids)
    assert polled == {"0", "1"} and set(took.values()) == {"0", "1"}
    assert elsewhere > 0   # each of the 16 tasks' first fetch lands elsewhere with probability 1/2

    listed = _mj(server, "POST", "/task/list-by-ids", secret, {"ids": [*reversed(ids), "1234", ids[0]]})
    requests += 1
    assert [v["id"] for v in listed.json()] == list(reversed(ids))   # every worker's, in the order asked
    assert _mj(server, "GET", f"/task/{ids[0]}/fetch", "another-account").content == b""   # still per account
    requests += 1

    ups = [_mj(server, "POST", "/submit/change", secret, {"taskId": task, "action": "UPSCALE", "index": 1})
           for task in ids]
    requests += len(ups)
    assert all(r.json()["code"] in (1, 22) for r in ups), [r.json() for r in ups]
    assert all(follow(r.json()["result"])["status"] == "SUCCESS" for r in ups)
    assert _mj(server, "POST", "/submit/change", secret,
               {"taskId": "1234", "action": "UPSCALE", "index": 1}).json()["code"] == 3
    requests += 1

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    counted = sum(s.value for family in text_string_to_metric_families(text) if family.name == "mock_requests"
                  for s in family.samples if s.name == "mock_requests_total")
    assert counted == requests
    summary = RecordClient(server.url).summary()
    jobs = summary.select(provider="midjourney-v7")
    assert sum(s.requests for s in jobs) == 32                        # 16 imagines and 16 upscales, once each
    fetches = requests - 16 - 1 - 1 - 16 - 1
    assert sum(s.polls for s in jobs) == fetches                      # every fetch a poll of its job
