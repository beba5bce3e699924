"""`loadtest run` / `loadtest ui`: the embedded mock when the target lives there, Locust, the verdict.

The gate itself runs inside Locust (loadtest.locust) and becomes Locust's exit code; this
module starts what the run needs, hands Locust its options, prints the verdict once, last,
and stops everything it started — on Ctrl-C and SIGTERM too.

Every child runs in a session of its own, so a Ctrl-C at the terminal reaches only this
process, which then stops the run in order: Locust first (it gates what it measured and
writes the report), the mock last. Children announce themselves in ready-files; none is
found by reading its output.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from mockprovider.record_client import RecordClient, RecordError

from . import sizing
from .children import own_session
from .exitcodes import ExitCode
from .fields import ScenarioError
from .gate import End, RunFacts, judge
from .locust.headless import MODULE as HEADLESS_LOCUST
from .mockproc import MockProcess
from .recorder import Recorder
from .remote import LOCUST_MASTER_PORT, write_locustfile
from .report import ReportWriteError, console, write_all
from .scenario import Overrides, Scenario, is_url, load_scenario, url_problem
from .summary import RunDoc, Summary, build_summary, describe_load, describe_mock, describe_scenario, describe_target
from .sutproc import SutError, SutProcess

STOP_GRACE_S = 60.0


def locustfile() -> Path:
    return Path(str(resources.files("locustfiles") / "imagegen.py"))


@dataclass
class RunOptions:
    target: str | None = None
    api: str | None = None
    model: str | None = None
    duration: str | None = None
    workers: int = 0
    profiles: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    mock_url: str | None = None
    report_dir: str | None = None
    web_port: int = 8089
    ready_file: str | None = None      # where to write the web UI's and the metrics' URLs once they listen
    extra_env: dict[str, str] = field(default_factory=dict)
    baseline: str | None = None        # a previous run's summary.json to compare with
    inconclusive: str | None = None    # overrides [gate] inconclusive
    mock_workers: int = 1              # processes of the embedded mock (its --workers)
    metrics_port: int | None = None    # serve the run's Prometheus metrics here (0: a free port); None: off
    metrics_host: str = "127.0.0.1"
    record_url: str | None = None      # the admin base of a mock whose provider-side record the run reads
    expect_workers: int = 0            # Locust workers started on other hosts (`loadtest worker`); none here
    master_bind_host: str = "0.0.0.0"  # where the master listens for them
    master_bind_port: int = LOCUST_MASTER_PORT
    expect_workers_max_wait: float = 300.0

    def overrides(self) -> Overrides:
        return Overrides(target=self.target, api=self.api, model=self.model, duration=self.duration,
                         profiles=self.profiles, sets=self.sets,
                         baseline=str(Path(self.baseline).resolve()) if self.baseline else None,
                         inconclusive=self.inconclusive)


def mock_args(scenario: Scenario) -> list[str]:
    args = ["--seed", str(scenario.mock.seed), "--latency-scale", str(scenario.mock.latency_scale)]
    for s in scenario.mock.sets:
        args += ["--set", s]
    for p in scenario.mock.profiles:
        args += ["--profiles", p]
    return args


def reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def default_report_dir(scenario: Scenario) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path.cwd() / "reports" / f"{scenario.name}-{stamp}"


def check_writable(folder: Path) -> str | None:
    """Why the report cannot go to `folder`, or None: found out before the run, not after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".loadtest-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return f"cannot write the report to {folder}: {exc.strerror or exc}"
    return None


def _error(message: str) -> int:
    print(f"loadtest: {message}", file=sys.stderr, flush=True)
    return int(ExitCode.INVALID)


def _remote_workers_problem(scenario: Scenario, options: RunOptions) -> str | None:
    """Why this run cannot have Locust workers on other hosts, or None (also when it has none)."""
    if options.expect_workers < 0:
        return f"--expect-workers must be 0 or more, got {options.expect_workers}"
    if not options.expect_workers:
        return None
    if options.workers:
        return ("--workers starts Locust workers on this host, --expect-workers waits for workers started on "
                "others (`loadtest worker`): give one of them")
    if not 0 <= options.master_bind_port < 65536:
        return f"--master-bind-port must be 0..65535 (0: any free port), got {options.master_bind_port}"
    if options.expect_workers_max_wait <= 0:
        return f"--expect-workers-max-wait must be more than 0 s, got {options.expect_workers_max_wait:g}"
    if scenario.target.on_mock and not options.mock_url:
        return ("workers on other hosts cannot reach the mock this command would start on 127.0.0.1: start it "
                f"where they reach it (python -m mockprovider --host 0.0.0.0 --seed {scenario.mock.seed} ...) and "
                "give its address with --mock-url")
    if scenario.sut is not None:
        return ("the gateway under test ([sut]) is started on this host's loopback, out of the workers' reach: "
                "run it where they reach it and give its base URL with --target")
    if options.master_bind_port and not _port_free_on(options.master_bind_host, options.master_bind_port):
        return (f"the master's port {options.master_bind_host}:{options.master_bind_port} is in use; pick another "
                "with --master-bind-port (and give the workers the same --master-port)")
    return None


