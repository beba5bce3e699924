"""Reading a request body: the whole of it up to a limit, as one JSON object, or a WireError."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from .common import WireError, json_type


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
    except (ConnectionError, ValueError, RuntimeError):
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
    """The body as a JSON object, or a WireError: 413 past `limit` (declared, or as read when chunked)."""
    content = request.content
    try:
        raw = await content.readany()
        if not content.at_eof():   # a body in pieces (large, or chunked): read on, up to the limit
            declared = request.content_length
            if declared is not None and declared > limit:
                raise WireError(413, f"Request body is {declared} bytes; the limit is {limit} bytes.",
                                code="request_too_large")
            parts, size = [raw], len(raw)
            while size <= limit:
                more = await content.readany()
                if not more:
                    break
                parts.append(more)
                size += len(more)
            raw = b"".join(parts)
    except (ConnectionError, ValueError) as exc:
        raise WireError(400, f"Could not read the request body: {exc}", code="invalid_body") from None
    return _object(raw, limit)


def _object(raw: bytes, limit: int) -> dict[str, Any]:
    if len(raw) > limit:
        raise WireError(413, f"Request body is over the limit of {limit} bytes.", code="request_too_large")
    body = parse_json(raw)
    if body.__class__ is not dict:
        raise WireError(400, f"The request body must be a JSON object, not {json_type(body)}.",
                        code="invalid_json")
    return body
