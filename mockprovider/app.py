"""The server: every simulated provider on one aiohttp application, each under its own prefix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from . import admin, fanout, record_api
from .context import MockContext
from .images import DEFAULT_CACHE_MB, ImageStore, storage_error
from .limits import BODY_TIMEOUT_S, DEFAULT_MAX_BODY_MB
from .metrics import Metrics
from .profile import load_profiles
from .provider import Providers, RunOptions
from .record import DEFAULT_CAP, Record
from .settings import SettingsError, parse_set_option
from .shared import SharedState
from .wire.common import Wire, expect_continue
from .wire.gemini import GeminiAPI
from .wire.midjourney import MidjourneyJobs, MidjourneyOptions
from .wire.openai import OpenAIImages
from .wire.relay import Relay
from .wire.vertex import VertexAI

WIRES: tuple[type[Wire], ...] = (OpenAIImages, VertexAI, GeminiAPI, MidjourneyJobs, Relay)


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
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    admin_token: str | None = None
    midjourney: MidjourneyOptions = field(default_factory=MidjourneyOptions)
    body_timeout_s: float = BODY_TIMEOUT_S
    record_cap: int = DEFAULT_CAP                  # raw entries the provider-side record keeps
    correlation_header: str = "x-request-id"       # the caller's request id, beside W3C traceparent
    worker_id: str | None = None                   # names this process in the record (default: its pid)
    shared: SharedState | None = None              # --workers N: limits and peers shared across processes


async def healthz(request: web.Request) -> web.Response:
    ctx: MockContext = request.app["mock"]
    return web.json_response({"status": "ok", "providers": sorted(ctx.providers)})


async def serve_metrics(request: web.Request) -> web.Response:
    ctx: MockContext = request.app["mock"]
    body = ctx.metrics.render()
    if fanout.fans_out(request):
        try:
            peers = await fanout.to_peers(request)
        except fanout.PeerError as exc:
            return _plain_error(502, str(exc))
        body = fanout.merge_metrics([body.decode(), *(p.decode() for p in peers)])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def unknown(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"error": {"code": "not_found", "message": (
        f"Unknown URL {request.method} {request.path}. Providers live under /openai/v1, /vertex/v1, "
        "/gemini/v1beta, /midjourney/mj and /relay/v1; see also /healthz, /metrics and /admin/providers.")}}),
        status=404, content_type="application/json")


def _plain_error(status: int, message: str, *, code: str | None = None) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message}}, status=status)


async def _expect(request: web.Request) -> web.StreamResponse | None:
    return await expect_continue(request, _plain_error)


class _Anything(web.DynamicResource):
    """The last route: every path, even one aiohttp's patterns cannot match (`OPTIONS *`), so no
    request falls through to aiohttp's text/plain 404."""

    def _match(self, path: str) -> dict[str, str] | None:
        return super()._match(path) or {"tail": path}


def _add(app: web.Application, defs: list[web.RouteDef],
         expect: Callable[[web.Request], Awaitable[web.StreamResponse | None]]) -> None:
    for d in defs:
        web.RouteDef(d.method, d.path, d.handler, {**d.kwargs, "expect_handler": expect}).register(app.router)


def build_providers(options: ServerOptions) -> Providers:
    profiles = load_profiles(options.profile_files)
    for profile in profiles.values():
        for wire_cls in WIRES:
            if wire_cls.api == profile.api:
                wire_cls.check_profile(profile)   # what only the wire format knows (e.g. a model family)
    providers = Providers(profiles.values(), RunOptions(options.seed, options.latency_scale, options.limits),
                          options.shared)
    for text in options.sets:
        name, key, value = parse_set_option(text)
        if name not in providers:
            raise SettingsError(f"--set {text}: no provider {name!r}; known: {', '.join(providers)}")
        providers[name].update({key: value}, text=True)
    return providers


def build_app(options: ServerOptions | None = None) -> web.Application:
    options = options or ServerOptions()
    providers = build_providers(options)
    record = Record(worker=options.worker_id, cap=options.record_cap, correlation_header=options.correlation_header)
    images = ImageStore(cache_bytes=options.image_cache_mb * 1024 * 1024, image_kb=options.image_kb,
                        public_url=options.public_url)
    metrics = Metrics(providers, record)
    metrics.registry.register(images.collector())
    ctx = MockContext(providers=providers, metrics=metrics, record=record, images=images,
                      max_body_bytes=int(options.max_body_mb * 1024 * 1024),
                      admin_token=options.admin_token, body_timeout_s=options.body_timeout_s,
                      shared=options.shared)
    middlewares = [admin.admin_auth] if options.admin_token else []
    app = web.Application(middlewares=middlewares, client_max_size=ctx.max_body_bytes)
    app["mock"] = ctx
    ctx.extras["midjourney.options"] = options.midjourney

    async def remember_loop(app: web.Application) -> None:
        ctx.loop = asyncio.get_running_loop()
        record.use_loop_clock(ctx.loop.time)

    async def stop_images(app: web.Application) -> None:
        images.close()

    async def no_such_image(request: web.Request) -> web.Response:
        return storage_error(404, "BlobNotFound", "The specified blob does not exist.")

    app.on_startup.append(remember_loop)
    if options.shared is not None:
        shared = options.shared
        worker_name = str(shared.worker)

        async def name_worker(request: web.Request, response: web.StreamResponse) -> None:
            # Which worker answered: a client (and the tests) can see limits hold whichever it was.
            response.headers["x-mock-worker"] = worker_name

        app.on_response_prepare.append(name_worker)
        app.on_cleanup.append(fanout.close)
    app.on_cleanup.append(stop_images)
    for wire_cls in WIRES:
        wire = wire_cls(ctx)
        close = getattr(wire, "close", None)   # a wire with work of its own (callbacks) stops it on shutdown
        if close is not None:
            app.on_cleanup.append(close)
        # After the real routes: wrong paths and wrong methods under a prefix get that API's error shape.
        _add(app, [*wire.routes(), web.route("*", wire.prefix + "/{tail:.*}", wire.guarded(wire.unknown_route))],
             wire.expect)
    _add(app, [*admin.routes(), *record_api.routes(), web.get("/healthz", healthz),
               web.get("/metrics", serve_metrics), web.get("/images/{provider}/{file}", images.serve),
               web.route("*", "/images/{tail:.*}", no_such_image)], _expect)
    anything = _Anything("/{tail:.*}")
    app.router.register_resource(anything)
    anything.add_route("*", unknown, expect_handler=_expect)
    return app
