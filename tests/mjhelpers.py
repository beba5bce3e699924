"""Helpers for the Midjourney tests: the proxy's calls over httpx, and real local servers to call back."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from mockserver import MockServer

PROMPT = "Gold watch on black velvet, dramatic rim light --ar 1:1"
MJ = "/midjourney/mj"
# One client with keep-alive for every call: a fresh connection (and TLS context) per call costs
# twenty times the call itself, and the flood tests make thousands.
client = httpx.Client(timeout=10)


def post(server: MockServer, path: str, secret: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"{server.url}{MJ}{path}", json=body, headers={"mj-api-secret": secret})


def submit(server: MockServer, secret: str, path: str = "/submit/imagine", **body: Any) -> dict[str, Any]:
    """A submit's answer; the proxy answers every submit with HTTP 200 and the outcome in `code`."""
    if path == "/submit/imagine":
        body.setdefault("prompt", PROMPT)
    r = post(server, path, secret, body)
    assert r.status_code == 200, r.text
    return r.json()


def fetch_raw(server: MockServer, task: str, secret: str) -> httpx.Response:
    return client.get(f"{server.url}{MJ}/task/{task}/fetch", headers={"mj-api-secret": secret})


def fetch(server: MockServer, task: str, secret: str) -> dict[str, Any]:
    r = fetch_raw(server, task, secret)
    assert r.status_code == 200 and r.content, (r.status_code, r.text)
    return r.json()


def follow(server: MockServer, task: str, secret: str, limit_s: float = 30.0) -> list[dict[str, Any]]:
    """Every view of the task, polled until it finishes (the limit only stops a broken run)."""
    views = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        view = fetch(server, task, secret)
        views.append(view)
        if view["status"] in ("SUCCESS", "FAILURE"):
            return views
        time.sleep(0.01)
    raise AssertionError(f"task {task} did not finish: last view {views[-1]}")


def finished(server: MockServer, secret: str, path: str = "/submit/imagine", **body: Any) -> dict[str, Any]:
    """Submit, and the task's view once it has finished."""
    answer = submit(server, secret, path, **body)
    assert answer["code"] in (1, 22), answer
    return follow(server, answer["result"], secret)[-1]


def metrics(server: MockServer) -> dict[str, float]:
    """/metrics' mock_midjourney_* samples, by name with labels."""
    text = client.get(f"{server.url}/metrics").text
    out = {}
    for line in text.splitlines():
        m = re.match(r"(mock_midjourney_\S+) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


class HookServer:
    """A real HTTP server on 127.0.0.1 (port 0) that records every POST it gets, as a notifyHook would."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.lock = threading.Lock()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with received.lock:
                    received.bodies.append(json.loads(raw))
                    received.content_types.append(self.headers.get("Content-Type", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mj-callback"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def of(self, task: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b.get("id") == task]

    def wait_for(self, task: str, status: str, limit_s: float = 30.0) -> list[dict[str, Any]]:
        """The task's callbacks once one with `status` has come (the limit only stops a broken run)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            got = self.of(task)
            if any(b["status"] == status for b in got):
                return got
            time.sleep(0.01)
        raise AssertionError(f"no {status} callback for task {task}; got {[b['status'] for b in self.of(task)]}")

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers: a hook that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.sock.settimeout(0.05)   # so the accepting thread sees the stop flag
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hangs"
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)

    def __enter__(self) -> SilentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.conns:
            conn.close()
