"""Connections that stop talking are closed after the configured time (idle, kept alive, a trickled
head, a trickled body), a client waiting for a slow answer is not one of them, and under a low
file-descriptor limit idle connections stop blocking service once their timeout passes.

The timeouts are set to a second or two here; "closed" is checked against a deadline of 15 s, where
a server without them (aiohttp keeps an idle connection an hour) keeps every one open.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
BODY = f'{{"prompt": "{PROMPT}"}}'.encode()
HEAD = (b"POST /relay/v1/images/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hs_test_timeouts_01\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY))
CLOSED_WITHIN_S = 15.0


def port_of(server_url: str) -> int:
    return int(server_url.rsplit(":", 1)[1])


class Peer:
    """A client connection that sends what it is given, byte by byte if told to, and records when
    the server closed it and what it answered."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CLOSED_WITHIN_S)
        self.opened = time.monotonic()
        self.answer = b""
        self.closed_after: float | None = None

    def trickle(self, data: bytes, gap_s: float = 0.2) -> None:
        def run() -> None:
            for i in range(len(data)):
                try:
                    self.sock.sendall(data[i:i + 1])
                except OSError:
                    return
                time.sleep(gap_s)
        threading.Thread(target=run, daemon=True).start()

    def wait_closed(self) -> float | None:
        try:
            while chunk := self.sock.recv(65536):
                self.answer += chunk
            self.closed_after = time.monotonic() - self.opened
        except TimeoutError:
            pass
        except ConnectionResetError:
            self.closed_after = time.monotonic() - self.opened
        finally:
            self.sock.close()
        return self.closed_after


def test_idle_kept_alive_and_trickling_connections_are_closed(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--idle-timeout", "2", "--header-timeout", "1",
                        "--body-timeout", "1")
    port = port_of(server.url)
    idle, kept, head, body = Peer(port), Peer(port), Peer(port), Peer(port)
    kept.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head.trickle(HEAD)               # about 30 s for the whole head at this pace
    body.sock.sendall(HEAD)
    body.trickle(BODY)               # about 9 s for the body
    time.sleep(0.5)
    idle.sock.setblocking(False)     # not before its time: nothing to read yet, and not closed
    with pytest.raises(BlockingIOError):
        idle.sock.recv(1, socket.MSG_PEEK)
    idle.sock.settimeout(CLOSED_WITHIN_S)
    for peer in (idle, kept, head, body):
        assert peer.wait_closed() is not None, "the server kept the connection open"
    assert kept.answer.startswith(b"HTTP/1.1 200 OK")
    assert idle.answer == b"" and head.answer == b""
    assert body.answer.startswith(b"HTTP/1.1 408 Request Timeout")   # in the relay's own shape:
    assert json.loads(body.answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert b"connection: close" in body.answer.lower()
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    assert "Traceback" not in "".join(server.output)


def test_a_client_waiting_for_a_slow_answer_is_not_idle(start_mock) -> None:
    # The relay's 42 ms median, times 100: about 4 s, past every timeout set here.
    server = start_mock("--idle-timeout", "1", "--header-timeout", "0.5", "--body-timeout", "0.5",
                        "--set", "relay.error_rate=0", "--set", "relay.latency_multiplier=100")
    with httpx.Client(timeout=60) as client:
        for _ in range(2):   # the second on the same kept-alive connection
            t0 = time.monotonic()
            r = client.post(server.url + "/relay/v1/images/generations", json={"prompt": PROMPT},
                            headers={"Authorization": "Bearer hs_test_timeouts_01"})
            assert r.status_code == 200 and time.monotonic() - t0 > 1.0   # it did wait past the idle timeout


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_idle_connections_under_a_low_fd_limit_stop_blocking_service(loop: str) -> None:
    """128 descriptors, 200 idle connections: the server runs out and cannot accept, until the idle
    timeout closes the ones it holds; then it serves again."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        proc = subprocess.Popen([sys.executable, "-m", "mockprovider", "--port", "0", "--latency-scale", "0",
                                 "--idle-timeout", "2", "--loop", loop, "--ready-file", str(ready)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_low_fd_limit, env={**os.environ})
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(proc.stdout or ()), daemon=True)
        reader.start()
        sockets: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 30
            while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
            url = json.loads(ready.read_text())["url"]
            assert httpx.get(url + "/healthz", timeout=10).status_code == 200
            for _ in range(200):
                sockets.append(socket.create_connection(("127.0.0.1", port_of(url)), timeout=5))
            served_at = None
            started = time.monotonic()
            while served_at is None and time.monotonic() - started < 30:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        served_at = time.monotonic() - started
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert served_at is not None, "service never resumed"
            held_closed = 0
            for s in sockets:
                s.settimeout(0.05)
                try:
                    held_closed += s.recv(1) == b""
                except (TimeoutError, ConnectionResetError):
                    pass
            assert held_closed >= 50   # the server had accepted and held many of them, and let go
        finally:
            for s in sockets:
                s.close()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            reader.join(5)
    log = "".join(output)
    assert "Traceback" not in log
    assert log.count("cannot accept connections") <= 10   # said once in a while, not per failed accept
