"""The SLA plugin: Locust's event wiring, and nothing else.

`install()` (called once by a locustfile) adds the suite's command-line options and an `init`
listener. At init the plugin loads the scenario, puts a `SuiteRun` on the Environment
(`environment.loadtest`, see run.py) and connects its methods to Locust's events; the run
state, the gate (loadtest.gate) and the reports live there, not here.

Processes find each other by files, never by reading each other's output: `--ready-file`
gets the master's RPC port (bound to a free one with `--master-bind-port 0`) and the web UI's
address once they listen; `--result-file` gets the summary once the run is gated, for the
runner to print.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import gevent
import greenlet
from locust import events
from locust.runners import WorkerRunner

from ..clients.keys import parse_keys
from ..scenario import Overrides, ScenarioError, load_scenario
from . import heap, saturation_watch
from .compat import SPAWN_RATE_WARNING, missing_hooks
from .native import LocustReports
from .run import FINAL_MESSAGE, SuiteRun

log = logging.getLogger("loadtest")


def _add_options(parser: Any) -> None:
    def add(*args: Any, **kw: Any) -> None:
        parser.add_argument(*args, include_in_web_ui=False, **kw)
    add("--scenario", default="flash_sale", help="scenario name (a built-in) or the path of a TOML file")
    add("--target", default="", help="override the scenario's target: a mock provider or a base URL")
    add("--api", default="", help="wire format of a URL target: relay|openai|vertex|midjourney")
    add("--model", default="", help="model to ask the target for")
    add("--duration", default="", help="stretch the scenario's stages to this total (e.g. 90s, 4h)")
    add("--mock-url", default="", help="base URL of the simulated providers (for mock targets and admin actions)")
    add("--embedded-mock", action="store_true", default=False,
        help="the mock at --mock-url was started with the scenario's own [mock] options")
    add("--record-url", default="", help="admin base of a mock whose provider-side record this run reads")
    add("--mock-sets", default="", help="settings the mock was started with, comma separated (for the report)")
    add("--profiles", default="", help="extra mock profile files, comma separated")
    add("--report-dir", default="", help="where the report goes (default ./reports/<scenario>-<time>)")
    add("--ready-file", default="", help="write the master's port and the web UI's address here once listening")
    add("--result-file", default="", help="write the gated summary here (for the process that started Locust)")
    add("--faults-file", default="", help="a JSON list of harness faults the starting process saw (e.g. the mock died)")
    add("--locust-csv", default="", help="write Locust's CSV files to PREFIX_*.csv (as --csv does, failures reported)")
    add("--locust-html", default="", help="write Locust's HTML report here (as --html does, failures reported)")
    add("--inconclusive", default="", help="overrides the scenario's [gate] inconclusive: invalid, fail, observed")
    add("--baseline", default="", help="a previous run's summary.json: deltas, and the scenario's [regressions]")
    add("--metrics-port", type=int, default=-1,
        help="serve Prometheus metrics of the run on this port (0: a free one, announced in --ready-file); off if -1")
    add("--metrics-host", default="127.0.0.1", help="the address the metrics endpoint listens on")


def install() -> None:
    """Register the plugin on Locust's global events (call once, from the locustfile)."""
    missing = missing_hooks()
    if missing:
        raise RuntimeError("this Locust lacks what the SLA plugin needs: " + ", ".join(missing) +
                           f" (locust {_locust_version()}; the suite supports the range pinned in pyproject.toml)")
    events.init_command_line_parser.add_listener(_add_options)
    events.init.add_listener(_on_init)


