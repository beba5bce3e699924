"""Reading a request body: the whole of it up to a limit and a deadline, as one JSON object, or a WireError."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from .common import WireError, ctx_of, json_type


def parse_json(raw: bytes) -> Any:
    """The body as JSON (orjson: parsing is a third of a cheap answer), or a WireError a client can read."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            raise WireError(400, "The request body is empty; a JSON object is required.",
                            code="invalid_json") from None
        raise WireError(400, f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


def json_object_now(request: web.Request, limit: int) -> dict[str, Any] | None:
    """The body as a JSON object if all of it has already arrived (a small request's usually has,
    with its headers), read without awaiting; None if it has not."""
    content = request.content
    if not content.is_eof():
        return None
    try:
        raw = content.read_nowait()
    except (ConnectionError, ValueError, RuntimeError, RequestPayloadError):
        return None   # let the awaiting reader report it
    if len(raw) <= limit:   # the good request, in line; anything else goes to `_object` for its exact error
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if body.__class__ is dict:
            return body
    return _object(raw, limit)


async def read_json_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, or a WireError: 413 past `limit` (declared, or as read when chunked),
    408 when it has not all arrived within the body timeout, 400 when it cannot be read or decoded."""
    body = json_object_now(request, limit)
    if body is not None:
        return body
    declared = request.content_length
    if declared is not None and declared > limit:
        raise WireError(413, f"Request body is {declared} bytes; the limit is {limit} bytes.",
                        code="request_too_large")
    timeout_s = ctx_of(request).body_timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            raw = await _read_up_to(request, limit)
    except TimeoutError:
        # What is left of the body is not worth waiting for: answered, then the connection closes.
        raise WireError(408, f"The request body did not arrive within {timeout_s:g} s.",
                        code="request_timeout", close=True) from None
    except RequestPayloadError as exc:
        # A Content-Encoding that does not decode, or broken chunked framing: answered, then the
        # connection closes, as the rest of it cannot be read as requests.
        raise WireError(400, f"Could not read the request body: {_first_line(exc)}.",
                        code="invalid_body", close=True) from None
    except (ConnectionError, ValueError) as exc:
        raise WireError(400, f"Could not read the request body: {_first_line(exc)}.",
                        code="invalid_body") from None
    return _object(raw, limit)


async def _read_up_to(request: web.Request, limit: int) -> bytes:
    """The body, or as much past `limit` as shows it is too large."""
    content = request.content
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        more = await content.readany()
        if not more:
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts)


def _first_line(exc: BaseException) -> str:
    # aiohttp's messages read "400, message:\n  Can not decode content-encoding: gzip"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200].rstrip(".")


def _object(raw: bytes, limit: int) -> dict[str, Any]:
    if len(raw) > limit:
        raise WireError(413, f"Request body is over the limit of {limit} bytes.", code="request_too_large")
    body = parse_json(raw)
    if body.__class__ is not dict:
        raise WireError(400, f"The request body must be a JSON object, not {json_type(body)}.",
                        code="invalid_json")
    return body
