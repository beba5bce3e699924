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
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

from .profile import describe
from .settings import SettingsError
from .wire.common import ctx_of


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, indent=2), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": {"code": status, "message": message}}, status)


@web.middleware
async def admin_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = ctx_of(request).admin_token
    if token and request.path.startswith("/admin"):
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
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
    try:
        changes = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return _error(400, f"the body must be a JSON object of settings: {exc}")
    if not isinstance(changes, dict) or not changes:
        return _error(400, "the body must be a non-empty JSON object of settings")
    try:
        provider.update(changes)
    except SettingsError as exc:
        return _error(400, str(exc))
    return _json(provider.status())


async def reset_provider(request: web.Request) -> web.Response:
    provider = _provider(request)
    provider.reset()
    return _json(provider.status())


async def reset_all(request: web.Request) -> web.Response:
    for p in ctx_of(request).providers.values():
        p.reset()
    return _json({name: p.status() for name, p in ctx_of(request).providers.items()})


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
