"""A small in-house gateway for the [sut] kind = "command" tests: OpenAI's image route passed on to one upstream.

    python inhouse_gateway.py --port N --upstream URL [--pid-file F] [--empty-every K] [--resize-every K]
                              [--forward-id]

--empty-every K answers every K-th success as HTTP 200 with `data: []`: the silent failure a gateway bug
makes, which the suite's clients must count as a failure. --resize-every K asks the upstream for 512x512
instead of the size the client asked, every K-th request: capability drift. --forward-id passes the
client's x-request-id on, so the providers' record can count upstream calls per client request.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import aiohttp
from aiohttp import web


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--pid-file", default="")
    ap.add_argument("--empty-every", type=int, default=0)
    ap.add_argument("--resize-every", type=int, default=0)
    ap.add_argument("--forward-id", action="store_true")
    args = ap.parse_args()
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    answered = received = 0

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def generate(request: web.Request) -> web.Response:
        nonlocal answered, received
        body = await request.read()
        received += 1
        if args.resize_every and received % args.resize_every == 0:
            body = json.dumps({**json.loads(body), "size": "512x512"}).encode()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-inhouse-upstream"}
        if args.forward_id and "x-request-id" in request.headers:
            headers["x-request-id"] = request.headers["x-request-id"]
        session: aiohttp.ClientSession = request.app["session"]
        async with session.post(args.upstream + "/images/generations", data=body, headers=headers) as resp:
            payload = await resp.read()
            status = resp.status
        if status == 200:
            answered += 1
            if args.empty_every and answered % args.empty_every == 0:
                return web.json_response({"created": 0, "data": []})
        return web.Response(body=payload, status=status, content_type="application/json")

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession()
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/healthz", health)
    app.router.add_post("/v1/images/generations", generate)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
