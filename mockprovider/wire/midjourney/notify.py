"""notifyHook callbacks: the task's JSON POSTed at each change, as midjourney-proxy's NotifyService does.

Bounded so a slow or dead hook costs the mock nothing it cannot spare: `WORKERS` posts at a time
(the proxy's notify pool size), each given `TIMEOUT_S` at most; tasks waiting for a worker sit in a
queue of `QUEUE_TASKS` holding at most `QUEUE_BYTES` of JSON; past either, a change is dropped and
counted. A task's callbacks go one at a time, in order, so a hook never gets an older state after a
newer one. While one waits, a newer progress of the same status replaces it (counted as
superseded): a task holds at most one waiting body per status (SUBMITTED, IN_PROGRESS, the end).
The proxy too never sends a change older than one it has sent. Nothing here is awaited by a
handler: answering never waits for a hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import Counter

import aiohttp
from yarl import URL

from .store import Job

log = logging.getLogger("mockprovider.midjourney")

WORKERS = 10                 # midjourney-proxy's notify pool size (mj.notify-pool-size, default 10)
TIMEOUT_S = 10.0             # assumed: the proxy's RestTemplate waits forever; a mock must not
CONNECT_TIMEOUT_S = 2.0
QUEUE_TASKS = 1000
QUEUE_BYTES = 16 * 1024 * 1024
MAX_HOOK_CHARS = 2048

IDLE, QUEUED, POSTING = 0, 1, 2


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Notifier:
    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self.allowed_hosts = allowed_hosts
        self.counts: Counter[str] = Counter()   # sent, failed, dropped, superseded
        self.pending_bytes = 0
        self._queue: asyncio.Queue[Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def check(self, hook: str) -> str | None:
        """Why this notifyHook cannot be called back, or None if it can."""
        if len(hook) > MAX_HOOK_CHARS:
            return f"notifyHook is {len(hook)} characters; the limit is {MAX_HOOK_CHARS}"
        try:
            url = URL(hook)
        except ValueError:
            return "notifyHook is not a URL"
        if url.scheme not in ("http", "https") or not url.host or not url.is_absolute():
            return "notifyHook must be an http:// or https:// URL with a host"
        host = url.host.lower().rstrip(".")
        if is_loopback(host) or "*" in self.allowed_hosts or host in self.allowed_hosts:
            return None
        return (f"notifyHook host {host!r} is not allowed: the simulated proxy calls back loopback only "
                "unless started with --mj-notify-hosts")

    def send(self, job: Job, status: str, body: bytes) -> None:
        """Queue this change of `job` (to `status`) for its hook; never waits."""
        if self._closed:   # shutting down: tasks cancelled now are not called back
            self.counts["dropped"] += 1
            return
        pending = job.notify_pending
        if pending is None:
            pending = job.notify_pending = []
        elif pending and pending[-1][0] == status:   # a newer progress replaces the one still waiting
            self.counts["superseded"] += 1
            self.pending_bytes += len(body) - len(pending[-1][1])
            pending[-1] = (status, body)
            return
        queue = self._start()
        if self.pending_bytes + len(body) > QUEUE_BYTES or (job.notify_state == IDLE and queue.full()):
            self.counts["dropped"] += 1
            return
        pending.append((status, body))
        self.pending_bytes += len(body)
        if job.notify_state == IDLE:
            job.notify_state = QUEUED
            queue.put_nowait(job)

    @property
    def waiting(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _start(self) -> asyncio.Queue[Job]:
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_TASKS)
            timeout = aiohttp.ClientTimeout(total=TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            # No proxy from the environment, no cookies kept, one connection per worker at most.
            self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False,
                                                  connector=aiohttp.TCPConnector(limit=WORKERS),
                                                  cookie_jar=aiohttp.DummyCookieJar())
            self._workers = [asyncio.ensure_future(self._work()) for _ in range(WORKERS)]
        return self._queue

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            job = await queue.get()
            job.notify_state = POSTING
            if job.notify_pending and job.hook is not None:
                _, body = job.notify_pending.pop(0)
                self.pending_bytes -= len(body)
                await self._post(job.hook, body)
            if not job.notify_pending:
                job.notify_state = IDLE
            elif queue.full():   # the task's next change waits behind the others, if there is room
                self.counts["dropped"] += len(job.notify_pending)
                self.pending_bytes -= sum(len(b) for _, b in job.notify_pending)
                job.notify_pending.clear()
                job.notify_state = IDLE
            else:
                job.notify_state = QUEUED
                queue.put_nowait(job)

    async def _post(self, hook: str, body: bytes) -> None:
        assert self._session is not None
        try:
            # Redirects are not followed: one could lead a callback off loopback. The answer's body is
            # never read (closing the connection instead), so a hook cannot feed the mock.
            async with self._session.post(hook, data=body, allow_redirects=False,
                                          headers={"Content-Type": "application/json"}) as resp:
                ok = 200 <= resp.status < 300
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            self.counts["failed"] += 1
            log.debug("notifyHook %s failed: %r", hook, exc)
            return
        self.counts["sent" if ok else "failed"] += 1

    async def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._queue is not None:
            self.counts["dropped"] += self._queue.qsize()