class _IntendedSpawnRate(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(SPAWN_RATE_WARNING)


def _stops_reach_the_main_greenlet(environment: Any, opts: Any) -> None:
    """SIGINT (Ctrl-C, or the runner stopping the run) as one KeyboardInterrupt in the main greenlet, where
    Locust's main waits for it and shuts down in order (a worker sends its last measurements first).

    Python's own handler raises it in whichever greenlet happens to run: a user's, the worker's message
    loop (a traceback, and an exit code of 2 for an "unhandled greenlet exception"), or gevent's hub
    (which prints "KeyboardInterrupt" and a timestamp). A second signal, or one once Locust has begun
    to shut down, would only break that off: it is left to the runner, which ends Locust if it does not
    end by itself.

    A headless master (or single process) takes SIGTERM and SIGHUP the same way, and a worker SIGTERM (a
    tree kill, `docker stop` with Locust as PID 1, systemd stopping the unit). Locust's own SIGTERM handler
    calls its shutdown from gevent's hub, which is not safe to run twice: with the runner's SIGINT (or the
    master's quit) already shutting it down, the second run raised `SystemExit` into the interpreter's own
    shutdown, a traceback in the console. SIGTERM is therefore taken over at the Python level once Locust's
    main has installed its handler (a Python handler replaces the process's signal action, so Locust's
    watcher never fires). The web UI keeps Locust's own SIGTERM handling.
    """
    main = greenlet.getcurrent()
    sent = False

    def interrupt(name: str) -> None:
        nonlocal sent
        suite = getattr(environment, "loadtest", None)
        if not sent and not main.dead and not (suite is not None and suite.quitting):
            sent = True
            if name != "SIGINT":
                log.info("%s: stopping the run and gating what was measured", name)
            main.throw(KeyboardInterrupt)

    stops = [signal.SIGINT]
    if opts.headless and not opts.worker:
        stops.append(signal.SIGHUP)
    for sig in stops:
        gevent.signal_handler(sig, interrupt, sig.name)
    if opts.headless or opts.worker:
        # Spawned now, this runs once Locust's main first waits, which is after it installs its SIGTERM
        # watcher: nothing on its way there from the init event yields.
        gevent.spawn(_take_over_sigterm, interrupt)


def _take_over_sigterm(interrupt: Callable[[str], None]) -> None:
    loop = gevent.get_hub().loop

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # In whichever greenlet runs when Python checks for signals: hand it to the hub, raise nothing here.
        loop.run_callback_threadsafe(interrupt, "SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)


def _on_init(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None:
        return
    _stops_reach_the_main_greenlet(environment, opts)
    heap.fix_mmap_threshold()
    overrides = Overrides(target=opts.target or None, api=opts.api or None, model=opts.model or None,
                          duration=opts.duration or None, profiles=tuple(p for p in opts.profiles.split(",") if p),
                          sets=tuple(s for s in opts.mock_sets.split(",") if s), baseline=opts.baseline or None,
                          inconclusive=opts.inconclusive or None)
    try:
        scenario = load_scenario(opts.scenario, overrides)
    except ScenarioError as exc:
        sys.stderr.write(f"loadtest: {exc}\n")
        sys.exit(2)
    own_keys = parse_keys(os.environ.get("LOADTEST_API_KEYS", ""))
    on_mock = scenario.target.on_mock
    suite = SuiteRun(environment, scenario, mock_url=opts.mock_url or None, embedded_mock=opts.embedded_mock,
                     report_dir=Path(opts.report_dir) if opts.report_dir else None,
                     report_root=Path.cwd() / "reports", result_file=Path(opts.result_file) if opts.result_file
                     else None, key_pool=scenario.client.keys if on_mock or not own_keys else len(own_keys),
                     faults_file=Path(opts.faults_file) if opts.faults_file else None,
                     locust_reports=_locust_reports(environment, opts),
                     record_url=getattr(opts, "record_url", "") or None)
    if suite.target.base_url is None:
        sys.stderr.write(f"loadtest: target {scenario.target.name!r} lives on the mock: give --mock-url "
                         "(or --host with the API's base URL)\n")
        sys.exit(2)
    environment.loadtest = suite
    ev = environment.events
    ev.test_start.add_listener(suite.on_test_start)
    ev.test_start.add_listener(lambda **_: _after_test_start(suite))
    ev.spawning_complete.add_listener(suite.on_spawning_complete)
    ev.request.add_listener(suite.on_request)
    ev.report_to_master.add_listener(suite.on_report_to_master)
    ev.worker_report.add_listener(suite.on_worker_report)
    ev.test_stop.add_listener(suite.on_test_stop)
    ev.quitting.add_listener(suite.on_quitting)
    logging.getLogger("locust.runners").addFilter(_IntendedSpawnRate())
    if not environment.host:
        environment.host = suite.target.base_url
    for cls in environment.user_classes:
        cls.host = suite.target.base_url
    if suite.is_master:
        suite.runner.register_message(FINAL_MESSAGE, suite.on_final_message)
    fast = [s for s in scenario.load.stages if s.spawn_rate > 100]
    if fast and not suite.is_worker:
        log.info("stage%s %s change%s the user count at up to %.0f/s, as the scenario asks (Locust's warning about "
                 "spawn rates over 100/s is left out)", "s" if len(fast) > 1 else "",
                 ", ".join(s.name for s in fast), "" if len(fast) > 1 else "s", max(s.spawn_rate for s in fast))
    if environment.web_ui is not None:
        from .webui import install_sla_view
        install_sla_view(environment.web_ui, suite)
    if opts.metrics_port >= 0 and not suite.is_worker:
        from .metrics import serve
        log.info("Prometheus metrics on %s", serve(environment, suite, opts.metrics_host, opts.metrics_port).url)
    if opts.ready_file and not suite.is_worker:
        gevent.spawn(_announce, environment, Path(opts.ready_file))


def _locust_reports(environment: Any, opts: Any) -> LocustReports | None:
    if environment.runner is not None and isinstance(environment.runner, WorkerRunner):
        return None
    if not (opts.locust_csv or opts.locust_html):
        return None
    reports = LocustReports(environment, Path(opts.locust_csv) if opts.locust_csv else None,
                            Path(opts.locust_html) if opts.locust_html else None)
    reports.start()
    return reports


def _after_test_start(suite: SuiteRun) -> None:
    """Once the run exists: tell its driver which worker this is (so workers share the arrivals, not repeat
    them), and watch for over-saturation if the scenario asks."""
    run = suite.current
    if run is None:
        return
    if suite.is_worker and hasattr(run.driver, "process_index"):
        run.driver.process_index = int(getattr(suite.runner, "worker_index", 0) or 0)
    saturation_watch.start(suite)


def _announce(environment: Any, path: Path) -> None:
    """Write where this Locust listens, once it does: the master's RPC port, the web UI's address."""
    doc: dict[str, Any] = {"pid": os.getpid()}
    server = getattr(environment.runner, "server", None)
    if server is not None:
        doc["master_port"] = server.port
    metrics = getattr(environment, "loadtest_metrics", None)
    if metrics is not None:
        doc["metrics_url"] = metrics.url
    web_ui = environment.web_ui
    if web_ui is not None:
        while web_ui.server is None or not web_ui.server.started:
            gevent.sleep(0.05)
        host, port = web_ui.server.address[:2]
        doc["web_url"] = f"http://{host}:{port}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def _locust_version() -> str:
    from locust import __version__
    return str(__version__)
