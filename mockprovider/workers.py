"""`--workers N`: N server processes on one port, watched by the process that started them.

The supervisor reserves the port (a socket bound with SO_REUSEPORT and never listening, so port 0
becomes one port for all), makes the shared state (mockprovider.shared), forks the workers, and
writes the ready-file once every worker listens on the public port and on its internal one. SIGTERM
or SIGINT stop every worker. A worker that dies on its own is reported on stderr, with its exit
code, and the others are stopped: limits counted with a worker gone (its slots held, its lock
perhaps) would no longer be the configured ones, so the mock does not go on pretending.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from multiprocessing.connection import wait
from typing import Any

from .app import ServerOptions, build_providers
from .shared import SharedState

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

Serve = Callable[[argparse.Namespace, ServerOptions], Coroutine[Any, Any, None]]


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker_main(index: int, shared: SharedState, args: argparse.Namespace, options: ServerOptions,
                 serve: Serve) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)   # until the worker's loop takes them (until_stopped)
    shared.become_worker(index)
    worker_options = replace(options, shared=shared, worker_id=f"{os.getpid()}-w{index}")
    asyncio.run(serve(args, worker_options))


def run_workers(args: argparse.Namespace, options: ServerOptions, serve: Serve) -> int:
    try:
        reserved = _reserve(args.host, args.port)
    except OSError as exc:
        print(f"mockprovider: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    port = reserved.getsockname()[1]
    worker_args = argparse.Namespace(**{**vars(args), "port": port})
    shared = SharedState(args.workers, list(build_providers(options)))
    ctx = multiprocessing.get_context("fork")   # the shared mapping and lock are inherited, not named
    procs = [ctx.Process(target=_worker_main, args=(i, shared, worker_args, options, serve),
                         name=f"mockprovider-worker-{i}", daemon=True) for i in range(args.workers)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(shared.ports()):
            dead = [p for p in procs if not p.is_alive()]
            if dead or stopping or time.monotonic() > deadline:
                why = (f"worker {procs.index(dead[0])} exited with code {dead[0].exitcode}" if dead
                       else "stopped" if stopping else f"not every worker listened within {READY_TIMEOUT_S:g} s")
                print(f"mockprovider: {why}", file=sys.stderr)
                return 0 if stopping and not dead else 2
            time.sleep(0.01)
        reserved.close()
        print(f"mockprovider listening on http://{args.host}:{port}  workers={args.workers} seed={args.seed} "
              f"latency-scale={args.latency_scale} limits={'off (latency only)' if args.no_limits else 'on'}",
              flush=True)
        print(f"  worker pids: {', '.join(str(p.pid) for p in procs)}", flush=True)
        if args.ready_file is not None:
            from .__main__ import write_ready_file
            write_ready_file(args.ready_file, {"url": f"http://{args.host}:{port}", "port": port, "pid": os.getpid(),
                                               "workers": [p.pid for p in procs]})
        while not stopping:
            ended = wait([p.sentinel for p in procs], timeout=0.2)
            if ended and not stopping:
                for p in procs:
                    if p.sentinel in ended:
                        p.join(1.0)   # reaped, so its exit code is known
                        print(f"mockprovider: worker {procs.index(p)} (pid {p.pid}) exited with code "
                              f"{p.exitcode}; stopping the other workers", file=sys.stderr, flush=True)
                return 1
        print("mockprovider stopping", flush=True)
        return 0
    finally:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)   # type: ignore[arg-type]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        for sig, handler in old.items():
            signal.signal(sig, handler)
