"""What Google's APIs share (Vertex AI and the Gemini Developer API): the google.rpc.Status error body,
credentials and how strictly a provider checks them, model ids, and protobuf-JSON numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..behaviours import Outcome
from ..context import MockContext
from ..provider import Provider
from .common import Handler, Labels, Wire, WireError

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
STATUS_NAMES = frozenset(STATUS.values()) | {"FAILED_PRECONDITION", "OUT_OF_RANGE"}
ANONYMOUS = "anonymous"   # the key a request without credentials is served under, when its provider allows it
TYPE = "type.googleapis.com/google.rpc."


class GoogleError(WireError):
    """Bad input or a refusal, answered as google.rpc.Status, with `details` when Google sends them."""

    def __init__(self, status: int, message: str, *, status_name: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, code=status_name)
        self.details = details
        self.headers = headers


def invalid(message: str) -> GoogleError:
    return GoogleError(400, message)


def unknown_name(name: str, where: str = "") -> GoogleError:
    """Google's answer to a field its JSON parser does not know, worded as its parser words it."""
    at = f" at '{where}'" if where else ""
    return invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def status_body(status: int, message: str, status_name: str | None = None,
                details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    name = status_name if status_name in STATUS_NAMES else STATUS.get(status, "UNKNOWN")
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if details:
        error["details"] = details
    return {"error": error}


def retry_delay(seconds: float) -> str:
    """google.protobuf.Duration as JSON: whole seconds, as Google's RetryInfo sends them ("7s")."""
    return f"{max(1, math.ceil(seconds))}s"


# --- numbers, as protobuf-JSON parsers read them ------------------------------------------------------------


def integer(value: Any, where: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """A JSON number that is a whole number: 1 and 1.0 (what a REST transport writes for a protobuf Value)
    are both 1; 1.5, true and "1" are errors, as Vertex answers them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{where} must be an integer, got {json.dumps(value)[:40]}.")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise invalid(f"{where} must be an integer, got {value!r}.")
        value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise invalid(f"{where} must be an integer between {lo} and {hi}, got {value}.")
    return value


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(f"{where} must be a number, got {json.dumps(value)[:40]}.")
    return float(value)


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{where} must be a boolean, got {json.dumps(value)[:40]}.")
    return value


def string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where} must be a string, got {json.dumps(value)[:40]}.")
    return value


def choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed`, case-insensitively (Google's enums take "BLOCK_NONE" and "block_none")."""
    text = string(value, where)
    for option in allowed:
        if text.lower() == option.lower():
            return option
    raise invalid(f"{where} must be one of {', '.join(allowed)}, got {text!r}.")


def labels_field(value: Any) -> dict[str, str]:
    """Billing labels, with Google Cloud's rules: at most 64, keys and values up to 63 characters of
    lowercase letters, digits, '_' and '-', keys starting with a letter."""
    if not isinstance(value, dict):
        raise invalid("labels must be an object of string keys and values.")
    if len(value) > 64:
        raise invalid(f"labels: at most 64 labels are allowed, got {len(value)}.")
    for key, val in value.items():
        if not isinstance(val, str):
            raise invalid(f"labels.{key} must be a string.")
        if not (0 < len(key) <= 63 and key[0].isalpha() and key[0].islower() and _label_text(key)):
            raise invalid(f"labels: invalid key {key!r}: keys start with a lowercase letter and hold up to 63 "
                          "lowercase letters, digits, underscores and dashes.")
        if not (len(val) <= 63 and _label_text(val)):
            raise invalid(f"labels: invalid value {val!r} for {key!r}: up to 63 lowercase letters, digits, "
                          "underscores and dashes.")
    return value


def _label_text(text: str) -> bool:
    return all(c.isdigit() or c in "_-" or (c.isalpha() and not c.isupper()) for c in text)


# --- credentials -----------------------------------------------------------------------------------------------


def offered_credential(request: web.Request) -> tuple[str | None, bool]:
    """(a usable credential, whether the request offered any at all): a Bearer token, or an API key in
    `x-goog-api-key` or `?key=`. Offered but unusable (another scheme, an empty key) is (None, True)."""
    auth = request.headers.get("Authorization")
    key = request.headers.get("x-goog-api-key")
    if key is None:
        key = request.query.get("key")
    if key is not None:
        key = key.strip()
        return (key if key and key.isprintable() and " " not in key else None), True
    if auth is None:
        return None, False
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    return (token if scheme.lower() == "bearer" and token else None), True


class GoogleWire(Wire):
    """A Google API: errors as google.rpc.Status, model ids with their aliases, credentials checked as each
    provider's `auth` setting says (required, optional: none offered is served, none: never checked)."""

    def __init__(self, ctx: MockContext) -> None:
        super().__init__(ctx)
        # Every model id the mock answers to (profile names and their aliases), fixed at start.
        self.models: dict[str, Provider] = {}
        for provider in ctx.providers.values():
            self.models[provider.name] = provider
            for alias in provider.profile.aliases:
                self.models[alias] = provider

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None) -> web.Response:
        return web.Response(text=json.dumps(status_body(status, message, code, details)), status=status,
                            content_type="application/json", headers=headers)

    def route(self, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """`guarded`, with details and headers kept for the refusals that carry them."""
        async def answer(request: web.Request, labels: Labels) -> web.StreamResponse:
            try:
                return await fn(request, labels)
            except GoogleError as exc:
                return self.error(exc.status, exc.message, code=exc.code, headers=exc.headers, details=exc.details)

        return self.guarded(answer)

    def failure(self, outcome: Outcome, model: str, method: str, headers: dict[str, str]) -> web.Response:
        """A failed generation (rate limited, overloaded, down, failed, timed out) in this API's words."""
        raise NotImplementedError

    def refuse_missing(self) -> GoogleError:
        raise NotImplementedError

    def refuse_invalid(self, request: web.Request) -> GoogleError:
        raise NotImplementedError

    def caller(self, request: web.Request, provider: Provider | None) -> str:
        """Who is asking (their credential, or ANONYMOUS), or a GoogleError in this API's words.

        With no provider (an unknown model) the credential is required, so a wrong model never tells
        an unauthenticated caller more than a right one."""
        mode = provider.settings.auth if provider is not None else "required"
        credential, offered = offered_credential(request)
        if credential is not None:
            return credential
        if mode == "none" or (mode == "optional" and not offered):
            return ANONYMOUS
        raise self.refuse_invalid(request) if offered else self.refuse_missing()
