"""With `--workers N`, a task lives in the worker that took its submit; a fetch, a list or a button
that reaches another worker (a new connection can land on any) is asked of the others.

Only on a miss: a task this worker holds is answered here as before. The other workers are asked
on their internal ports, where a request is answered by that worker alone. A fetch or a button:
the one that holds the task answers, counts the answer in its /metrics and records it (a fetch as
a poll of its job); this worker relays that answer and counts it nowhere (metrics.RELAYED, no
record entry), so it is counted once, by the worker that served it. A list: this worker answers
and counts it, with the views the others give on VIEWS_PATH (which they do not count).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ... import fanout
from ...metrics import RELAYED

if TYPE_CHECKING:
    from ...record import Arrival
    from ..common import Labels

NOT_FOUND = 3


def asks_peers(request: web.Request) -> bool:
    """Whether a task missing here may be in another worker (several workers, a client's request)."""
    return fanout.fans_out(request)


def _from_peer(request: web.Request) -> bool:
    return request.app["mock"].shared is not None and not fanout.fans_out(request)


def _not_recorded(arrival: Arrival) -> None:
    """The record's entry of a relayed answer is the serving worker's."""


def relayed(labels: Labels) -> None:
    labels.provider = labels.model = RELAYED
    labels.defer = _not_recorded


async def _ask(request: web.Request, body: dict[str, Any] | None = None) -> list[tuple[int, bytes]]:
    """The request sent on to the other workers; `body`: the JSON object its handler read (the
    stream it came on is spent)."""
    headers = {"Content-Type": "application/json"}
    secret = request.headers.get("mj-api-secret")
    if secret is not None:
        headers["mj-api-secret"] = secret
    return await fanout.ask_peers(request, orjson.dumps(body) if body is not None else None, headers)


async def fetch(request: web.Request, labels: Labels) -> web.Response | None:
    """The view of a task this worker does not hold, from the worker that does; None if none does.
    A peer's question that misses here is not counted here: the worker asked by the client counts
    the miss, once, if no worker holds the task."""
    if _from_peer(request):
        relayed(labels)
        return None
    if not asks_peers(request):
        return None
    for status, body in await _ask(request):
        if status == 200 and body:
            relayed(labels)
            return web.Response(body=body, content_type="application/json")
    return None


async def submit_on(request: web.Request, labels: Labels, body: dict[str, Any]) -> web.Response | None:
    """A button or change (its JSON `body`) of a task another worker holds, done by that worker;
    None if none holds it (a peer's question that misses is not counted, as in `fetch`)."""
    if _from_peer(request):
        relayed(labels)
        return None
    if not asks_peers(request):
        return None
    for status, answer_body in await _ask(request, body):
        try:
            answer = orjson.loads(answer_body)
        except orjson.JSONDecodeError:
            continue
        if isinstance(answer, dict) and answer.get("code") != NOT_FOUND:
            relayed(labels)
            return web.Response(body=answer_body, status=status, content_type="application/json")
    return None


VIEWS_PATH = "/midjourney/_peers/views"   # on the internal ports only; not a proxy route, so never counted


async def views(request: web.Request, owner: str, ids: list[str]) -> list[dict[str, Any]]:
    """The views the other workers hold of these ids of the account's (each answers only its own
    tasks), asked on VIEWS_PATH: a list is one request, counted once, by the worker it reached."""
    out: list[dict[str, Any]] = []
    asked = await fanout.ask_peers(request, orjson.dumps({"owner": owner, "ids": ids}),
                                   {"Content-Type": "application/json"}, VIEWS_PATH)
    for status, body in asked:
        if status == 200:
            with_views = orjson.loads(body)
            if isinstance(with_views, list):
                out.extend(v for v in with_views if isinstance(v, dict))
    return out


__all__ = ["VIEWS_PATH", "asks_peers", "fetch", "relayed", "submit_on", "views"]
