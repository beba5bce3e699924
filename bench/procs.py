"""Processes a benchmark starts: servers pinned to a CPU, and wrk with a Lua script.

Every process started here is stopped by the context manager that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# wrk on one core, the server under test on the other, so neither steals the other's CPU.
CLIENT_CPU, SERVER_CPU = "0", "1"


def pinned(cmd: list[str], cpu: str) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu, *cmd]
    return cmd


class ServerURL(str):
    """A server's base URL that also knows the server's process id."""

    pid: int = 0


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system (kernel) CPU time a process has used so far, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick



@contextlib.contextmanager
def server(cmd: list[str], *, cpu: str = SERVER_CPU, timeout: float = 20.0) -> Iterator[ServerURL]:
    """Start a server that takes `--ready-file FILE` and writes its URL there; yield that URL; stop it."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        ready = Path(tmp) / "ready.json"
        proc = subprocess.Popen(pinned([*cmd, "--ready-file", str(ready)], cpu), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []

        def drain() -> None:   # keep reading, so a chatty server never blocks on a full pipe
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)

        threading.Thread(target=drain, daemon=True).start()
        try:
            deadline = time.monotonic() + timeout
            while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if not ready.exists():
                raise RuntimeError(f"{' '.join(cmd)} did not start:\n{''.join(lines)}")
            url = ServerURL(json.loads(ready.read_text())["url"])
            url.pid = proc.pid   # taskset execs the command, so this is the server itself
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def mock_command(*args: str) -> list[str]:
    return [PYTHON, "-m", "mockprovider", "--port", "0", *args]


_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, "mean_us": %.3f, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
"""


def lua_post(body: dict, headers: dict[str, str]) -> str:
    """A wrk script that POSTs one JSON body and prints exact (1 us) percentiles as JSON when done."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(json.dumps(body))}"]
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    return "\n".join(lines) + "\n" + _DONE


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(url: str, script: str, *, connections: int, seconds: float, threads: int = 1,
        timeout_s: float = 10.0) -> dict:
    """Run wrk once; the summary its done() printed, with `rps` added."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        path = fh.name
    try:
        cmd = pinned(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", f"--timeout={int(timeout_s)}s",
                      "-s", path, url], CLIENT_CPU)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(path)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    result = json.loads(line.removeprefix("WRKJSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def settle(seconds: float = 0.5) -> None:
    """Let sockets in TIME_WAIT and the previous server's last work drain between runs."""
    time.sleep(seconds)
