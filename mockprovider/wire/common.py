"""Helpers every wire format shares: reading a body safely, keys, ids, timing headers."""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import HttpVersion11, hdrs, web

from ..behaviours.base import answering
from ..context import MockContext
from ..limits import KEY_CACHE_ENTRIES, KEY_CACHE_HEADER_BYTES
from ..metrics import BUCKETS
from ..profile import Profile
from .toxic_answer import answer_with_toxics

if TYPE_CHECKING:
    from ..behaviours.base import Call
    from ..record import Arrival


class WireError(Exception):
    """Bad input, to be answered in the provider's own error shape."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.close = close   # the connection cannot carry another request (the body was not read to its end)


def ctx_of(request: web.Request) -> MockContext:
    return request.app["mock"]


def bearer_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7] == "Bearer " and auth[-1:] > " " and auth[7:8] > " ":
        return auth[7:]   # the usual, exact form; anything else is parsed below
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class KeyCheck:
    """Whether a key has the provider's format, remembering the headers good keys came in (a load
    test reuses a few), so a header seen before is looked up, not parsed.

    Bounded by count and by bytes: at most KEY_CACHE_ENTRIES headers of at most
    KEY_CACHE_HEADER_BYTES characters each (a longer one is checked every time, never kept), so the
    cache holds a few MB whatever clients send; when full it starts again, which costs a flood of
    new keys one parse each and a load test's few keys one parse after each refill."""

    MAX_REMEMBERED = KEY_CACHE_ENTRIES
    MAX_HEADER = KEY_CACHE_HEADER_BYTES

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.by_header: dict[str | None, str] = {}   # a whole Authorization header -> the good key in it

    def check(self, key: str | None, header: str | None = None) -> str | None:
        """The key if it has the provider's format, else None; a good key is remembered under `header`."""
        if key is None or not self.pattern.match(key):
            return None
        if header is not None and len(header) <= self.MAX_HEADER:
            if len(self.by_header) >= self.MAX_REMEMBERED:
                self.by_header.clear()
            self.by_header[header] = key
        return key


def mask_key(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it: at most a third of it shows (four
    characters at each end of a long key, fewer of a short one, none of one under six), and eight
    stars in place of the rest whatever its length."""
    shown = min(4, len(key) // 6)
    if not shown:
        return "*" * 8
    return f"{key[:shown]}{'*' * 8}{key[-shown:]}"


MAX_MASKS = 10_000
_masks: dict[str | None, str | None] = {None: None}   # a credential header -> its key, masked


def masked_credential(value: str) -> str:
    """The key in a credential header, masked (a Bearer scheme taken off first); remembered, as a
    load test sends a few keys many times."""
    scheme, _, rest = value.partition(" ")
    key = rest.strip() if scheme.lower() == "bearer" and rest.strip() else value.strip()
    masked = mask_key(key) if key else ""
    if len(_masks) >= MAX_MASKS:
        _masks.clear()
        _masks[None] = None
    _masks[value] = masked
    return masked


_ID_BASE = os.urandom(6).hex()   # per process, so ids differ across restarts
_ids = itertools.count(10**11)     # twelve decimal digits for the first 900 billion ids


def request_id(prefix: str = "req_") -> str:
    """Unique within this server's life: a counter, as a syscall per request shows in throughput,
    in decimal, as formatting it in hex costs more than the rest of the id."""
    return f"{prefix}{_ID_BASE}{next(_ids)}"


_second: list[Any] = [0.0, "0"]   # [end of the current second, its Unix time as text]


def unix_seconds() -> str:
    """The current Unix time in whole seconds, as text; formatted once a second, not per answer."""
    now = time.time()
    if not _second[0] - 1.0 <= now < _second[0]:   # a new second (or the clock was set back)
        whole = int(now)
        _second[0], _second[1] = whole + 1.0, str(whole)
    return _second[1]


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, default: Any = None,
          required: bool = False) -> Any:
    """A body field of the right JSON type (bool is not a number), or a WireError naming it."""
    if name not in body or body[name] is None:
        if required:
            raise WireError(400, f"Missing required parameter: '{name}'.", code="missing_required_parameter",
                            param=name)
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        wanted = " or ".join({int: "an integer", float: "a number", str: "a string", bool: "a boolean",
                              list: "an array", dict: "an object"}[k] for k in kinds)
        raise WireError(400, f"Invalid type for '{name}': expected {wanted}, but got {json_type(value)}.",
                        code="invalid_type", param=name)
    return value


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


JSON_TYPE = "application/json; charset=utf-8"


def base_url(request: web.Request) -> str:
    """Where this server is, for URLs in answers: the configured or bound address, never an unchecked Host."""
    return ctx_of(request).images.base_url(request)


def retry_after_headers(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds (as HTTP wants), and the wait in ms (as OpenAI sends).

    Both round up, and the ms form adds the server clock's 1 ms tick: a client that
    waits exactly what it was told finds the next token there.
    """
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(math.ceil(seconds * 1000) + 1)}


