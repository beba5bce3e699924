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
from typing import Any

from aiohttp import web

from ..context import MockContext
from ..metrics import BUCKETS
from .toxic_answer import answer_with_toxics


class WireError(Exception):
    """Bad input, to be answered in the provider's own error shape."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


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
    test reuses a few), so a header seen before is looked up, not parsed."""

    MAX_REMEMBERED = 10_000

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.by_header: dict[str | None, str] = {}   # a whole Authorization header -> the good key in it

    def check(self, key: str | None, header: str | None = None) -> str | None:
        """The key if it has the provider's format, else None; a good key is remembered under `header`."""
        if key is None or not self.pattern.match(key):
            return None
        if header is not None:
            if len(self.by_header) >= self.MAX_REMEMBERED:
                self.by_header.clear()
            self.by_header[header] = key
        return key


def mask_key(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it."""
    if len(key) <= 8:
        return key[:2] + "*" * max(0, len(key) - 2)
    return f"{key[:4]}{'*' * 8}{key[-4:]}"


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
    """What /metrics counts an answer under; a handler fills it in as it learns them."""

    __slots__ = ("provider", "model")
    provider: str
    model: str
    # No __init__: the guard fills both fields in, and a Python-level call per answer is not free.


Handler = Callable[[web.Request, Labels], Awaitable[web.StreamResponse]]


class Wire:
    """One provider API's wire format. Subclasses name their routes and error shape."""

    api = ""
    prefix = ""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        raise NotImplementedError

    def guarded(self, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Answer bad input in this API's shape, never crash, and count every answer."""
        metrics = self.ctx.metrics
        rows, new_row = metrics.rows, metrics.new_row
        clock = time.perf_counter
        api = self.api
        with_toxics = self.ctx.providers.with_toxics   # the same dict for the server's life, filled while on
        gone_url = self.ctx.images.gone

        async def handler(request: web.Request) -> web.StreamResponse:
            t0 = clock()
            labels = Labels()
            labels.provider, labels.model = api, ""
            try:
                response = await fn(request, labels)
            except WireError as exc:
                response = self.error(exc.status, exc.message, code=exc.code, param=exc.param)
            except web.HTTPException:
                raise
            except Exception:  # a bug in the mock must not take the server down
                log.exception("unexpected error answering %s %s", request.method, request.path)
                response = self.error(500, "The simulated provider hit an internal error.", code="internal_error")
            # Counted in line (this runs for every answer): a row per (provider, model, status) holds
            # answers per latency bucket, `le` buckets including their bound, then their sum of seconds.
            seconds = clock() - t0
            key = (labels.provider, labels.model, response.status)
            row = rows.get(key)
            if row is None:
                row = rows[key] = new_row()
            row[bisect_left(BUCKETS, seconds)] += 1
            row[-1] += seconds
            if with_toxics:   # empty unless some provider has a toxic on: one test per answer otherwise
                toxics = with_toxics.get(labels.provider)
                if toxics is not None:
                    return await answer_with_toxics(request, response, toxics, gone_url)
            return response

        return handler

    async def unknown_route(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        return self.error(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
