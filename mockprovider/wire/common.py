"""Helpers every wire format shares: reading a body safely, keys, ids, timing headers."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from ..context import MockContext


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


async def read_json_object(request: web.Request) -> dict[str, Any]:
    limit = ctx_of(request).max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise WireError(413, f"Request body is {request.content_length} bytes; the limit is {limit} bytes.",
                        code="request_too_large")
    try:
        raw = await request.content.read(limit + 1)
    except (ConnectionError, ValueError) as exc:
        raise WireError(400, f"Could not read the request body: {exc}", code="invalid_body") from None
    if len(raw) > limit:
        raise WireError(413, f"Request body is over the limit of {limit} bytes.", code="request_too_large")
    if not raw.strip():
        raise WireError(400, "The request body is empty; a JSON object is required.", code="invalid_json")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(400, f"The request body is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise WireError(400, f"The request body must be a JSON object, not {type(body).__name__}.",
                        code="invalid_json")
    return body


def bearer_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def mask_key(key: str) -> str:
    """Enough of a key to recognise it, never enough to use it."""
    if len(key) <= 8:
        return key[:2] + "*" * max(0, len(key) - 2)
    return f"{key[:4]}{'*' * 8}{key[-4:]}"


def request_id(prefix: str = "req_") -> str:
    return prefix + os.urandom(12).hex()


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
        raise WireError(400, f"Invalid type for '{name}': expected {wanted}, but got {_json_type(value)}.",
                        code="invalid_type", param=name)
    return value


def _json_type(value: Any) -> str:
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


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def retry_after_headers(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds (as HTTP wants), and the exact wait in ms (as OpenAI sends)."""
    return {"retry-after": str(max(1, int(-(-seconds // 1)))), "retry-after-ms": str(max(1, int(seconds * 1000)))}


log = logging.getLogger("mockprovider")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Wire:
    """One provider API's wire format. Subclasses name their routes and error shape."""

    api = ""
    prefix = ""

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        raise NotImplementedError

    def guarded(self, fn: Handler) -> Handler:
        """Answer bad input in this API's shape, never crash, and count every answer."""

        async def handler(request: web.Request) -> web.StreamResponse:
            t0 = time.perf_counter()
            try:
                response = await fn(request)
            except WireError as exc:
                response = self.error(exc.status, exc.message, code=exc.code, param=exc.param)
            except web.HTTPException:
                raise
            except Exception:  # a bug in the mock must not take the server down
                log.exception("unexpected error answering %s %s", request.method, request.path)
                response = self.error(500, "The simulated provider hit an internal error.", code="internal_error")
            if response.status == 413:
                response.force_close()   # do not wait to drain a body we refused to read
            ctx_of(request).metrics.observe(request.get("provider", self.api), request.get("model", ""),
                                            response.status, time.perf_counter() - t0)
            return response

        return handler

    async def unknown_route(self, request: web.Request) -> web.StreamResponse:
        return self.error(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
