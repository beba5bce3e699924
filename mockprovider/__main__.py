"""python -m mockprovider: run the simulated providers on one port."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import urllib.parse
from pathlib import Path

from aiohttp import web

from . import limits
from .app import ServerOptions, build_app, build_providers
from .images import DEFAULT_CACHE_MB, MAX_IMAGE_BYTES
from .profile import ProfileError, describe
from .record import DEFAULT_CAP
from .serving import MockRunner, quiet_accept_errors
from .settings import SettingsError
from .wire import midjourney


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mockprovider",
                                description="Simulated image-generation providers (OpenAI, Vertex Imagen, "
                                            "Midjourney jobs, the relay) on one port.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed replays the same draws")
    p.add_argument("--latency-scale", type=float, default=1.0,
                   help="multiply every simulated latency (0 answers at once)")
    p.add_argument("--no-limits", action="store_true",
                   help="turn off rate limits, capacity and injected errors: latency only")
    p.add_argument("--profiles", type=Path, action="append", default=[], metavar="FILE",
                   help="a TOML profile file that overrides or adds providers (repeatable)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME.SETTING=VALUE",
                   help="start with a setting changed, as the admin API would (repeatable), "
                        "e.g. --set relay.error_rate=0.05 --set dall-e-4.outage=true")
    p.add_argument("--image-kb", type=int, default=None,
                   help="every image about this many KB, whatever its resolution (default: each provider's "
                        "kb_per_megapixel, near a real PNG's size)")
    p.add_argument("--image-cache-mb", type=int, default=DEFAULT_CACHE_MB,
                   help=f"memory for the images' shared bytes, least recently used dropped first "
                        f"(default {DEFAULT_CACHE_MB})")
    p.add_argument("--public-url", metavar="URL",
                   help="what image URLs in answers start with, e.g. http://mock:8000 (default: the address "
                        "bound; bound to every interface, a plain Host header)")
    p.add_argument("--max-body-mb", type=float, default=limits.DEFAULT_MAX_BODY_MB,
                   help=f"largest request body accepted (default {limits.DEFAULT_MAX_BODY_MB:g}, "
                        f"at most {limits.MAX_BODY_MB:g})")
    p.add_argument("--idle-timeout", type=float, default=limits.IDLE_TIMEOUT_S, metavar="S",
                   help=f"close a connection with no request in progress after S seconds "
                        f"(default {limits.IDLE_TIMEOUT_S:g}, as nginx keeps alive)")
    p.add_argument("--header-timeout", type=float, default=limits.HEADER_TIMEOUT_S, metavar="S",
                   help=f"close a connection whose request head has not arrived whole S seconds after its "
                        f"first byte (default {limits.HEADER_TIMEOUT_S:g})")
    p.add_argument("--body-timeout", type=float, default=limits.BODY_TIMEOUT_S, metavar="S",
                   help=f"answer 408 to a request whose body has not arrived whole S seconds after its head "
                        f"(default {limits.BODY_TIMEOUT_S:g})")
    p.add_argument("--admin-token", default=os.environ.get("MOCK_ADMIN_TOKEN"),
                   help="token the admin API wants (required when binding beyond loopback)")
    p.add_argument("--access-log", action="store_true", help="log every request line (never headers or keys)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop (auto: uvloop when installed)")
    p.add_argument("--show-profiles", action="store_true", help="print the profiles' derived figures and exit")
    p.add_argument("--correlation-header", default="x-request-id", metavar="NAME",
                   help="the request header whose value the provider-side record keeps as each request's "
                        "correlation id (default x-request-id; W3C traceparent is read as well)")
    p.add_argument("--record-cap", type=int, default=DEFAULT_CAP, metavar="N",
                   help=f"raw entries the provider-side record keeps, the newest (default {DEFAULT_CAP:,}, about "
                        "0.5 KB each; 0 keeps none; histograms and counts always count everything)")
    p.add_argument("--workers", default="1", metavar="N",
                   help="server processes on the one port (SO_REUSEPORT), limits counted across them "
                        "(default 1; auto: one per core)")
    p.add_argument("--ready-file", type=Path, metavar="FILE",
                   help="once listening, write {\"url\", \"port\", \"pid\"} as JSON to FILE (for a parent process)")
    midjourney.add_arguments(p)
    args = p.parse_args(argv)
    if args.latency_scale < 0:
        p.error("--latency-scale must be >= 0")
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    if args.image_kb is not None and not 1 <= args.image_kb <= MAX_IMAGE_BYTES // 1024:
        p.error(f"--image-kb must be 1..{MAX_IMAGE_BYTES // 1024}")
    if not 1 <= args.image_cache_mb <= 65536:
        p.error("--image-cache-mb must be 1..65536")
    if args.public_url is not None:
        parts = urllib.parse.urlsplit(args.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            p.error(f"--public-url must be an http(s) URL such as http://mock:8000, got {args.public_url!r}")
    if not 0 < args.max_body_mb <= limits.MAX_BODY_MB:
        p.error(f"--max-body-mb must be above 0 and at most {limits.MAX_BODY_MB:g}")
    for name in ("idle_timeout", "header_timeout", "body_timeout"):
        if not 0 < getattr(args, name) <= 86_400:
            p.error(f"--{name.replace('_', '-')} must be above 0 and at most 86400 seconds")
    try:
        args.midjourney = midjourney.options_from_args(args)
    except ValueError as exc:
        p.error(str(exc))
    try:
        args.workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    except ValueError:
        p.error(f"--workers must be a whole number or auto, got {args.workers!r}")
    if not 1 <= args.workers <= 64:
        p.error("--workers must be 1..64")
    if not 0 <= args.record_cap <= 10_000_000:
        p.error("--record-cap must be 0..10000000")
    if not _HEADER_NAME.fullmatch(args.correlation_header):
        p.error(f"--correlation-header must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), "
                f"got {args.correlation_header!r}")
    return args


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")
WILDCARDS = ("0.0.0.0", "::", "")   # bound to every interface: no one address to put in URLs


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def until_stopped() -> None:
    """Return on SIGINT or SIGTERM, the ways a server here is told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def write_ready_file(path: Path, doc: dict[str, object]) -> None:
    # Written whole, then renamed: a parent polling for the file never reads half of it.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