log = logging.getLogger("mockprovider")

class Labels:
    """What /metrics and the provider-side record count an answer under; a handler fills it in as
    it learns them. `call` is the behaviours' Call made for the request (it hands itself over, see
    behaviours.base.answering); `defer`, when a handler sets it, takes the record's entry over from
    the guard (a Midjourney job is recorded when it ends, its polls are counted with it)."""

    __slots__ = ("provider", "model", "call", "defer")
    provider: str
    model: str
    call: Call | None
    defer: Callable[[Arrival], None] | None
    # No __init__: the guard fills the fields in, and a Python-level call per answer is not free.


Handler = Callable[[web.Request, Labels], Awaitable[web.StreamResponse]]


async def expect_continue(request: web.Request, refuse: Callable[..., web.StreamResponse]) -> web.StreamResponse | None:
    """A route's answer to an `Expect` header: 100 Continue as aiohttp's own does, and any other
    expectation refused by `refuse(417, message, code=...)`, never with the header echoed."""
    if request.version != HttpVersion11:
        return None
    if request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0   # the answer proper is still to come
        return None
    return refuse(417, "The only expectation understood is 'Expect: 100-continue'.", code="expectation_failed")


class Wire:
    """One provider API's wire format. Subclasses name their routes and error shape."""

    api = ""
    prefix = ""
    key_header: str = hdrs.AUTHORIZATION   # where a caller's key comes (masked in the record)

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    @classmethod
    def check_profile(cls, profile: Profile) -> None:
        """Raise ProfileError for a profile of this API that this wire format cannot serve."""

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        raise NotImplementedError

    def guarded(self, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Answer bad input in this API's shape, never crash, count every answer, and record it
        (mockprovider.record)."""
        metrics = self.ctx.metrics
        rows, new_row = metrics.rows, metrics.new_row
        record = self.ctx.record
        answered = record.answered
        clock, wall_clock = time.perf_counter, time.time
        api, key_header = self.api, self.key_header
        now_answering = answering.set
        masks = _masks
        with_toxics = self.ctx.providers.with_toxics   # the same dict for the server's life, filled while on
        gone_url = self.ctx.images.gone

        async def handler(request: web.Request) -> web.StreamResponse:
            t0 = clock()
            arrived_at, epoch = wall_clock(), record.epoch
            labels = Labels()
            labels.provider, labels.model = api, ""
            labels.call = labels.defer = None
            now_answering(labels)   # this task's context only: aiohttp answers each request in its own task
            crashed = False
            try:
                response = await fn(request, labels)
            except WireError as exc:
                response = self.error(exc.status, exc.message, code=exc.code, param=exc.param)
                if exc.close:
                    response.force_close()
            except web.HTTPException:
                raise
            except Exception:  # a bug in the mock must not take the server down
                log.exception("unexpected error answering %s %s", request.method, request.path)
                response = self.error(500, "The simulated provider hit an internal error.", code="internal_error")
                crashed = True
            # Counted in line (this runs for every answer): a row per (provider, model, status) holds
            # answers per latency bucket, `le` buckets including their bound, then their sum of seconds.
            now = clock()
            seconds = now - t0
            status = response.status
            key = (labels.provider, labels.model, status)
            row = rows.get(key)
            if row is None:
                row = rows[key] = new_row()
            row[bisect_left(BUCKETS, seconds)] += 1
            row[-1] += seconds
            headers = request.headers
            credential = headers.get(key_header)
            masked = masks.get(credential)
            if masked is None and credential is not None:
                masked = masked_credential(credential)
            answered(api, labels, headers, status, t0, now, arrived_at, epoch, masked, crashed)
            if with_toxics:   # empty unless some provider has a toxic on: one test per answer otherwise
                toxics = with_toxics.get(labels.provider)
                if toxics is not None:
                    return await answer_with_toxics(request, response, toxics, gone_url)
            return response

        return handler

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        return await expect_continue(request, self.error)

    async def unknown_route(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        return self.error(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