def _port_free_on(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("" if host in ("*", "0.0.0.0") else host, port))
        except OSError:
            return False
    return True


class _Stop(Exception):
    """SIGTERM or SIGHUP, raised in the main thread so it unwinds like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


STOP_SIGNALS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: _raise_stop, signal.SIGHUP: _raise_stop}


def run(scenario_ref: str, options: RunOptions, *, headless: bool = True) -> int:
    try:
        scenario = load_scenario(scenario_ref, options.overrides())
    except ScenarioError as exc:
        return _error(str(exc))
    if options.mock_url is not None and (why := (url_problem(options.mock_url) if is_url(options.mock_url) else
                                                 "it must start with http:// or https://")) is not None:
        return _error(f"--mock-url {options.mock_url!r} is not a usable base URL: {why}")
    if options.record_url is not None and (why := (url_problem(options.record_url) if is_url(options.record_url)
                                                   else "it must start with http:// or https://")) is not None:
        return _error(f"--record-url {options.record_url!r} is not a usable base URL: {why}")
    if options.sets and options.mock_url:
        return _error("--set changes the mock this command starts; with --mock-url, use its admin API")
    if not 1 <= options.mock_workers <= 64:
        return _error(f"--mock-workers (MOCK_WORKERS) must be 1..64, got {options.mock_workers}")
    if options.mock_workers > 1 and options.mock_url:
        return _error("--mock-workers sets up the mock this command starts; --mock-url names one already running")
    if options.workers < 0:
        return _error(f"--workers (WORKERS) must be 0 or more, got {options.workers}")
    if (why := _remote_workers_problem(scenario, options)) is not None:
        return _error(why)
    if options.metrics_port is not None and not (0 <= options.metrics_port < 65536):
        return _error(f"--metrics-port must be 0..65535 (0: any free port), got {options.metrics_port}")
    if options.metrics_port and not port_free(options.metrics_port):
        return _error(f"the metrics port {options.metrics_port} is in use; pick another with --metrics-port "
                      "(0: any free one)")
    if not headless and not (0 <= options.web_port < 65536):
        return _error(f"--web-port (WEB_PORT) must be 0..65535 (0: any free port), got {options.web_port}")
    if not headless and options.web_port and not port_free(options.web_port):
        return _error(f"the web UI's port {options.web_port} is in use; pick another with --web-port "
                      f"(WEB_PORT=...)")
    outdir = Path(options.report_dir).resolve() if options.report_dir else default_report_dir(scenario)
    if headless and (why := check_writable(outdir)) is not None:
        _error(why)
        print(f"verdict: {ExitCode.INVALID.words} — {scenario.name} against {scenario.target.name} (exit 2): "
              "nothing was run, for want of a place to put its report", flush=True)
        return int(ExitCode.INVALID)
    # Ctrl-C, SIGTERM (timeout, a CI cancel, docker stop) and SIGHUP (the terminal went away) stop the run
    # the same way, even where the shell started us with SIGINT ignored (a background job).
    previous = {sig: signal.signal(sig, handler) for sig, handler in STOP_SIGNALS.items()}
    try:
        with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
            return _run(scenario, scenario_ref, options, outdir if headless else None, Path(tmp))
    except (_Stop, KeyboardInterrupt):
        # Only while the mock starts or the target is checked: the run itself handles both.
        return _error("interrupted before the run began")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(scenario: Scenario, scenario_ref: str, options: RunOptions, outdir: Path | None, tmp: Path) -> int:
    mock: MockProcess | None = None
    sut: SutProcess | None = None
    mock_url = options.mock_url
    try:
        if (scenario.target.on_mock or scenario.actions) and not mock_url:
            try:
                workers = ["--workers", str(options.mock_workers)] if options.mock_workers > 1 else []
                mock = MockProcess(*mock_args(scenario), *workers, new_session=True).start()
            except RuntimeError as exc:
                return _error(str(exc))
            mock_url = mock.url
            extra = ", " + ", ".join(scenario.mock.sets) if scenario.mock.sets else ""
            print(f"mock providers on {mock_url} (seed {scenario.mock.seed}, latency scale "
                  f"{scenario.mock.latency_scale:g}{extra})", flush=True)
        base_url = scenario.target.base_url or scenario.target.url_on(mock_url or "")
        if scenario.sut is not None and scenario.target.on_mock and mock_url:
            try:
                sut = _start_sut(scenario, mock_url, tmp)
            except SutError as exc:
                return _error(str(exc))
            base_url = sut.api_url
        print(f"scenario {scenario.name}: {scenario.description}".rstrip(": "), flush=True)
        print(f"target {scenario.target.name} ({scenario.target.api}, model {scenario.target.model}) at {base_url}; "
              f"{scenario.load.KIND} model, {scenario.duration_s:.0f} s"
              f"{f', {options.workers} Locust workers' if options.workers else ''}", flush=True)
        for note in sizing.warnings(scenario):     # what the run cannot show, said before it starts
            print(f"note: {note}", flush=True)
        if not reachable(base_url):
            print(f"loadtest: the target {base_url} does not answer", file=sys.stderr, flush=True)
            if outdir is None:
                return int(ExitCode.INVALID)
            return _unreachable(scenario, base_url, mock_url, outdir)
        if outdir is not None:
            print(f"reports will be written to {_shown(outdir)}", flush=True)
        locust = LocustProcesses(scenario_ref, options, mock_url=mock_url, embedded=mock is not None,
                                 outdir=outdir, tmp=tmp, host=sut.api_url if sut is not None else None)
        locust.sut = sut
        code = locust.run(mock)
        # Locust has gated and ended: what is left (the verdict, stopping the mock) takes a moment and is
        # done even if another signal comes now.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if outdir is None:
            return code
        return _verdict(tmp / "result.json", outdir, code)
    finally:
        if sut is not None:     # before the mock it calls, so it never sees its upstream vanish under it
            sut.stop()
        if mock is not None:
            mock.stop()


def _start_sut(scenario: Scenario, mock_url: str, tmp: Path) -> SutProcess:
    """The gateway on a free port, pointed at the mock; ready once its health URL answers. The mock's record
    starts afresh then, so the provider side holds only what the gateway did for this run."""
    assert scenario.sut is not None
    print(f"starting the {scenario.sut.name} (ready on {scenario.sut.health}, up to "
          f"{scenario.sut.ready_timeout_s:g} s)", flush=True)
    sut = SutProcess(scenario.sut, mock_url, tmp).start()
    try:
        RecordClient(mock_url, token=os.environ.get("MOCK_ADMIN_TOKEN")).reset()
    except RecordError as exc:
        sut.stop()
        raise SutError(f"the mock's provider-side record could not be reset: {exc}") from None
    print(f"{scenario.sut.name} on {sut.url} in front of the mock; Locust drives {sut.api_url}", flush=True)
    return sut


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _verdict(result: Path, outdir: Path, locust_code: int) -> int:
    """Print the evidence and the verdict (once, last); the exit code is the gate's."""
    if not result.exists():
        print(f"\nverdict: {ExitCode.INVALID.words} (exit 2): Locust ended (exit code {locust_code}) without "
              f"a verdict; see its log above", flush=True)
        return int(ExitCode.INVALID)
    summary = Summary.model_validate_json(result.read_text(encoding="utf-8"))
    page = outdir / summary.files.get("html", "report.html")
    where = _shown(page if page.exists() else outdir)
    color = sys.stdout.isatty()
    print("\n" + console.render(summary, color=color) + console.verdict_line(summary, color=color, report=where),
          flush=True)
    return summary.exit_code


