"""Calls whose clients went away leave the queue and their slot at once, and an admin change or reset
reaches the calls already waiting or generating: the flood of dropped requests and the stuck reset
of a saturated provider, against the real server over real sockets.

Each generation here is fixed at 500 ms, times 1,000 while the provider is "slow": 500 s per call,
so a queue of a thousand would take days to drain on its own. The deadlines below (30 s) are
generous bounds on a correct server, orders of magnitude short of what a wrong one would take.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from mockserver import MockServer

PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
BODY = f'{{"prompt": "{PROMPT}"}}'.encode()
DEADLINE_S = 30.0
SLOW = {"slots": 1, "queue": 5000, "latency_multiplier": 1000, "requests_per_minute": 1_000_000,
        "burst": 1_000_000, "error_rate": 0}


def request_bytes(i: int) -> bytes:
    return (b"POST /relay/v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer hs_dropped_%06d\r\nContent-Length: %d\r\n\r\n%s" % (i, len(BODY), BODY))


@pytest.fixture
def slow_relay(start_mock, tmp_path) -> MockServer:
    profile = tmp_path / "fixed.toml"
    profile.write_text("[relay]\nlatency = { p50_ms = 500, p99_ms = 500, min_ms = 0, max_ms = 60000 }\n")
    server = start_mock("--profiles", str(profile), "--set", "relay.error_rate=0")
    r = httpx.patch(f"{server.url}/admin/providers/relay", json=SLOW, timeout=10)
    assert r.status_code == 200, r.text
    return server


def load(server: MockServer) -> tuple[int, int]:
    status = httpx.get(f"{server.url}/admin/providers/relay", timeout=10).json()
    return status["running"], status["queued"]


def gauges(server: MockServer) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        if line.startswith(("mock_in_flight{", "mock_queue_depth{")) and 'provider="relay"' in line:
            values[line.split("{", 1)[0]] = float(line.rsplit(" ", 1)[1])
    return values["mock_in_flight"], values["mock_queue_depth"]


async def until(server: MockServer, want: tuple[int, int]) -> tuple[int, int]:
    deadline = time.monotonic() + DEADLINE_S
    got = load(server)
    while got != want and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        got = load(server)
    return got


async def connect_and_send(server: MockServer, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = int(server.url.rsplit(":", 1)[1])

    async def one(i: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(i))
        await writer.drain()
        return reader, writer

    conns = []
    for start in range(0, count, 200):   # in waves, so the listen backlog never overflows
        conns += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 200))))
    return conns


def good_request(server: MockServer) -> httpx.Response:
    return httpx.post(f"{server.url}/relay/v1/images/generations", json={"prompt": PROMPT},
                      headers={"Authorization": "Bearer hs_good_after_the_flood"}, timeout=DEADLINE_S)


def test_a_thousand_dropped_requests_leave_the_queue_and_the_slot(slow_relay: MockServer) -> None:
    async def flood() -> tuple[tuple[int, int], tuple[int, int]]:
        conns = await connect_and_send(slow_relay, 1200)
        queued = await until(slow_relay, (1, 1199))
        for _, writer in conns:
            writer.close()
        return queued, await until(slow_relay, (0, 0))

    queued, after = asyncio.run(flood())
    assert queued == (1, 1199)      # all of them arrived and waited
    assert after == (0, 0)          # and all of them left once their clients had gone
    assert gauges(slow_relay) == (0, 0)
    httpx.patch(f"{slow_relay.url}/admin/providers/relay", json={"latency_multiplier": 1}, timeout=10)
    good = good_request(slow_relay)   # the one slot is free: served now, at the profile's 500 ms
    assert good.status_code == 200 and good.json()["data"][0]["revised_prompt"] == PROMPT
    assert load(slow_relay) == (0, 0)
    assert "Traceback" not in "".join(slow_relay.output)


@pytest.mark.parametrize("reset", ["/admin/reset", "/admin/providers/relay/reset"])
def test_a_reset_reaches_the_calls_already_queued_and_generating(slow_relay: MockServer, reset: str) -> None:
    """1,000 calls on one slot at x1000; 950 clients give up; then a reset. The 50 still connected
    (one generating, 49 queued) are answered at the profile's speed, and so is a new one."""

    async def scenario() -> tuple[tuple[int, int], list[bytes], dict]:
        conns = await connect_and_send(slow_relay, 1000)
        for _, writer in conns[50:]:
            writer.close()
        before = await until(slow_relay, (1, 49))
        r = httpx.post(slow_relay.url + reset, timeout=10)
        assert r.status_code == 200
        status = r.json() if reset.endswith("relay/reset") else r.json()["relay"]

        async def status_line(reader: asyncio.StreamReader) -> bytes:
            return await reader.readline()

        lines = await asyncio.wait_for(asyncio.gather(*(status_line(r) for r, _ in conns[:50])), DEADLINE_S)
        for _, writer in conns[:50]:
            writer.close()
        return before, lines, status

    before, lines, status = asyncio.run(scenario())
    assert before == (1, 49)
    assert status["settings"]["slots"] == 400 and status["settings"]["latency_multiplier"] == 1.0
    assert lines == [b"HTTP/1.1 200 OK\r\n"] * 50
    good = good_request(slow_relay)
    assert good.status_code == 200
    assert load(slow_relay) == (0, 0)


def test_a_patch_reaches_the_calls_in_flight(slow_relay: MockServer) -> None:
    """Five callers on one slot; the queue cut to two refuses the newest two at once; then more
    slots and a normal multiplier start the waiting ones and speed up the one generating."""

    async def scenario() -> tuple[list[bytes], tuple[int, int], list[bytes]]:
        # One at a time, each seen by the mock before the next: "the newest two" must be conns[3:].
        conns = []
        for i in range(5):
            conns += await connect_and_send(slow_relay, 1)
            assert await until(slow_relay, (1, i)) == (1, i)
        httpx.patch(f"{slow_relay.url}/admin/providers/relay", json={"queue": 2}, timeout=10)
        refused = await asyncio.wait_for(asyncio.gather(*(r.readline() for r, _ in conns[3:])), DEADLINE_S)
        after_cut = load(slow_relay)
        httpx.patch(f"{slow_relay.url}/admin/providers/relay", json={"slots": 10, "latency_multiplier": 1},
                    timeout=10)
        served = await asyncio.wait_for(asyncio.gather(*(r.readline() for r, _ in conns[:3])), DEADLINE_S)
        for _, writer in conns:
            writer.close()
        return refused, after_cut, served

    refused, after_cut, served = asyncio.run(scenario())
    assert refused == [b"HTTP/1.1 503 Service Unavailable\r\n"] * 2
    assert after_cut == (1, 2)
    assert served == [b"HTTP/1.1 200 OK\r\n"] * 3
