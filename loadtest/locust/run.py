"""Run state, on Locust's Environment: the suite for this process, and one test run at a time.

`SuiteRun` lives as `environment.loadtest` for the process's life: the scenario, the target and
where reports go. Each test start (a headless run, or every press of START in the web UI) makes
a fresh `TestRun`: its own recorder, health samples, driver and report folder, so a second run
starts from zero and never overwrites the first one's report.

Every Locust process keeps a Recorder fed by the `request` event; workers send drained deltas
to the master with their stats reports and one last time when they stop. The master (or the
only process) runs the scenario's admin actions, watches abort_on_fail thresholds, watches for
lost workers, and at the end gathers the run's facts for the gate.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import gevent
import gevent.event
from locust.runners import (
    HEARTBEAT_LIVENESS,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    MasterRunner,
    WorkerRunner,
)

from mockprovider.profile import load_profiles
from mockprovider.record_client import Summary as RecordSummary
from mockprovider.settings import parse_set_option
from mockprovider.toxics import TOXICS

from ..attribution import ProviderSide
from ..context import RequestContext
from ..gate import (
    End,
    GeneratorAbort,
    RunFacts,
    Verdict,
    abort_trigger,
    generator_abort_trigger,
    judge,
)
from ..gateway_figures import GatewayFacts
from ..health import HealthReport, HealthSamples, assess
from ..loadmodel import LoadModel, OpenLoad
from ..provider_side import RecordSession, describe
from ..recorder import Recorder
from ..report import FILES, ReportWriteError, write_all, write_text
from ..request_samples import RequestSamples
from ..scenario import Scenario, Target
from . import stall, stats_window
from .drivers import LoadDriver, driver_for
from .native import LocustReports, why, write_failures_text
from .sampler import HealthSampler

if TYPE_CHECKING:
    from ..summary import ActionDoc, BatchDoc, GatewayDoc, Summary

# loadtest.summary (summary.json's pydantic models) is imported where a document is made, mostly at the run's
# end: this process runs for hours and need not hold pydantic's ~8 MB all that time (BENCHMARKS.md).

log = logging.getLogger("loadtest")
FINAL_MESSAGE = "loadtest_final"
LIVE_CACHE_S = 1.0
# The live gate (the SLA view, abort_on_fail) reads the provider side's record at most this often, with
# this timeout, and after a failed read waits longer before it tries again (judging the client side alone
# meanwhile, as a run without a record does).
LIVE_RECORD_S = 2.0
LIVE_RECORD_TIMEOUT_S = 2.0
LIVE_RECORD_RETRY_S = 10.0
LIVE_HEALTH_S = 2.0          # assess() sorts every sample so far: not on every judgement


class TestRun:
    """One test, from its start to its verdict."""

    def __init__(self, suite: SuiteRun, number: int) -> None:
        scenario = suite.scenario
        self.suite = suite
        self.number = number
        # A gateway run keeps the latest requests one by one too: its overhead is measured request by request
        # where the gateway passes the suite's correlation id on (loadtest/gateway_figures.py).
        self.recorder = Recorder(stages=scenario.load.windows(),
                                 samples=RequestSamples() if scenario.sut is not None else None)
        self.samples = HealthSamples()
        self.sampler = HealthSampler(self.samples)
        self.driver: LoadDriver = driver_for(scenario.load)
        self.started_at = datetime.now(UTC)
        self.started_perf = time.perf_counter()
        self.stopped_perf: float | None = None
        self.reached_end = False          # the shape ran every stage to its end
        self.aborted_by: str | None = None
        self.aborted_at_s: float | None = None
        self.generator_abort: GeneratorAbort | None = None   # abort_on_fail stopped it on the generator's breach
        self.actions_done: list[ActionDoc] = []
        self.workers_expected: set[str] = set()
        self.workers_lost: set[str] = set()
        self.finals_received: set[str] = set()
        self.greenlets: list[gevent.Greenlet] = []
        self.summary: Summary | None = None
        self.report_failures: list[tuple[str, str]] = []   # report files that could not be written, and why
        self.report_dir: Path | None = None
        self.fault: str | None = None          # the fault of the suite that stopped this run early
        self.finalizer: gevent.Greenlet | None = None   # web UI: the greenlet gating the run that stopped
        self.finishing: gevent.event.Event | None = None   # set once the gating below has ended
        self._live: tuple[float, Verdict | None] = (0.0, None)
        self.record: RecordSession | None = None    # the provider side's record of this run, when there is one
        # [sut]: the record of the mock behind the gateway, windowed per stage for the gateway's stage figures
        self.gateway_record: RecordSession | None = None
        self._record_read: tuple[Any, Any] | None = None
        self._live_side: ProviderSide | None = None
        self._live_side_at = -math.inf
        self._live_side_reading = False
        self._live_health: tuple[float, HealthReport | None] = (-math.inf, None)
        self._gateway_read: tuple[GatewayFacts | None] | None = None   # read once: (None,) if it could not be

    def elapsed_s(self) -> float:
        return (self.stopped_perf or time.perf_counter()) - self.started_perf

    def schedule_elapsed_s(self) -> float:
        """Seconds on the scenario's own clock (the open model's starts once its VUs are up)."""
        return max(0.0, self.elapsed_s() - self.suite.scenario.load.schedule_offset_s)

    # -- the gate, live ---------------------------------------------------------------------

    def live_verdict(self) -> Verdict:
        at, cached = self._live
        if cached is not None and time.monotonic() - at < LIVE_CACHE_S:
            return cached
        s = self.suite.scenario
        side = self.live_provider_side()
        health = self.live_health() if side is not None else None
        verdict = judge(s.thresholds, self.recorder, health,
                        RunFacts(planned_s=s.duration_s, aborted_by=self.aborted_by,
                                 generator_abort=self.generator_abort, open_pool=open_pool(s.load),
                                 direct=self.suite.direct),
                        min_samples=s.min_samples, live=True, now_s=self.schedule_elapsed_s(),
                        confidence=s.gate.confidence, provider=side)
        self._live = (time.monotonic(), verdict)
        return verdict

    def live_provider_side(self) -> ProviderSide | None:
        """The provider side's record as it stands (None: no record, or it cannot be read now), read at most
        every LIVE_RECORD_S by whichever caller asks first; a read under way hands the others the last one."""
        record = self.record
        if record is None or record.error is not None:
            return None
        wait = LIVE_RECORD_S if record.live_error is None else LIVE_RECORD_RETRY_S
        if self._live_side_reading or time.monotonic() - self._live_side_at < wait:
            return self._live_side
        self._live_side_reading = True
        failing = record.live_error
        try:
            summary = record.peek(LIVE_RECORD_TIMEOUT_S)
        finally:
            self._live_side_reading = False
            self._live_side_at = time.monotonic()
        if summary is None:
            if record.live_error != failing:
                log.warning("%s; judging the client side alone until it can", record.live_error)
            self._live_side = None
        else:
            self._live_side = self.suite.provider_side(summary)
        return self._live_side

    def live_health(self) -> HealthReport:
        at, cached = self._live_health
        if cached is None or time.monotonic() - at > LIVE_HEALTH_S:
            cached = assess(self.samples, machine_wide=self.suite.is_master)
            self._live_health = (time.monotonic(), cached)
        return cached

    def stage_now(self) -> str:
        return self.suite.scenario.load.stage_at(self.schedule_elapsed_s()) or "end"

    # -- data between processes --------------------------------------------------------------

    def drain(self) -> dict[str, Any]:
        return {"recorder": self.recorder.drain(), "health": self.samples.drain()}

    def merge(self, payload: dict[str, Any] | None) -> None:
        if payload:
            self.recorder.merge(payload["recorder"])
            self.samples.merge(payload["health"])

    # -- the end ------------------------------------------------------------------------------

    def facts(self) -> RunFacts:
        s = self.suite.scenario
        missing = self.workers_expected - self.finals_received - self.workers_lost
        lost = sorted(self.workers_lost | missing)
        failed = tuple(f"{a.provider} {a.settings} at {a.at_s:g} s: {a.outcome}" for a in self.actions_done if not a.ok)
        harness = self.suite.harness_faults()
        if self.report_failures:
            harness += (write_failures_text(self.report_dir or Path("."), self.report_failures),)
        if self.aborted_by or self.generator_abort:
            end = End.ABORT
        elif self.reached_end:
            end = End.SCHEDULE
        elif self.fault or self.suite.harness_faults():
            end = End.FAULT       # a fault of the suite stopped the run (the mock died, a worker was lost, ...)
        else:
            end = End.INTERRUPTED if self.suite.headless else End.STOPPED
        return RunFacts(planned_s=s.duration_s, elapsed_s=self.schedule_elapsed_s(), end=end,
                        aborted_by=self.aborted_by, generator_abort=self.generator_abort, harness_errors=harness,
                        workers_expected=len(self.workers_expected), workers_lost=tuple(lost),
                        actions_failed=failed, errors=self.suite.top_errors(), key_pool=self.suite.key_pool,
                        open_pool=open_pool(s.load), direct=self.suite.direct)


def open_pool(load: LoadModel) -> tuple[int, float] | None:
    """An open model's VUs and its schedule's highest rate, for judging whose its dropped starts are; None
    for a closed model, a replayed trace or bursty arrivals (whose short-term rate the stages do not give)."""
    if not isinstance(load, OpenLoad) or load.trace is not None or (load.arrivals == "gamma" and load.burstiness < 1):
        return None
    rates = [st.rate for st in load.stages] + ([load.start_rate] if load.start_rate is not None else [])
    return (load.max_vus, max(rates)) if rates and max(rates) > 0 else None


class SuiteRun:
    """What one Locust process knows about the scenario; `environment.loadtest`."""

    def __init__(self, environment: Any, scenario: Scenario, *, mock_url: str | None, embedded_mock: bool,
                 report_dir: Path | None, report_root: Path, result_file: Path | None, key_pool: int | None,
                 faults_file: Path | None = None, locust_reports: LocustReports | None = None,
                 record_url: str | None = None) -> None:
        self.environment = environment
        self.scenario = scenario
        self.mock_url = mock_url.rstrip("/") if mock_url else None
        base = environment.host or scenario.target.base_url or (
            scenario.target.url_on(self.mock_url) if self.mock_url else None)
        self.target: Target = replace(scenario.target, base_url=base.rstrip("/") if base else None)
        self.embedded_mock = embedded_mock
        self.report_dir = report_dir
        self.report_root = report_root
        self.result_file = result_file
        self.key_pool = key_pool
        self.faults_file = faults_file
        self.locust_reports = locust_reports
        # Where the provider side's record of the run is read: named (a mock behind a gateway), or the
        # mock the target lives on.
        self.record_url = (record_url or scenario.target.record_url or
                           (self.mock_url if scenario.target.on_mock and not environment.host else None))
        self.current: TestRun | None = None
        self.runs = 0
        self.thin_history = stats_window.HistoryThinner()   # Locust's chart points, evenly thinned
        self.quitting = False     # Locust's shutdown has begun: a SIGINT now must not interrupt it
        self.direct = self._nothing_between(environment.host)

    def _nothing_between(self, host: str | None) -> bool:
        """Whether nothing lies between the client and the provider side but this machine's loopback: the
        target is the mock itself at a loopback address, with no [sut] gateway and no connection toxic
        (which slows or breaks an answer's bytes after the record has timed it) set by the scenario."""
        s = self.scenario
        if host or not s.target.on_mock or s.sut is not None or not self.mock_url:
            return False
        name = urlsplit(self.mock_url).hostname or ""
        if not (name in ("localhost", "::1") or name.startswith("127.")):
            return False
        connection = {t.name for t in TOXICS if t.connection}

        def on(key: str, value: Any) -> bool:
            if isinstance(value, Mapping):    # a PATCH's nested form, {"toxics": {"bandwidth": 0.5}}
                return any(on(k, v) for k, v in value.items())
            try:
                return key in connection and float(value) != 0.0
            except (TypeError, ValueError):
                return key in connection

        sets = [parse_set_option(text) for text in s.mock.sets]   # validated when the scenario was loaded
        return not any(on(key, value) for _, key, value in sets) and \
            not any(on(k, v) for a in s.actions for k, v in a.settings.items())

    def provider_side(self, record: RecordSummary) -> ProviderSide:
        """What of the record the gate compares: the target's own provider when it is one of the mock's,
        every provider behind a gateway."""
        return ProviderSide(record, (self.target.name,) if self.target.on_mock else ())

    # -- roles --------------------------------------------------------------------------------
    @property
    def runner(self) -> Any:
        return self.environment.runner

    @property
    def is_master(self) -> bool:
        return isinstance(self.runner, MasterRunner)

    @property
    def is_worker(self) -> bool:
        return isinstance(self.runner, WorkerRunner)

    @property
    def headless(self) -> bool:
        opts = self.environment.parsed_options
        return bool(opts and opts.headless)

    def report_dir_for(self, run: TestRun) -> Path:
        if self.report_dir is not None and run.number == 1:
            return self.report_dir
        stamp = run.started_at.strftime("%Y%m%d-%H%M%S")
        base = self.report_dir.parent if self.report_dir is not None else self.report_root
        path = base / f"{self.scenario.name}-{stamp}"
        n = 2
        while path.exists():
            path = base / f"{self.scenario.name}-{stamp}-{n}"
            n += 1
        return path

    def harness_faults(self) -> tuple[str, ...]:
        """What the process that started Locust saw go wrong around it (e.g. the embedded mock died)."""
        if self.faults_file is None or not self.faults_file.exists():
            return ()
        try:
            return tuple(str(f) for f in json.loads(self.faults_file.read_text()))
        except (OSError, ValueError) as exc:
            return (f"the runner's fault report could not be read: {exc}",)

    def top_errors(self, n: int = 3) -> tuple[tuple[str, int], ...]:
        errors = sorted(self.environment.stats.errors.values(), key=lambda e: -e.occurrences)[:n]
        return tuple((_error_message(e.error), int(e.occurrences)) for e in errors)

    # -- events (wired in plugin.py) -----------------------------------------------------------

    def on_test_start(self, **_: Any) -> None:
        self.runs += 1
        run = self.current = TestRun(self, self.runs)
        if not run.driver.clock_starts_on_spawn:   # the open model's clock starts once its VUs are up
            run.recorder.start()
        run.sampler.start()
        if self.is_master:
            run.workers_expected = {c.id for c in self.runner.clients.all}
        if not self.is_worker:
            run.greenlets = [gevent.spawn(self._watch, run), gevent.spawn(self._run_actions, run)]
            windows = self.scenario.load.windows()
            if self.record_url:
                run.record = RecordSession(self.record_url, os.environ.get("MOCK_ADMIN_TOKEN"))
                run.record.start(windows[0][0] if windows else "run")
            if self._gateway_behind() and (run.record is None or run.record.url != self.mock_url):
                run.gateway_record = RecordSession(self.mock_url or "", os.environ.get("MOCK_ADMIN_TOKEN"))
                run.gateway_record.start(windows[0][0] if windows else "run")
                if run.gateway_record.error:
                    log.error("%s", run.gateway_record.error)
            if run.record is not None or run.gateway_record is not None:
                run.greenlets.append(gevent.spawn(self._mark_windows, run, windows[1:]))
        if not self.is_master and (stalling := stall.spawn()) is not None:   # a test of the suite's own
            run.greenlets.append(stalling)
        log.info("scenario %s: target %s (%s, model %s) at %s; %s model, %.0f s", self.scenario.name,
                 self.target.name, self.target.api, self.target.model, self.target.base_url, self.scenario.load.KIND,
                 self.scenario.duration_s)

    def on_spawning_complete(self, user_count: int, **_: Any) -> None:
        run = self.current
        if run is None or self.is_master:
            return
        target = getattr(self.runner, "target_user_count", 0) or 0
        if run.driver.on_spawned(user_count, target, self._dropped, run.samples):
            run.recorder.start()
            log.info("arrival clock started: %d VUs on this process", user_count)

    def _dropped(self, due: float) -> None:
        run = self.current
        if run is not None:
            run.recorder.record_dropped(name=self.target.request_name, target=self.target.name)

    def on_request(self, request_type: str, name: str, response_time: float, response_length: int,
                   exception: BaseException | None, context: Any = None, **kw: Any) -> None:
        run = self.current
        if run is None or request_type == "BATCH":   # a batch's wall time is in Locust's own table
            return
        if isinstance(context, RequestContext):
            run.recorder.record(name=name, target=context.target, latency_ms=response_time, ok=exception is None,
                                status=context.status, cost_usd=context.cost_usd, attempts=context.attempts,
                                failover=context.failover, images=context.images if exception is None else 0,
                                first_image_ms=context.first_image_ms, request_id=context.request_id)
            return
        # A request from a plain Locust client in a team's own locustfile.
        code = getattr(kw.get("response"), "status_code", None)
        status: int | str = code if code else ("error" if exception else 200)
        run.recorder.record(name=name, target=self.target.name, latency_ms=response_time, ok=exception is None,
                            status=status)

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        if self.current is not None:
            data["loadtest"] = self.current.drain()

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        if self.current is not None:
            self.current.merge(data.get("loadtest"))

    def on_final_message(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.current is not None:
            self.current.merge(msg.data)
            self.current.finals_received.add(msg.node_id)

    def on_test_stop(self, **_: Any) -> None:
        run = self.current
        if run is None or run.stopped_perf is not None:
            return
        run.stopped_perf = time.perf_counter()
        for g in run.greenlets:
            g.kill(block=False)
        run.greenlets = []
        run.driver.stop()
        run.sampler.stop()
        if self.is_worker:
            run.recorder.stop()
            self.runner.send_message(FINAL_MESSAGE, run.drain())
            return
        if not self.is_master:
            run.recorder.stop()
        if not self.headless:       # web UI: the run can start again; gate each one when it stops
            run.finalizer = gevent.spawn(self.finish, run)

    def on_quitting(self, environment: Any, **_: Any) -> None:
        self.quitting = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            # Shutting down already: another stop signal (a tree kill after the runner's SIGINT) would
            # only start a second shutdown inside this one. The runner's SIGKILL stays the backstop.
            signal.signal(sig, signal.SIG_IGN)
        run = self.current
        if run is None or self.is_worker:
            return
        if self.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            # SIGTERM to Locust itself (a tree kill, docker stop with Locust as PID 1): its shutdown fires
            # `quitting` before it stops the users. Stop them first, and the workers, whose last
            # measurements then reach this process before the gate reads them.
            self.runner.stop()
        if run.stopped_perf is None:
            self.on_test_stop()
        summary = self.finish(run)
        environment.process_exit_code = summary.exit_code

    def shape_ended(self) -> None:
        if self.current is not None:
            self.current.reached_end = True

    # -- greenlets on the master (or the only process) ----------------------------------------

    def _watch(self, run: TestRun) -> None:
        """Once a second: users for the timeline, abort_on_fail, lost workers; now and then a progress line."""
        every = 10 if self.scenario.duration_s <= 300 else 60
        watched = any(t.abort_on_fail for t in self.scenario.thresholds)
        tick = 0
        while True:
            if run.recorder.start_time is not None:
                run.recorder.set_users(self.runner.user_count)
            if self.is_master and (why := self._worker_lost(run)) is not None:
                self.stop_for_fault(run, why)
                return
            if watched and run.aborted_by is None and run.generator_abort is None:
                results = run.live_verdict().results
                elapsed = run.schedule_elapsed_s()
                trigger = abort_trigger(results, elapsed)
                generators = generator_abort_trigger(results, elapsed) if trigger is None else None
                if trigger is not None:
                    run.aborted_by = trigger.threshold.label()
                    run.aborted_at_s = round(elapsed, 3)
                    log.error("aborting the run at %.0f s: %s (%s)", elapsed, trigger.threshold.label(),
                              trigger.detail)
                elif generators is not None and generators.attribution is not None:
                    # The client side breached, the provider side held, the generator was strained: what the
                    # end would judge INVALID. Stop as that, naming the generator, not as the target's FAIL.
                    run.generator_abort = GeneratorAbort(generators.threshold.label(), round(elapsed, 3),
                                                         generators.attribution.text, generators.attribution.kind)
                    run.aborted_at_s = round(elapsed, 3)
                    log.error("stopping the run at %.0f s: %s — %s, not the target's; the run proves nothing",
                              elapsed, generators.attribution.text, run.generator_abort.whose)
                if run.aborted_by is not None or run.generator_abort is not None:
                    if self.headless:
                        self.runner.quit()
                    else:
                        self.runner.stop()
                    return
            gevent.sleep(1.0)
            tick += 1
            if tick % every == 0:
                log.info("%s", self.progress_line(run))
            if tick % stats_window.FORGET_EVERY_S == 0:
                stats_window.forget_old_seconds(self.environment.stats)
                self.thin_history(self.environment.stats.history)

    def _worker_lost(self, run: TestRun) -> str | None:
        """A worker that stopped sending heartbeats (Locust marks it missing after HEARTBEAT_LIVENESS + 1
        silent seconds) or left while the run was going (its process was stopped)."""
        if self.runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            return None    # stopping: workers leave one by one, as they should
        present = {c.id: c for c in self.runner.clients.all}
        for worker in sorted(run.workers_expected - run.workers_lost):
            client = present.get(worker)
            if client is None:
                why = f"Locust worker {worker} left the run at {run.schedule_elapsed_s():.0f} s"
            elif client.state == STATE_MISSING:
                why = (f"Locust worker {worker} was lost (no heartbeat for {HEARTBEAT_LIVENESS + 1} s) at "
                       f"{run.schedule_elapsed_s():.0f} s")
            else:
                continue
            run.workers_lost.add(worker)
            return why
        return None

    def stop_for_fault(self, run: TestRun, why: str) -> None:
        """A fault of the suite itself: the run can prove nothing now, so it ends here, and says why."""
        if run.fault is not None or run.stopped_perf is not None:
            return
        run.fault = why
        log.error("%s at %.0f s: stopping the run, which can prove nothing now", why, run.schedule_elapsed_s())
        if self.headless:
            self.runner.quit()
        else:
            self.runner.stop()

    def progress_line(self, run: TestRun) -> str:
        elapsed = run.schedule_elapsed_s()
        sel = run.recorder.select(now_s=elapsed)
        scheduled = sel.requests + sel.dropped
        failed = f"{(scheduled - sel.ok) / scheduled:.2%}" if scheduled else "—"
        p99 = f"{sel.percentile(99):,.0f} ms" if sel.requests else "—"
        return (f"progress {elapsed:,.0f}/{self.scenario.duration_s:,.0f} s, stage {run.stage_now()}: "
                f"{self.runner.user_count} users, {self.environment.stats.total.current_rps:,.0f} req/s now, "
                f"{sel.requests:,} requests, {failed} failed, P99 so far {p99}")

    def _mark_windows(self, run: TestRun, windows: list[tuple[str, float, float]]) -> None:
        """Open the record's window of each stage as it begins, on the schedule's clock."""
        offset = self.scenario.load.schedule_offset_s
        for name, start, _ in windows:
            gevent.sleep(max(0.0, run.started_perf + offset + start - time.perf_counter()))
            for session in (run.record, run.gateway_record):
                if session is not None:
                    session.mark(name)

    def _run_actions(self, run: TestRun) -> None:
        if not self.scenario.actions:
            return
        from ..summary import ActionDoc
        if self.mock_url is None:
            log.error("the scenario's admin actions cannot run: no --mock-url to send them to")
            for a in self.scenario.actions:
                run.actions_done.append(ActionDoc(at_s=0.0, planned_at_s=a.at_s, provider=a.provider,
                                                  settings=dict(a.settings), outcome="no mock URL", ok=False))
            return
        offset = self.scenario.load.schedule_offset_s
        for action in sorted(self.scenario.actions, key=lambda a: a.at_s):
            gevent.sleep(max(0.0, run.started_perf + offset + action.at_s - time.perf_counter()))
            outcome, ok = _patch(f"{self.mock_url}/admin/providers/{action.provider}", dict(action.settings))
            done = ActionDoc(at_s=round(run.schedule_elapsed_s(), 1), planned_at_s=action.at_s,
                             provider=action.provider, settings=dict(action.settings), outcome=outcome, ok=ok)
            run.actions_done.append(done)
            (log.info if ok else log.error)("admin action at %.1f s: %s %s -> %s", done.at_s, action.provider,
                                            dict(action.settings), outcome)
            if not ok:
                # The run would go on without what the scenario is about (an outage that never began).
                self.stop_for_fault(run, f"the scheduled action {action.provider} {dict(action.settings)} failed")
                return

    # -- the verdict ------------------------------------------------------------------------------

    def _wait_for_finals(self, run: TestRun, timeout_s: float = 8.0) -> None:
        deadline = time.monotonic() + timeout_s
        while run.workers_expected - run.finals_received - run.workers_lost and time.monotonic() < deadline:
            gevent.sleep(0.2)

    def finish(self, run: TestRun) -> Summary:
        """Gate the run and write its reports (once, however many callers: Locust can shut down twice over)."""
        if run.summary is not None:
            return run.summary
        if run.finishing is not None:
            run.finishing.wait()
            assert run.summary is not None
            return run.summary
        run.finishing = gevent.event.Event()
        try:
            return self._finish(run)
        finally:
            run.finishing.set()

    def _finish(self, run: TestRun) -> Summary:
        if self.is_master:
            self._wait_for_finals(run)
        health = assess(run.samples, machine_wide=self.is_master)
        report_dir = run.report_dir = self.report_dir_for(run)
        if self.locust_reports is not None:
            run.report_failures += self.locust_reports.finish()
        summary = self._summary(run, health, report_dir)
        step = ""
        try:
            step = "summary.json, junit.xml, summary.md"
            write_all(summary, report_dir)
            step = "recording.json"
            write_text(report_dir / "recording.json", json.dumps(run.recorder.export()))
            summary.files["recording"] = "recording.json"
            step = "report.html"
            self._write_html(summary, report_dir)
            step = "summary.json, junit.xml, summary.md"
            write_all(summary, report_dir)   # again, so summary.json and summary.md list every file
        except (ReportWriteError, OSError) as exc:
            run.report_failures.append((step, why(exc)))
            written = summary.files
            summary = self._summary(run, health, report_dir)   # the verdict now says the report is missing
            summary.files = {**written, **summary.files}
        if run.report_failures:
            log.error("%s", write_failures_text(report_dir, run.report_failures))
            _replace_stale_report(summary, report_dir)
        run.summary = summary
        if self.result_file is not None:
            try:
                self.result_file.write_text(summary.model_dump_json(by_alias=True))
            except OSError as exc:
                log.error("cannot hand the verdict to the runner (%s): %s", self.result_file, exc)
        if self.result_file is None:     # run by plain `locust -f`: nobody else prints it
            from ..report import console
            print(console.render(summary), console.verdict_line(summary, report=str(report_dir)), sep="",
                  flush=True)
        return summary

    def _write_html(self, summary: Summary, report_dir: Path) -> None:
        from ..report import write_html_apart
        try:
            summary.files["html"] = write_html_apart(summary, report_dir).name
        except OSError:
            raise            # a full or unwritable folder: the caller says so
        except Exception:   # a broken plot must not lose the verdict
            log.exception("the HTML report could not be written")

    def _provider_side(self, run: TestRun) -> tuple[Any, Any]:
        """(the record's summary or None, the match with the client); read once per run."""
        if run._record_read is None:
            run._record_read = run.record.read(run.recorder) if run.record is not None else (None, None)
            if run.record is not None and run.record.error:
                log.error("%s", run.record.error)
        return run._record_read

    def _summary(self, run: TestRun, health: HealthReport, report_dir: Path) -> Summary:
        from ..summary import RunDoc, build_summary, describe_load, describe_mock, describe_scenario, describe_target
        s = self.scenario
        facts = run.facts()
        record, matched = self._provider_side(run)
        side = self.provider_side(record) if record is not None else None
        gateway = self._gateway_facts(run)
        verdict = judge(s.thresholds, run.recorder, health, facts, min_samples=s.min_samples,
                        confidence=s.gate.confidence, provider=side, gateway=gateway)
        provider_doc = None
        if run.record is not None:
            provider_doc = describe(run.record.url, record, side, run.recorder, matched,
                                    {id(r): r.attribution for r in verdict.results if r.attribution is not None},
                                    verdict.results, run.record.error)
        opts = self.environment.parsed_options
        files: dict[str, str] = {}
        native = self.locust_reports
        html = native.html_file if native is not None and native.html_file else getattr(opts, "html_file", None)
        csv_prefix = native.csv_prefix if native is not None and native.csv_prefix else getattr(opts, "csv_prefix",
                                                                                                   None)
        if html:
            files["locust_html"] = os.path.relpath(html, report_dir)
        if csv_prefix:
            files["locust_csv"] = os.path.relpath(csv_prefix, report_dir) + "_stats.csv"
        summary = build_summary(
            scenario=describe_scenario(s), target=describe_target(self.target),
            recorder=run.recorder, verdict=verdict, health=health,
            run=RunDoc(end=facts.end.value, planned_s=facts.planned_s, elapsed_s=round(facts.elapsed_s, 3),
                       aborted_by=facts.aborted_by, aborted_at_s=run.aborted_at_s,
                       generator_abort=facts.generator_abort.label if facts.generator_abort else None,
                       workers=len(run.workers_expected),
                       workers_lost=list(facts.workers_lost)),
            load=describe_load(s), started_at=run.started_at, duration_s=run.elapsed_s(),
            mock=describe_mock(s, self.mock_url, self.embedded_mock), actions=run.actions_done,
            batches=self._batches(), expected_latency=self._expected_latency(), files=files,
            report_dir=str(report_dir), baseline=s.baseline, provider_side=provider_doc)
        summary.gateway = self._gateway(run, gateway)
        return summary

    def _gateway_facts(self, run: TestRun) -> GatewayFacts | None:
        """[sut] runs: the providers' record behind the gateway, read once at the end (None if it cannot be)."""
        s = self.scenario
        if not self._gateway_behind():
            return None
        assert self.mock_url is not None
        if run._gateway_read is not None:
            return run._gateway_read[0]
        from mockprovider.record_client import RecordError

        from ..gateway import read_facts
        ended_at = None
        if run.stopped_perf is not None:
            ended_at = run.started_at.timestamp() + (run.stopped_perf - run.started_perf)
            # The gateway still runs: watch for the calls it goes on making for requests nobody waits for.
            assert s.sut is not None
            left = s.sut.orphan_watch_s - (time.perf_counter() - run.stopped_perf)
            if left > 0:
                log.info("watching the providers for %.0f s for upstream calls the gateway still makes", left)
                gevent.sleep(left)
        try:
            facts: GatewayFacts | None = read_facts(
                self.mock_url, primary=s.target.name, primary_model=s.target.model,
                profiles=load_profiles(s.mock.profiles), ended_at=ended_at, asked_size=self._asked_size(),
                asked_format=self._asked_format(),
                token=os.environ.get("MOCK_ADMIN_TOKEN"))
        except RecordError as exc:
            log.error("the gateway's figures are missing: the mock's record could not be read: %s", exc)
            facts = None
        run._gateway_read = (facts,)
        return facts

    def _gateway_behind(self) -> bool:
        """A [sut] run: a gateway between Locust and this run's own mock."""
        return self.scenario.sut is not None and self.mock_url is not None and self.scenario.target.on_mock

    def _asked_format(self) -> str | None:
        """The format the suite's clients' images come in, where the API says one: OpenAI's output_format
        (PNG unless asked; the DALL-E models answer PNG)."""
        if self.target.api != "openai":
            return None
        return self.scenario.client.output_format or "png"

    def _asked_size(self) -> str | None:
        """The image size the suite's clients ask for, where the API takes one as width x height."""
        return self.scenario.client.size_text if self.target.api in ("openai", "relay") else None

    def _gateway(self, run: TestRun, facts: GatewayFacts | None) -> GatewayDoc | None:
        """[sut] runs: the gateway seen from both ends, from the facts the gate judged."""
        s = self.scenario
        if facts is None or s.sut is None:
            return None
        from ..gateway import describe_gateway
        return describe_gateway(facts, run.recorder, kind=s.sut.kind, url=self.target.base_url or "",
                                asked_size=self._asked_size())

    def _expected_latency(self) -> dict[str, float | str] | None:
        if not (self.embedded_mock and self.target.on_mock):
            return None
        lat = load_profiles(self.scenario.mock.profiles)[self.target.name].latency
        return {"distribution": "lognormal", "p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms, "sigma": lat.sigma,
                "min_ms": lat.min_ms, "max_ms": lat.max_ms, "latency_scale": self.scenario.mock.latency_scale}

    def _batches(self) -> BatchDoc | None:
        from ..summary import BatchDoc
        client = self.scenario.client
        if client.batch_size <= 1:
            return None
        entry = self.environment.stats.entries.get((f"batch of {client.batch_size}", "BATCH"))
        if entry is None or entry.num_requests == 0:
            return None
        native: dict[str, Any] = {}
        if client.batch_mode == "native":
            from ..clients import CLIENTS
            plan = CLIENTS[self.target.api].plan(self.target, client.batch_size)
            native = {"requests_per_batch": len(plan), "images_per_request": [share.images for share in plan]}
        return BatchDoc(size=client.batch_size, batches=entry.num_requests, mean_wall_ms=entry.avg_response_time,
                        mean_per_image_ms=entry.avg_response_time / client.batch_size,
                        concurrency=client.batch_concurrency,
                        mode="native" if client.batch_mode == "native" else "semaphore", **native)


def _replace_stale_report(summary: Summary, report_dir: Path) -> None:
    """After a failed write: no summary.json, junit.xml or summary.md from before may go on saying the
    run passed. Remove them (which frees their space), try once to write the invalid verdict, and list
    only the files that are there."""
    def remove_old() -> None:
        for name in FILES.values():
            try:
                (report_dir / name).unlink(missing_ok=True)
            except OSError:
                pass     # a folder that takes no change at all: the error already says so
    remove_old()
    summary.files = {k: v for k, v in summary.files.items() if k in FILES or (report_dir / v).is_file()}
    try:
        write_all(summary, report_dir)
    except ReportWriteError:
        remove_old()
        summary.files = {k: v for k, v in summary.files.items() if k not in FILES}


def _patch(url: str, settings: dict[str, Any]) -> tuple[str, bool]:
    req = urllib.request.Request(url, data=json.dumps(settings).encode(), method="PATCH",
                                 headers={"Content-Type": "application/json"})
    token = os.environ.get("MOCK_ADMIN_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return f"HTTP {resp.status}", 200 <= resp.status < 300
    except urllib.error.HTTPError as exc:
        body = exc.read(500).decode("utf-8", "replace")
        return f"HTTP {exc.code}: {body}", False
    except (urllib.error.URLError, OSError) as exc:
        return f"failed: {exc}", False


def _error_message(error: object) -> str:
    # A local run keeps the exception; a master, its repr: "GenerationFailed('HTTP 400 ...')" -> "HTTP 400 ..."
    if isinstance(error, BaseException):
        return str(error)
    error = str(error)
    head, sep, rest = error.partition("(")
    if sep and rest.endswith(")") and head.isidentifier():
        rest = rest[:-1].strip("'\"")
        return rest
    return error
