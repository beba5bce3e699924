"""Run the simulated providers as a child process on a free loopback port, and stop them after.

The child binds port 0 and says where it listens in a ready-file (`--ready-file`), so no port is
picked here and handed over: nothing can take it in between.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from .children import own_session


class MockProcess:
    """`python -m mockprovider --port 0 ARGS...`; `.url` once started; a context manager."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, echo: bool = False,
                 new_session: bool = False, cwd: str | Path | None = None) -> None:
        self.args = ["--port", "0", *args]
        self.env = env
        self.echo = echo
        self.new_session = new_session   # out of the terminal's process group: a Ctrl-C there is not for it
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []
        self._reader: threading.Thread | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 30.0) -> MockProcess:
        self._dir = tempfile.TemporaryDirectory(prefix="mockprovider-")
        ready = Path(self._dir.name) / "ready.json"
        self.proc = subprocess.Popen([sys.executable, "-m", "mockprovider", *self.args, "--ready-file", str(ready)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, **(self.env or {})},
                                     preexec_fn=own_session(new_session=self.new_session, ctrl_c=False),
                                     cwd=self.cwd)
        # Keep draining its output so a chatty server never blocks on a full pipe.
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if ready.exists():
                self.url = json.loads(ready.read_text())["url"]
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("the mock server did not start:\n" + "".join(self.output))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if self.echo:
                sys.stdout.write(f"[mock] {line}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._reader is not None:
            self._reader.join(2)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def admin(self, provider: str, **changes: Any) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.url}/admin/providers/{provider}", data=json.dumps(changes).encode(),
                                     method="PATCH", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def __enter__(self) -> MockProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
