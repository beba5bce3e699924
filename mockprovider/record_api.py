"""Admin routes of the provider-side record (mockprovider.record); shapes in README, "The provider-side record".

GET  /admin/record?seconds=              the summary: per provider/model/window/outcome counts, status mix,
                                         percentiles and HDR histograms (base64), per-second counts
                                         (seconds=0: without them)
GET  /admin/record/requests?since=&limit= raw entries after sequence number `since`, oldest first
                                         (several workers: `since` a cursor per worker, record_merge)
GET  /admin/record/live?since=&hdr=      per window counts and a few percentiles; per second from `since`;
                                         hdr=1: each group's histogram too (several workers: all added)
POST /admin/record/window                {"name": "surge"}: arrivals from now on belong to window "surge"
POST /admin/record/reset                 a fresh record (optionally {"window": "baseline"}, its first window)

Behind the admin API's token like the rest of /admin (admin.admin_auth).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import fanout, record_merge
from .record import MAX_WINDOWS
from .wire.common import ctx_of

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_WINDOW_NAME = 64


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": {"code": status, "message": message}}, status)


class _BadRequest(Exception):
    pass


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text, 10)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer from {lo} to {hi}, got {text[:40]!r}") from None
    if not lo <= value <= hi:
        raise _BadRequest(f"{name} must be from {lo} to {hi}, got {value}")
    return value


async def _body(request: web.Request, *, required: bool) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise _BadRequest("the body must be a JSON object")
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadRequest(f"the body must be a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    return body


def _window_name(body: dict[str, Any], field: str, *, required: bool) -> str | None:
    name = body.get(field)
    if name is None and not required:
        return None
    if not isinstance(name, str) or not name.strip():
        raise _BadRequest(f'"{field}" must be a non-empty string, e.g. {{"{field}": "surge"}}')
    if len(name) > MAX_WINDOW_NAME or not name.isprintable():
        raise _BadRequest(f'"{field}" must be at most {MAX_WINDOW_NAME} printable characters')
    return name


WORKERS_FORMAT = "mockprovider.record.workers/1"


async def summary(request: web.Request) -> web.Response:
    try:
        seconds = _int_param(request, "seconds", 1, 0, 1) == 1
    except _BadRequest as exc:
        return _error(400, str(exc))
    local = ctx_of(request).record.summary(seconds=seconds)
    if not fanout.fans_out(request):
        return _json(local)
    # Several workers: every worker's summary, by worker index, which record_client.RecordClient.summary()
    # merges (merge_summaries), so exact histograms are added, never their percentiles.
    try:
        peers = await fanout.to_peers(request)
    except fanout.PeerError as exc:
        return _error(502, str(exc))
    return _json({"format": WORKERS_FORMAT,
                  "workers": fanout.in_worker_order(request, local, [orjson.loads(b) for b in peers])})


async def _everywhere(request: web.Request, body: dict[str, Any]) -> list[dict[str, Any]] | web.Response | None:
    """With several workers, the same change sent to the others: their answers (by worker index, this
    worker's left out), or a 502; None with one worker."""
    if not fanout.fans_out(request):
        return None
    try:
        peers = await fanout.to_peers(request, orjson.dumps(body))
    except fanout.PeerError as exc:
        return _error(502, f"applied by this worker but not by every other one: {exc}")
    return [orjson.loads(b) for b in peers]


async def requests(request: web.Request) -> web.Response:
    record = ctx_of(request).record
    try:
        limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        if not fanout.fans_out(request):
            return _json(record.requests(_int_param(request, "since", 0, 0, 2**63 - 1), limit))
        shared = ctx_of(request).shared
        assert shared is not None
        since = record_merge.parse_cursor(request.query.get("since"), shared.workers)
    except (_BadRequest, record_merge.BadCursor) as exc:
        return _error(400, str(exc))
    # Several workers: each one's page after its own cursor, merged by arrival (record_merge).
    local = record.requests(since[shared.worker], limit)
    try:
        peers = await fanout.to_peers(
            request, path_for=lambda i: f"{request.path}?since={since[i]}&limit={limit}")
    except fanout.PeerError as exc:
        return _error(502, str(exc))
    pages = fanout.in_worker_order(request, local, [orjson.loads(b) for b in peers])
    return _json(record_merge.merge_requests(pages, since, limit))


async def live(request: web.Request) -> web.Response:
    try:
        since = _int_param(request, "since", 0, 0, 2**31 - 1)
        with_hdr = _int_param(request, "hdr", 0, 0, 1) == 1
    except _BadRequest as exc:
        return _error(400, str(exc))
    record = ctx_of(request).record
    if not fanout.fans_out(request):
        return _json(record.live(since, with_hdr=with_hdr))
    # Several workers: each one's view with its histograms, added exactly (record_merge). Rows are
    # asked from a little earlier, as the workers' records start apart (merge_live shifts them).
    asked = record_merge.peer_live_since(since)
    local = record.live(asked, with_hdr=True)
    try:
        peers = await fanout.to_peers(request, path_for=lambda i: f"{request.path}?since={asked}&hdr=1")
    except fanout.PeerError as exc:
        return _error(502, str(exc))
    return _json(record_merge.merge_live(fanout.in_worker_order(request, local, [orjson.loads(b) for b in peers]),
                                         since))


async def mark_window(request: web.Request) -> web.Response:
    record = ctx_of(request).record
    try:
        body = await _body(request, required=True)
        name = _window_name(body, "name", required=True)
        assert name is not None
        window = record.mark(name)
    except _BadRequest as exc:
        return _error(400, str(exc))
    except ValueError as exc:   # too many window names
        return _error(400, str(exc))
    peers = await _everywhere(request, body)
    if isinstance(peers, web.Response):
        return peers
    return _json({"record_id": record.record_id, "worker": record.worker,
                  "window": {"name": window.name, "started_at": window.started_at, "started_s": window.started_s,
                             "first_seq": window.first_seq},
                  "windows": len({w.name for w in record.windows}), "max_windows": MAX_WINDOWS})


async def reset(request: web.Request) -> web.Response:
    record = ctx_of(request).record
    try:
        body = await _body(request, required=False)
        name = _window_name(body, "window", required=False)
    except _BadRequest as exc:
        return _error(400, str(exc))
    if name is None:
        record.reset()
    else:
        record.reset(name)
    peers = await _everywhere(request, body)
    if isinstance(peers, web.Response):
        return peers
    local = {"record_id": record.record_id, "worker": record.worker, "started_at": record.started_at,
             "window": record.window, "first_seq": record.first_seq}
    if peers is None:
        return _json(local)
    # Several workers: the record's id is every worker's, joined in worker order, as the merged summary
    # and pages name it, so a reader can tell that nobody reset the record since.
    every = fanout.in_worker_order(request, local, peers)
    return _json({**local, "record_id": "+".join(w["record_id"] for w in every),
                  "worker": "+".join(str(w["worker"]) for w in every), "workers": every})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/record", summary),
        web.get("/admin/record/requests", requests),
        web.get("/admin/record/live", live),
        web.post("/admin/record/window", mark_window),
        web.post("/admin/record/reset", reset),
    ]


__all__ = ["routes"]
