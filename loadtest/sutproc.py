"""Start the system under test (a scenario's [sut]) on a free loopback port, and stop it after.

Like every child of the runner it runs in a session of its own, so a Ctrl-C at the terminal
reaches only the runner, which stops it last but one (before the mock it calls) and kills its
whole process group: a gateway's own workers go with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

from .children import own_session
from .sut import LITELLM_ENV, Sut, fill, placeholders

LOG_LINES = 40


class SutError(RuntimeError):
    """The gateway did not start or never turned healthy; the message ends with its last log lines."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SutProcess:
    """The gateway as a child process: `.url` (its base URL), `.api_url` (where Locust's target API lives)."""

    def __init__(self, sut: Sut, mock_url: str, workdir: Path) -> None:
        self.sut = sut
        self.mock_url = mock_url
        self.workdir = workdir
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self._reader: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        return self.url + self.sut.base_path

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.port = free_port()
        extra = {"python": sys.executable}
        if self.sut.kind == "litellm":
            config = self.workdir / "litellm_config.yaml"
            extra["config"] = str(config)
            values = placeholders(self.mock_url, self.port, **extra)
            # JSON is YAML: LiteLLM reads it as its config without a YAML writer here.
            config.write_text(json.dumps(fill(dict(self.sut.litellm), values), indent=2))
            env = {**LITELLM_ENV, **fill(dict(self.sut.env), values)}
        else:
            values = placeholders(self.mock_url, self.port, **extra)
            env = fill(dict(self.sut.env), values)
        return [fill(c, values) for c in self.sut.command], env

    def start(self) -> SutProcess:
        cmd, env = self.command()
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env}, cwd=self.workdir, preexec_fn=own_session())
        except OSError as exc:
            raise SutError(f"the {self.sut.name} command {cmd[0]!r} could not start: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        try:
            self._wait_healthy()
        except BaseException:     # never ready, or Ctrl-C / SIGTERM while waiting: it must not outlive us
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.sut.ready_timeout_s
        health = self.url + self.sut.health
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._join_reader()
                raise SutError(f"the {self.sut.name} exited (code {self.proc.returncode}) before it was ready"
                               + self.tail())
            if _healthy(health):
                return
            time.sleep(0.2)
        raise SutError(f"the {self.sut.name} did not answer {health} within {self.sut.ready_timeout_s:g} s"
                       + self.tail())

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.decode("utf-8", "replace").rstrip())

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(2)

    def tail(self, n: int = 10) -> str:
        lines = list(self.log)[-n:]
        return ("; its last log lines:\n  " + "\n  ".join(lines)) if lines else "; it logged nothing"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to its whole process group, then SIGKILL after stop_timeout."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(self.sut.stop_timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Workers it forked stay in its group after it exits: none may outlive the run.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self._join_reader()

    def __enter__(self) -> SutProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
