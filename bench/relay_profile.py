"""Profile one server on the relay route, for work on the hot path (not part of `make bench`).

    # instructions per request under callgrind, as section (c) of mock_bench.py counts them, and the
    # dump's top functions by their own instructions (callgrind_annotate)
    flock /tmp/cpu.lock ../.venv/bin/python relay_profile.py callgrind [--limits] [--bare] [--keep DIR]
    # where the Python time goes: py-spy samples the server while wrk drives it (py-spy is not a
    # dependency of the project: `../.venv/bin/pip install py-spy` first)
    flock /tmp/cpu.lock ../.venv/bin/python relay_profile.py py-spy [--limits] [--seconds 20]

`--limits` runs the mock with its limits on (mock_bench.LIMITED_ARGS: rate limit and capacity counting,
with budgets no load here spends); `--bare` profiles bench/bare_server.py answering the mock's body.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mock_bench import (
    CG_REQUESTS,
    CG_START_TIMEOUT_S,
    CG_WARMUP,
    HEADERS,
    LIMITED_ARGS,
    MOCK_ARGS,
    REQUEST,
    ROUTE,
    _callgrind_control,
    _Client,
    _dump_total,
    _post_once,
    callgrind_command,
)
from procs import PYTHON, ROOT, lua_post, mock_command, server, wrk


def _commands(limits: bool, bare: bool, body_dir: str) -> list[str]:
    mock = mock_command(*(LIMITED_ARGS if limits else MOCK_ARGS))
    if not bare:
        return mock
    with server(mock) as url:   # the bare handler answers the mock's own bytes, as in mock_bench
        body = _post_once(url)
    body_file = Path(body_dir) / "body.json"
    body_file.write_bytes(body)
    return [PYTHON, str(ROOT / "bench" / "bare_server.py"), "--body-file", str(body_file)]


def callgrind(cmd: list[str], outdir: str, requests: int, top: int) -> None:
    with server(callgrind_command(cmd, outdir), timeout=CG_START_TIMEOUT_S) as url:
        client = _Client(url)
        try:
            client.send(CG_WARMUP)
            time.sleep(0.5)
            _callgrind_control("--zero", url.pid)
            client.send(requests)
            time.sleep(0.5)
            before = set(Path(outdir).glob(f"callgrind.out.{url.pid}.*"))
            _callgrind_control("--dump", url.pid)
            (dump,) = set(Path(outdir).glob(f"callgrind.out.{url.pid}.*")) - before
        finally:
            client.close()
    print(f"{_dump_total(dump) / requests:,.0f} Ir/request over {requests:,} requests ({dump})")
    annotate = subprocess.run(["callgrind_annotate", "--threshold=100", str(dump)], capture_output=True, text=True)
    lines = annotate.stdout.splitlines()
    start = next((i for i, ln in enumerate(lines) if "file:function" in ln), 0)
    for line in lines[start:start + top + 2]:
        print(line)


def py_spy(cmd: list[str], seconds: int, outdir: str) -> None:
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: ../.venv/bin/pip install py-spy")
    script = lua_post(REQUEST, HEADERS)
    with server(cmd) as url:
        wrk(url + ROUTE, script, connections=50, seconds=2)   # warm-up
        raw = Path(outdir) / "py-spy.txt"
        spy_proc = subprocess.Popen([spy, "record", "--pid", str(url.pid), "--rate", "500", "--format", "raw",
                                     "--nonblocking", "--duration", str(seconds), "--output", str(raw)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wrk(url + ROUTE, script, connections=50, seconds=seconds)
        finally:
            spy_proc.wait(seconds + 30)
    _summarise_collapsed(raw)


def _summarise_collapsed(path: Path, top: int = 40) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    print(f"{total:,} samples in {path}\n\nown %  incl %  function")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{n / total * 100:5.1f}  {incl[frame] / total * 100:6.1f}  {frame}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=("callgrind", "py-spy"))
    p.add_argument("--limits", action="store_true")
    p.add_argument("--bare", action="store_true")
    p.add_argument("--requests", type=int, default=CG_REQUESTS)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--keep", help="a directory to keep the dumps in (default: a temporary one, removed)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="relay_profile_") as tmp:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        cmd = _commands(args.limits, args.bare, tmp)
        if args.tool == "callgrind":
            callgrind(cmd, outdir, args.requests, args.top)
        else:
            py_spy(cmd, args.seconds, outdir)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
