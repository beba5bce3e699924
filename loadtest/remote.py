"""Locust workers on other hosts: `loadtest run --expect-workers N` on the master's host, `loadtest worker
--master-host HOST` on each worker's.

A worker must load the very scenario the master loaded, with the same overrides, or the two disagree
about the load without a word. A scenario file, or a `--duration`, given on the master's host is not
on the worker's, so a worker takes it from the master over Locust's own channel: a worker started with
`-f -` downloads the master's locustfile before it parses its options. For a run with remote workers
the master's locustfile is written for the run (`write_locustfile`): the suite's locustfile, and the
run's options as the defaults of the plugin's options on a worker, the scenario's text included when
it is a file. Nothing else needs to reach a worker host but the installed package and, for a real
target, its API keys (`LOADTEST_API_KEYS`, which never travel over Locust's unencrypted channel).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from .children import own_session
from .locust.headless import MODULE as HEADLESS_LOCUST
from .scenario import builtin_scenarios, scenario_path

LOCUST_MASTER_PORT = 5557       # Locust's own default for --master-port and --master-bind-port
LOCUSTFILE_NAME = "imagegen_workers.py"

# The plugin's options (dests) a worker loads its scenario from; what only the master does with the
# result (reports, the gate, the baseline, metrics) stays on the master's command line.
WORKER_OPTIONS = ("target", "api", "model", "duration", "mock_url", "embedded_mock", "record_url", "mock_sets",
                  "profiles", "inconclusive")

_LOCUSTFILE = '''"""The suite's locustfile for the workers of one run, written by `loadtest run --expect-workers`.

A worker started with `loadtest worker --master-host HOST` (or `locust -f - --worker --master-host HOST`)
downloads this file from the master: it carries the run's scenario and options, so the worker loads the
scenario the master loaded, whatever files its own host has.
"""

from locustfiles.imagegen import ScenarioShape, ScenarioUser

from loadtest.remote import worker_defaults

worker_defaults({options!r}, scenario_name={name!r}, scenario_text={text!r})

__all__ = ["ScenarioShape", "ScenarioUser"]
'''


def write_locustfile(folder: Path, scenario_ref: str, options: Mapping[str, str | bool | None]) -> Path:
    """The run's locustfile for its remote workers, in `folder` (the master is started with it)."""
    path = scenario_path(scenario_ref)
    builtin = builtin_scenarios().get(scenario_ref)
    text = None if builtin is not None else path.read_bytes().decode("utf-8-sig")
    name = scenario_ref if builtin is not None else path.name
    given = {k: v for k, v in options.items() if k in WORKER_OPTIONS and v}
    out = folder / LOCUSTFILE_NAME
    out.write_text(_LOCUSTFILE.format(options=given, name=name, text=text), encoding="utf-8")
    return out


def worker_defaults(options: Mapping[str, str | bool], *, scenario_name: str, scenario_text: str | None) -> None:
    """In a worker that downloaded the run's locustfile: the master's options become the plugin's defaults.

    On the master (or a lone process) its own command line holds them already, and nothing is done."""
    if "--worker" not in sys.argv[1:]:
        return
    from locust import events

    scenario = scenario_name if scenario_text is None else str(_scenario_file(scenario_name, scenario_text))
    defaults: dict[str, Any] = {**options, "scenario": scenario}

    def set_defaults(parser: Any, **_: Any) -> None:
        parser.set_defaults(**defaults)

    events.init_command_line_parser.add_listener(set_defaults)


def _scenario_file(name: str, text: str) -> Path:
    """The master's scenario file, on this host, under its own name (a scenario without `name` takes the file's),
    in a folder named by its content: workers on one host share it; each removes it when it ends."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"loadtest-scenario-{digest}"
    folder.mkdir(exist_ok=True)
    path = folder / name
    tmp = folder / f".{name}.{os.getpid()}"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    atexit.register(_remove, path)
    return path


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass    # another worker on this host still has its copy there


def worker_main(argv: list[str]) -> int:
    """`loadtest worker`: one Locust worker for a master on another host; it takes the run from the master."""
    parser = argparse.ArgumentParser(
        prog="loadtest worker",
        description="One Locust worker for `loadtest run --expect-workers N` on another host. It takes the "
                    "scenario and the run's options from the master (waiting up to 5 minutes for it), runs its "
                    "share of the users, sends its measurements to the master and ends with the run. Start one "
                    "per core of this host.")
    parser.add_argument("--master-host", required=True, help="the address of the host `loadtest run` runs on")
    parser.add_argument("--master-port", type=int, default=LOCUST_MASTER_PORT,
                        help=f"the master's port (its --master-bind-port; default {LOCUST_MASTER_PORT})")
    parser.add_argument("--loglevel", default="INFO", help="Locust's log level (default INFO)")
    args = parser.parse_args(argv)
    if not 0 < args.master_port < 65536:
        parser.error(f"--master-port must be 1..65535, got {args.master_port}")
    cmd = [sys.executable, "-m", HEADLESS_LOCUST, "-f", "-", "--worker", "--master-host", args.master_host,
           "--master-port", str(args.master_port), "--loglevel", args.loglevel]
    # Locust writes the locustfile it downloads into the temp folder, under the master's name for it: workers
    # started side by side on one host would overwrite each other's copy while another imports it. Each gets
    # a folder of its own, removed when it ends.
    with tempfile.TemporaryDirectory(prefix="loadtest-worker-") as tmp:
        return _supervise(cmd, {**os.environ, "TMPDIR": tmp})


def _supervise(cmd: list[str], env: dict[str, str]) -> int:
    """Run Locust's worker in a session of its own and hand it each stop signal once: a Ctrl-C at the terminal
    reaches this process only, so the worker is not interrupted twice (which would cut its goodbye short)."""
    proc = subprocess.Popen(cmd, env=env, preexec_fn=own_session())

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code