def _unreachable(scenario: Scenario, base_url: str, mock_url: str | None, outdir: Path) -> int:
    """No run at all: the target does not answer. Still a verdict, and a report, CI can read."""
    facts = RunFacts(planned_s=scenario.duration_s, end=End.NOT_RUN,
                     target_unreachable=f"nothing listens at {base_url}")
    recorder = Recorder(stages=scenario.load.windows())
    verdict = judge(scenario.thresholds, recorder, None, facts, min_samples=scenario.min_samples,
                    confidence=scenario.gate.confidence)
    target = describe_target(scenario.target)
    target.base_url = base_url
    summary = build_summary(scenario=describe_scenario(scenario), target=target, recorder=recorder, verdict=verdict,
                            health=None, run=RunDoc(end=End.NOT_RUN.value, planned_s=scenario.duration_s,
                                                    elapsed_s=0.0),
                            load=describe_load(scenario), started_at=datetime.now(UTC), duration_s=0.0,
                            mock=describe_mock(scenario, mock_url, mock_url is not None), report_dir=str(outdir),
                            baseline=scenario.baseline)
    try:
        write_all(summary, outdir)
    except ReportWriteError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
    print("\n" + console.render(summary) + console.verdict_line(summary, report=_shown(outdir)), flush=True)
    return summary.exit_code


