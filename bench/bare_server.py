"""The yardstick for the throughput benchmark: a bare aiohttp handler on the relay's route.

It reads the request body and answers one fixed JSON body (the bytes the mock
answers for the same request), on the same event loop the mock uses, with no
access log, so the ratio mock/bare prices only what the mock itself adds.

    python bench/bare_server.py --port 0 --body-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from aiohttp import web

from mockprovider.__main__ import until_stopped, write_ready_file

ROUTE = "/relay/v1/images/generations"


def build_app(body: bytes) -> web.Application:
    async def generate(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post(ROUTE, generate)
    return app


async def serve(port: int, body: bytes, ready_file: Path | None) -> None:
    runner = web.AppRunner(build_app(body), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    print(f"bare server listening on http://127.0.0.1:{port}", flush=True)
    if ready_file is not None:
        write_ready_file(ready_file, {"url": f"http://127.0.0.1:{port}", "port": port, "pid": os.getpid()})
    await until_stopped()   # the mock's own shutdown wait; nothing of the mock is on the request path
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--body-file", type=Path, required=True)
    p.add_argument("--ready-file", type=Path)
    args = p.parse_args()
    try:
        import uvloop  # the mock's default loop (--loop auto)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.body_file.read_bytes(), args.ready_file))


if __name__ == "__main__":
    main()
