"""With `--workers N`, what one worker is asked on behalf of all: admin changes reach every worker
before the answer, and /metrics and /admin/record answer for every worker.

Each worker also listens on its own loopback port (its "internal" port, in the shared state). The
worker a client reaches applies a change itself, then sends the same change to every other worker's
internal port and waits for each to answer; a request that arrives on an internal port is answered
by that worker alone, never sent on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TypeVar

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from .context import MockContext

PEER_TIMEOUT_S = 10.0
T = TypeVar("T")


class PeerError(Exception):
    pass


def fans_out(request: web.Request) -> bool:
    """Whether this request speaks for every worker (several workers, and not from a peer)."""
    ctx: MockContext = request.app["mock"]
    if ctx.shared is None:
        return False
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return not (sockname and sockname[1] == ctx.internal_port)


async def to_peers(request: web.Request, body: bytes | None = None,
                   path_for: Callable[[int], str] | None = None) -> list[bytes]:
    """The same method and path (or `path_for(worker index)`) sent to every other worker; their
    bodies in worker order, or PeerError."""
    ctx: MockContext = request.app["mock"]
    shared = ctx.shared
    assert shared is not None
    session = _session(ctx)
    headers = {"Content-Type": "application/json"}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    peers = [(i, p) for i, p in enumerate(shared.ports()) if i != shared.worker]

    async def one(index: int, port: int) -> bytes:
        path = request.path_qs if path_for is None else path_for(index)
        try:
            async with session.request(request.method, f"http://127.0.0.1:{port}{path}",
                                       data=body, headers=headers) as resp:
                data = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PeerError(f"worker on internal port {port} did not answer: {exc!r}") from None
        if resp.status != 200:
            raise PeerError(f"worker on internal port {port} answered {resp.status}: {data[:200]!r}")
        return data

    return list(await asyncio.gather(*(one(i, p) for i, p in peers)))


def in_worker_order(request: web.Request, local: T, peers: list[T]) -> list[T]:
    """This worker's part put in its place among the peers' (to_peers' order): one per worker, by index."""
    shared = request.app["mock"].shared
    assert shared is not None
    return [*peers[:shared.worker], local, *peers[shared.worker:]]


async def ask_peers(request: web.Request, body: bytes | None, headers: dict[str, str],
                    path: str | None = None) -> list[tuple[int, bytes]]:
    """The same method and path (or `path`) sent to every other worker with these headers: each
    one's (status, body), whatever the status; a worker that did not answer is left out, so the
    caller answers as if that worker held nothing."""
    ctx: MockContext = request.app["mock"]
    shared = ctx.shared
    assert shared is not None
    session = _session(ctx)

    async def one(port: int) -> tuple[int, bytes] | None:
        try:
            async with session.request(request.method, f"http://127.0.0.1:{port}{path or request.path_qs}",
                                       data=body, headers=headers) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            return None

    answers = await asyncio.gather(*(one(p) for i, p in enumerate(shared.ports()) if i != shared.worker))
    return [a for a in answers if a is not None]


def _session(ctx: MockContext) -> aiohttp.ClientSession:
    session: aiohttp.ClientSession | None = ctx.extras.get("fanout.session")
    if session is None:
        session = ctx.extras["fanout.session"] = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S))
    return session


async def close(app: web.Application) -> None:
    session = app["mock"].extras.pop("fanout.session", None)
    if session is not None:
        await session.close()


# Gauges every worker reads from the shared slot counts: each says the total already.
SHARED_GAUGES = frozenset({"mock_in_flight", "mock_queue_depth"})


def merge_metrics(texts: Iterable[str]) -> bytes:
    """Several workers' Prometheus text as one (the first text is this worker's): every sample added
    by name and labels, as each family is a count, a sum or a gauge of what one worker holds, except
    SHARED_GAUGES, taken from this worker alone."""
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            _, _, samples = families.setdefault(family.name, (family.type, family.documentation, {}))
            shared = family.name in SHARED_GAUGES
            for s in family.samples:
                k = (s.name, tuple(sorted(s.labels.items())))
                if shared:
                    samples.setdefault(k, s.value)
                else:
                    samples[k] = samples.get(k, 0.0) + s.value
    out: list[str] = []
    for family_name, (kind, doc, samples) in families.items():
        # The parser drops a counter's _total from the family name; the exposition keeps it.
        name = family_name + "_total" if kind == "counter" else family_name
        out.append(f"# HELP {name} {_escape_help(doc)}")
        out.append(f"# TYPE {name} {kind}")
        for (sample, labels), value in samples.items():
            label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            out.append(f"{sample}{{{label_text}}} {_number(value)}" if labels else f"{sample} {_number(value)}")
    return ("\n".join(out) + "\n").encode()


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}.0"
