"""Admin API: change a provider's behaviour while a test runs (in the spirit of Toxiproxy's API).

GET    /admin/providers              every provider's settings and load
GET    /admin/providers/{name}       one provider
PATCH  /admin/providers/{name}       change settings: {"outage": true, "error_rate": 0.2,
                                     "latency_multiplier": 3, "requests_per_minute": 60,
                                     "burst": 5, "slots": 4, "queue": 8, "limits": false,
                                     "url_ttl_s": 60, "reset_peer": 0.1, ...} (the toxics'
                                     settings: mockprovider/toxics.py)
POST   /admin/providers/{name}/reset back to the profile
POST   /admin/reset                  every provider back to its profile
GET    /admin/profiles               the profiles' derived figures

When the server listens beyond loopback it wants `Authorization: Bearer <admin token>`.
Every answer is JSON, errors as {"error": {"code": <HTTP status>, "message": ...}}; a PATCH body is
UTF-8 JSON of at most limits.ADMIN_MAX_BODY_BYTES, its values JSON booleans and numbers within
limits.SETTING_RANGES.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from . import fanout
from .limits import ADMIN_MAX_BODY_BYTES
from .profile import describe
from .settings import SettingsError
from .wire.body import read_json_object
from .wire.common import WireError, ctx_of

_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}   # JSON is UTF-8 (RFC 8259); ASCII is a subset


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, indent=2), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": {"code": status, "message": message}}, status)


@web.middleware
async def admin_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = ctx_of(request).admin_token
    if token and request.path.startswith("/admin"):
        # Headers arrive as UTF-8 with undecodable bytes kept as surrogates: encode them back, not fail.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            return _error(401, "the admin API wants Authorization: Bearer <admin token>")
    return await handler(request)


def _provider(request: web.Request):
    name = request.match_info["name"]
    provider = ctx_of(request).providers.get(name)
    if provider is None:
        raise web.HTTPNotFound(text=json.dumps({"error": {
            "code": 404, "message": f"no provider {name!r}; known: {', '.join(ctx_of(request).providers)}"}}),
            content_type="application/json")
    return provider


async def list_providers(request: web.Request) -> web.Response:
    return _json({name: p.status() for name, p in ctx_of(request).providers.items()})


async def get_provider(request: web.Request) -> web.Response:
    return _json(_provider(request).status())


async def patch_provider(request: web.Request) -> web.Response:
    provider = _provider(request)
    charset = request.charset
    if charset is not None and charset.lower() not in _UTF8:
        return _error(400, f"the body must be JSON in UTF-8, not charset {charset[:40]!r}")
    try:
        changes = await read_json_object(request, ADMIN_MAX_BODY_BYTES)
    except WireError as exc:
        return _error(exc.status, f"the body must be a JSON object of settings: {exc.message}")
    if not changes:
        return _error(400, "the body must be a non-empty JSON object of settings")
    try:
        provider.update(changes)
    except SettingsError as exc:
        return _error(400, str(exc))
    return await _everywhere(request, json.dumps(changes).encode()) or _json(provider.status())


async def _everywhere(request: web.Request, body: bytes | None = None) -> web.Response | None:
    """With several workers, the change applied here is sent to every other one before the answer;
    None once they all have it, else the error to answer."""
    if not fanout.fans_out(request):
        return None
    try:
        await fanout.to_peers(request, body)
    except fanout.PeerError as exc:
        return _error(502, f"applied by this worker but not by every other one: {exc}")
    return None


async def reset_provider(request: web.Request) -> web.Response:
    provider = _provider(request)
    provider.reset()
    return await _everywhere(request) or _json(provider.status())


async def reset_all(request: web.Request) -> web.Response:
    for p in ctx_of(request).providers.values():
        p.reset()
    return await _everywhere(request) or _json({name: p.status() for name, p in ctx_of(request).providers.items()})


async def profiles(request: web.Request) -> web.Response:
    return _json({name: describe(p.profile) for name, p in ctx_of(request).providers.items()})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/admin/providers", list_providers),
        web.get("/admin/providers/{name}", get_provider),
        web.patch("/admin/providers/{name}", patch_provider),
        web.post("/admin/providers/{name}/reset", reset_provider),
        web.post("/admin/reset", reset_all),
        web.get("/admin/profiles", profiles),
    ]