class LocustProcesses:
    """Locust's master (or its only process) and its workers, each in a session of its own."""

    def __init__(self, scenario_ref: str, options: RunOptions, *, mock_url: str | None, embedded: bool,
                 outdir: Path | None, tmp: Path, host: str | None = None) -> None:
        self.options = options
        self.sut: SutProcess | None = None      # a [sut] gateway between Locust and the mock: watched like the mock
        self.outdir = outdir
        self.tmp = tmp
        self.ready = tmp / "ready.json"
        self.faults = tmp / "faults.json"
        # Locust's arguments, for the master and its workers alike.
        common = ["-f", str(locustfile()), "--scenario", scenario_ref, "--loglevel", "INFO"]
        baseline = str(Path(options.baseline).resolve()) if options.baseline else None
        for flag, value in (("--target", options.target), ("--api", options.api), ("--model", options.model),
                            ("--duration", options.duration), ("--mock-url", mock_url), ("--baseline", baseline),
                            ("--inconclusive", options.inconclusive), ("--record-url", options.record_url)):
            if value:
                common += [flag, value]
        if options.profiles:
            common += ["--profiles", ",".join(options.profiles)]
        if options.sets:
            common += ["--mock-sets", ",".join(options.sets)]
        if embedded:
            common.append("--embedded-mock")
        if host:
            common += ["--host", host]
        # A process with no web UI (every worker; a headless master) runs Locust's command line without
        # importing the UI (loadtest.locust.headless); the web UI's process runs Locust's own.
        self.worker_cmd = [sys.executable, "-m", HEADLESS_LOCUST, *common, "--worker"]
        master_module = HEADLESS_LOCUST if outdir is not None else "locust"
        master = [sys.executable, "-m", master_module, *common, "--ready-file", str(self.ready),
                  "--result-file", str(tmp / "result.json"), "--faults-file", str(self.faults),
                  "--json-file", str(tmp / "locust_stats")]
        if outdir is not None:
            # Locust's CSV files and HTML page are written by the plugin, which reports a failed write
            # (a full disk) as one reason of the verdict; Locust's own writers would raise into the console.
            master += ["--report-dir", str(outdir), "--locust-csv", str(outdir / "locust"), "--locust-html",
                       str(outdir / "locust.html"), "--headless", "--only-summary"]
        else:
            master += ["--web-host", "127.0.0.1", "--web-port", str(options.web_port)]
        if options.metrics_port is not None:
            master += ["--metrics-port", str(options.metrics_port), "--metrics-host", options.metrics_host]
        if options.workers:
            master += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", "0",
                       "--expect-workers", str(options.workers), "--expect-workers-max-wait", "60"]
        if options.expect_workers:
            # The workers download the master's locustfile: this one carries the run's scenario and options.
            given = {"target": options.target, "api": options.api, "model": options.model,
                     "duration": options.duration, "mock_url": mock_url, "embedded_mock": embedded,
                     "record_url": options.record_url, "profiles": ",".join(options.profiles),
                     "mock_sets": ",".join(options.sets), "inconclusive": options.inconclusive}
            master[master.index(str(locustfile()))] = str(write_locustfile(tmp, scenario_ref, given))
            master += ["--master", "--master-bind-host", options.master_bind_host, "--master-bind-port",
                       str(options.master_bind_port), "--expect-workers", str(options.expect_workers),
                       "--expect-workers-max-wait", f"{options.expect_workers_max_wait:g}"]
        self.master_cmd = master
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, **options.extra_env}

    def _start(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, preexec_fn=own_session(), env=self.env)
        self.procs.append(proc)
        return proc

    def _wait_ready(self, master: subprocess.Popen[bytes], timeout: float = 60.0) -> dict[str, object] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and master.poll() is None:
            if self.ready.exists():
                return dict(json.loads(self.ready.read_text()))
            time.sleep(0.05)
        return None

    def run(self, mock: MockProcess | None) -> int:
        master = self._start(self.master_cmd)
        try:
            ready = self._wait_ready(master)
            if ready is None and master.poll() is None:
                self._fault("Locust did not say it was ready within 60 s")
                self._stop_all()
            if ready is not None and self.options.workers:
                for _ in range(self.options.workers):
                    self._start([*self.worker_cmd, "--master-host", "127.0.0.1",
                                 "--master-port", str(ready["master_port"])])
            if ready is not None and self.options.expect_workers:
                self._ask_for_workers(int(str(ready["master_port"])))
            if ready is not None and ready.get("metrics_url"):
                print(f"Prometheus metrics of the run: {ready['metrics_url']}", flush=True)
            if ready is not None and self.outdir is None:
                print(f"Locust web UI: {ready.get('web_url')}  (an SLA tab; the live SLA view is "
                      f"{ready.get('web_url')}/sla/view; Ctrl-C to stop)", flush=True)
            if ready is not None and self.options.ready_file:
                announced: dict[str, object] = {"pid": os.getpid()}
                for key in ("web_url", "metrics_url"):
                    if ready.get(key):
                        announced[key] = ready[key]
                _write_json(Path(self.options.ready_file), announced)
            return self._watch(master, mock)
        except (KeyboardInterrupt, _Stop) as stop:
            self._fault_interrupt(str(stop) if isinstance(stop, _Stop) else "Ctrl-C")
            return self._stop_all()
        finally:
            self._kill_leftovers()

    def _ask_for_workers(self, port: int) -> None:
        host = self.options.master_bind_host
        if host in ("*", "0.0.0.0", ""):
            host = socket.gethostname()
        print(f"waiting up to {self.options.expect_workers_max_wait:g} s for {self.options.expect_workers} Locust "
              f"worker{'s' if self.options.expect_workers > 1 else ''}: on each worker host run\n"
              f"  loadtest worker --master-host {host} --master-port {port}", flush=True)

    def _watch(self, master: subprocess.Popen[bytes], mock: MockProcess | None) -> int:
        """Until Locust ends: a child that dies under it is a fault of the suite, and stops the run."""
        started = time.monotonic()
        while True:
            code = master.poll()
            if code is not None:
                return code
            at = time.monotonic() - started
            if mock is not None and mock.proc is not None and mock.proc.poll() is not None:
                how = _how_it_ended(mock.proc.returncode)
                return self._stop_for_fault(f"the embedded mock providers died ({how}) at {at:.0f} s")
            if self.sut is not None and self.sut.proc is not None and self.sut.proc.poll() is not None:
                how = _how_it_ended(self.sut.proc.returncode)
                return self._stop_for_fault(f"the {self.sut.sut.name} under test died ({how}) at {at:.0f} s"
                                            + self.sut.tail(5))
            for n, worker in enumerate(self.procs[1:], 1):
                # Killed by a signal: nobody here sent one, so it is a fault. A worker that exits on its own
                # has either said goodbye to the master or stops sending heartbeats: the plugin sees both.
                if worker.poll() is not None and worker.returncode < 0:
                    how = _how_it_ended(worker.returncode)
                    return self._stop_for_fault(f"Locust worker {n} of {len(self.procs) - 1} (pid {worker.pid}) "
                                                f"was {how} at {at:.0f} s")
            time.sleep(0.2)

    def _stop_for_fault(self, why: str) -> int:
        print(f"loadtest: {why}; stopping the run", file=sys.stderr, flush=True)
        self._fault(why)
        return self._stop_all()

    def _fault(self, text: str) -> None:
        faults = json.loads(self.faults.read_text()) if self.faults.exists() else []
        faults.append(text)
        self.faults.write_text(json.dumps(faults))

    def _fault_interrupt(self, how: str) -> None:
        print(f"\nloadtest: interrupted ({how}); stopping the run and gating what was measured", file=sys.stderr,
              flush=True)

    def _stop_all(self) -> int:
        """SIGINT to Locust (it stops its users, gates and writes the report), then wait; harder if need be."""
        master = self.procs[0]
        for proc in self.procs:
            _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and master.poll() is None:
            try:
                time.sleep(0.2)
            except (KeyboardInterrupt, _Stop):
                break   # a second Ctrl-C: stop now
        if master.poll() is None:
            _signal_group(master, signal.SIGKILL)
        return master.wait()

    def _kill_leftovers(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
                _signal_group(proc, signal.SIGCONT)    # a stopped (SIGSTOP) process acts on SIGTERM once woken
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    _signal_group(proc, signal.SIGKILL)
                    proc.wait(5)


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"ended with exit code {returncode}"


def _write_json(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
