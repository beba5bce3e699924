"""The server: every simulated provider on one aiohttp application, each under its own prefix."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from . import admin
from .context import MockContext
from .images import DEFAULT_CACHE_MB, ImageStore, storage_error
from .metrics import Metrics
from .profile import load_profiles
from .provider import Providers, RunOptions
from .settings import SettingsError, parse_set_option
from .wire.common import Wire
from .wire.midjourney import MidjourneyJobs
from .wire.openai import OpenAIImages
from .wire.relay import Relay
from .wire.vertex import VertexImagen

WIRES: tuple[type[Wire], ...] = (OpenAIImages, VertexImagen, MidjourneyJobs, Relay)


@dataclass
class ServerOptions:
    seed: int = 0
    latency_scale: float = 1.0
    limits: bool = True
    profile_files: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)       # "NAME.setting=value"
    image_kb: int | None = None      # every image this many KB; None: each provider's kb_per_megapixel
    image_cache_mb: int = DEFAULT_CACHE_MB
    public_url: str | None = None    # what image URLs start with; None: the bound address
    max_body_mb: float = 16.0
    admin_token: str | None = None


async def healthz(request: web.Request) -> web.Response:
    ctx: MockContext = request.app["mock"]
    return web.json_response({"status": "ok", "providers": sorted(ctx.providers)})


async def serve_metrics(request: web.Request) -> web.Response:
    ctx: MockContext = request.app["mock"]
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def unknown(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"error": {"code": "not_found", "message": (
        f"Unknown URL {request.method} {request.path}. Providers live under /openai/v1, /vertex/v1, "
        "/midjourney/mj and /relay/v1; see also /healthz, /metrics and /admin/providers.")}}),
        status=404, content_type="application/json")


def build_providers(options: ServerOptions) -> Providers:
    profiles = load_profiles(options.profile_files)
    providers = Providers(profiles.values(), RunOptions(options.seed, options.latency_scale, options.limits))
    for text in options.sets:
        name, key, value = parse_set_option(text)
        if name not in providers:
            raise SettingsError(f"--set {text}: no provider {name!r}; known: {', '.join(providers)}")
        providers[name].update({key: value})
    return providers


def build_app(options: ServerOptions | None = None) -> web.Application:
    options = options or ServerOptions()
    providers = build_providers(options)
    images = ImageStore(cache_bytes=options.image_cache_mb * 1024 * 1024, image_kb=options.image_kb,
                        public_url=options.public_url)
    metrics = Metrics(providers)
    metrics.registry.register(images.collector())
    ctx = MockContext(providers=providers, metrics=metrics, images=images,
                      max_body_bytes=int(options.max_body_mb * 1024 * 1024), admin_token=options.admin_token)
    middlewares = [admin.admin_auth] if options.admin_token else []
    app = web.Application(middlewares=middlewares, client_max_size=ctx.max_body_bytes)
    app["mock"] = ctx

    async def remember_loop(app: web.Application) -> None:
        ctx.loop = asyncio.get_running_loop()

    async def stop_images(app: web.Application) -> None:
        images.close()

    async def no_such_image(request: web.Request) -> web.Response:
        return storage_error(404, "BlobNotFound", "The specified blob does not exist.")

    app.on_startup.append(remember_loop)
    app.on_cleanup.append(stop_images)
    for wire_cls in WIRES:
        wire = wire_cls(ctx)
        app.router.add_routes(wire.routes())
        # After the real routes: wrong paths and wrong methods under a prefix get that API's error shape.
        app.router.add_route("*", wire.prefix + "/{tail:.*}", wire.guarded(wire.unknown_route))
    app.router.add_routes(admin.routes())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/images/{provider}/{file}", images.serve)
    app.router.add_route("*", "/images/{tail:.*}", no_such_image)
    app.router.add_route("*", "/{tail:.*}", unknown)
    return app