async def serve(args: argparse.Namespace, options: ServerOptions) -> None:
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    app = build_app(options)
    runner = MockRunner(app, idle_timeout_s=args.idle_timeout, header_timeout_s=args.header_timeout,
                        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
                        handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    shared = options.shared
    if shared is not None:   # one of --workers N: every worker binds the same port (SO_REUSEPORT)
        site = web.TCPSite(runner, args.host, args.port, backlog=4096, reuse_address=True, reuse_port=True)
        await site.start()
        internal = web.TCPSite(runner, "127.0.0.1", 0, reuse_address=True)
        await internal.start()
        app["mock"].internal_port = runner.addresses[1][1]
        shared.listen_for_wakes(loop)
        shared.set_port(shared.worker, app["mock"].internal_port)   # the supervisor waits for every one
        await until_stopped()
        await runner.cleanup()
        return
    site = web.TCPSite(runner, args.host, args.port, backlog=4096, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    images = app["mock"].images
    bound = f"[{args.host}]" if ":" in args.host else args.host
    images.fallback_url = f"http://{'127.0.0.1' if args.host in WILDCARDS else bound}:{port}"
    if images.public_url is None and args.host not in WILDCARDS:
        images.public_url = images.fallback_url   # URLs name the bound address, whatever Host a client sent
    limits = "off (latency only)" if args.no_limits else "on"
    print(f"mockprovider listening on http://{args.host}:{port}  seed={args.seed} "
          f"latency-scale={args.latency_scale} limits={limits}", flush=True)
    print(f"  providers: {', '.join(sorted(app['mock'].providers))}", flush=True)
    if args.ready_file is not None:
        write_ready_file(args.ready_file, {"url": f"http://{args.host}:{port}", "port": port, "pid": os.getpid()})
    await until_stopped()
    print("mockprovider stopping", flush=True)
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = ServerOptions(seed=args.seed, latency_scale=args.latency_scale, limits=not args.no_limits,
                            profile_files=args.profiles, sets=args.sets, image_kb=args.image_kb,
                            image_cache_mb=args.image_cache_mb, public_url=args.public_url,
                            max_body_mb=args.max_body_mb, admin_token=args.admin_token, midjourney=args.midjourney,
                            body_timeout_s=args.body_timeout, record_cap=args.record_cap,
                            correlation_header=args.correlation_header)
    try:
        if args.show_profiles:
            providers = build_providers(options)
            print(json.dumps({n: describe(p.profile) for n, p in providers.items()}, indent=2))
            return 0
        build_providers(options)  # validate profiles and --set before binding
    except (ProfileError, SettingsError) as exc:
        print(f"mockprovider: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host) and not args.admin_token:
        print(f"mockprovider: refusing to listen on {args.host} without --admin-token (or MOCK_ADMIN_TOKEN): "
              "anyone who can reach the admin API could switch providers off", file=sys.stderr)
        return 2
    if args.loop in ("auto", "uvloop"):
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            if args.loop == "uvloop":
                print("mockprovider: uvloop is not installed", file=sys.stderr)
                return 2
    if args.workers > 1:
        from .workers import run_workers
        return run_workers(args, options, serve)
    try:
        asyncio.run(serve(args, options))
    except OSError as exc:
        print(f"mockprovider: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
