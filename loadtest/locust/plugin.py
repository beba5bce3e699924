"""The SLA plugin: wires a scenario into Locust's events, and gates the run at its end.

Every Locust process keeps a Recorder fed by the `request` event; workers send
drained deltas to the master with their stats reports (`report_to_master`) and one
last time when they stop. The master (or the only process) runs the scenario's
admin actions, evaluates abort_on_fail thresholds while the run goes, serves the
live SLA view in the web UI, and at the end evaluates the gate, writes the reports
and sets Locust's process exit code: 0 SLA held, 1 SLA breached, 2 the run proves
nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from mockprovider.profile import load_profiles

from ..gate import RunFacts, evaluate, evaluate_live, stall_explains
from ..recorder import Recorder
from ..report import build_summary, console, write_all
from ..scenario import Scenario, ScenarioError, load_scenario
from .arrival import ArrivalExecutor, ArrivalSchedule
from .health import STALL_LIMIT_MS, GeneratorHealth, assess
from .shape import OPEN_SPAWN_S

log = logging.getLogger("loadtest")
ROOT = Path(__file__).resolve().parent.parent.parent
FINAL_MESSAGE = "imagegen_final"
LIVE_CACHE_S = 1.0


class SuiteRun:
    """What one Locust process knows about the scenario run."""

    def __init__(self, environment: Any, scenario: Scenario, mock_url: str | None, report_dir: Path,
                 embedded_mock: bool) -> None:
        self.environment = environment
        self.scenario = scenario
        self.mock_url = mock_url.rstrip("/") if mock_url else None
        base = environment.host or scenario.target.base_url or (
            scenario.target.url_on(self.mock_url) if self.mock_url else None)
        if not base:
            raise ScenarioError(f"target {scenario.target.name!r} lives on the mock: give --mock-url "
                                "(or --host with the API's base URL)")
        self.target = replace(scenario.target, base_url=base.rstrip("/"))
        self.report_dir = report_dir
        self.embedded_mock = embedded_mock
        self.recorder = Recorder(stages=scenario.load.windows())
        self.health = GeneratorHealth()
        self.arrivals: ArrivalExecutor | None = None
        self.facts = RunFacts()
        self.actions_done: list[dict[str, Any]] = []
        self.started_at: datetime | None = None
        self.started_perf: float | None = None
        self.stopped_perf: float | None = None
        self.summary: dict[str, Any] | None = None
        self.workers = 0
        self.finals_expected: set[str] = set()
        self.finals_received: set[str] = set()
        self.greenlets: list[gevent.Greenlet] = []
        self.finalizer: gevent.Greenlet | None = None   # web UI: the greenlet gating the run that stopped
        self._live: tuple[float, list[Any]] = (0.0, [])

    # --- roles -----------------------------------------------------------------
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

    def elapsed_s(self) -> float:
        if not self.started_perf:
            return 0.0
        return (self.stopped_perf or time.perf_counter()) - self.started_perf

    # --- live view -----------------------------------------------------------------
    def live_results(self) -> list[Any]:
        at, cached = self._live
        if time.monotonic() - at < LIVE_CACHE_S:
            return cached
        results = evaluate_live(self.scenario.thresholds, self.recorder, self.elapsed_s(), self.scenario.min_samples)
        self._live = (time.monotonic(), results)
        return results

    def live_rows(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.live_results():
            t = r.threshold
            verdict = {"pass": "PASS", "fail": "FAIL"}.get(r.verdict, f"COLLECTING ({r.samples}/"
                                                                       f"{self.scenario.min_samples})")
            if self.summary is not None:
                verdict = {"pass": "PASS", "fail": "FAIL"}.get(r.verdict, "INSUFFICIENT")
            observed = "—" if r.observed is None else f"{r.observed:,.4g} {r.unit}".strip()
            rows.append({"threshold": t.label(), "observed": observed, "limit": f"{t.op} {t.value:g} {r.unit}".strip(),
                         "verdict": verdict, "samples": r.samples})
        return rows


def _add_options(parser: Any) -> None:
    g = parser   # options on an argument group cannot say include_in_web_ui
    g.add_argument("--scenario", default="flash_sale", help="scenario name (scenarios/NAME.toml) or a TOML path",
                   include_in_web_ui=False)
    g.add_argument("--target", default="", help="override the scenario's target: a mock provider or a base URL",
                   include_in_web_ui=False)
    g.add_argument("--api", default="", help="wire format of a URL target: relay|openai|vertex|midjourney",
                   include_in_web_ui=False)
    g.add_argument("--model", default="", help="model to ask the target for", include_in_web_ui=False)
    g.add_argument("--duration", default="", help="stretch the scenario's stages to this total (e.g. 90s, 4h)",
                   include_in_web_ui=False)
    g.add_argument("--mock-url", default="", help="base URL of the simulated providers (for mock targets and "
                                                  "admin actions)", include_in_web_ui=False)
    g.add_argument("--embedded-mock", action="store_true", default=False,
                   help="the mock at --mock-url was started with the scenario's own [mock] options",
                   include_in_web_ui=False)
    g.add_argument("--mock-sets", default="", help="settings the mock was started with, comma separated "
                                                   "(recorded in the report)", include_in_web_ui=False)
    g.add_argument("--profiles", default="", help="extra mock profile files, comma separated",
                   include_in_web_ui=False)
    g.add_argument("--report-dir", default="", help="where reports go (default reports/<scenario>-<time>)",
                   include_in_web_ui=False)


def install() -> None:
    """Register the plugin's listeners on Locust's global events (call once, from the locustfile)."""
    events.init_command_line_parser.add_listener(_add_options)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.spawning_complete.add_listener(_on_spawning_complete)
    events.request.add_listener(_on_request)
    events.report_to_master.add_listener(_on_report_to_master)
    events.worker_report.add_listener(_on_worker_report)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)


_RUN: SuiteRun | None = None
# Locust warns of any spawn rate over 100 users/s; a flash sale's surge asks for one on purpose.
_FAST_SPAWN_WARNING = "Your selected spawn rate is very high"


class _IntendedSpawnRate(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_FAST_SPAWN_WARNING)


def current() -> SuiteRun | None:
    return _RUN


def _on_init(environment: Any, **_: Any) -> None:
    global _RUN
    opts = environment.parsed_options
    if opts is None:
        return
    profiles = [p for p in opts.profiles.split(",") if p]
    try:
        scenario = load_scenario(opts.scenario, target=opts.target or None, duration=opts.duration or None,
                                 api=opts.api or None, model=opts.model or None, profiles=profiles)
        if opts.mock_sets:
            scenario = scenario.with_mock_sets(opts.mock_sets.split(","))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        report_dir = Path(opts.report_dir) if opts.report_dir else ROOT / "reports" / f"{scenario.name}-{stamp}"
        run = SuiteRun(environment, scenario, opts.mock_url or None, report_dir, opts.embedded_mock)
    except (ScenarioError, ValueError) as exc:
        sys.stderr.write(f"loadtest: {exc}\n")
        sys.exit(2)
    environment.imagegen = run
    _RUN = run
    logging.getLogger("locust.runners").addFilter(_IntendedSpawnRate())
    if not environment.host:
        environment.host = run.target.base_url
    for cls in environment.user_classes:
        cls.host = run.target.base_url
    if run.is_master:
        run.runner.register_message(FINAL_MESSAGE, _on_final_message)
    if environment.web_ui is not None:
        from .webui import install_sla_view
        install_sla_view(environment.web_ui, run)


def _on_test_start(environment: Any, **_: Any) -> None:
    run = _RUN
    if run is None:
        return
    run.summary = None
    run.started_at = datetime.now(UTC)
    run.started_perf = time.perf_counter()
    run.stopped_perf = None
    if run.is_master or run.scenario.load.model == "closed":
        run.recorder.start()   # open model: a process starts its clock with its arrival schedule
    run.health.start()
    if run.is_master:
        run.finals_expected = {c.id for c in run.runner.clients.all}
        run.workers = len(run.finals_expected)
        run.finals_received = set()
    if not run.is_worker:
        run.greenlets = [gevent.spawn(_watch_users, run), gevent.spawn(_run_actions, run),
                         gevent.spawn(_watch_aborts, run)]
    log.info("scenario %s: target %s (%s, model %s) at %s; %s model, %.0f s", run.scenario.name,
             run.target.name, run.target.api, run.target.model, run.target.base_url, run.scenario.load.model,
             run.scenario.duration_s)
    fast = [s for s in run.scenario.load.stages if s.spawn_rate > 100]
    if fast and not run.is_worker:
        log.info("stage%s %s change%s the user count at up to %.0f/s, as the scenario asks (Locust's warning about "
                 "spawn rates over 100/s is left out)", "s" if len(fast) > 1 else "",
                 ", ".join(s.name for s in fast), "" if len(fast) > 1 else "s", max(s.spawn_rate for s in fast))


def _on_spawning_complete(user_count: int, **_: Any) -> None:
    run = _RUN
    if run is None or run.is_master or run.scenario.load.model != "open" or run.arrivals is not None:
        return
    load = run.scenario.load
    share = max(1, getattr(run.runner, "target_user_count", load.max_vus) or load.max_vus) / load.max_vus
    run.arrivals = ArrivalExecutor(ArrivalSchedule(load.stages, load.start_rate), share=share,
                                   on_drop=_dropped)
    run.recorder.start()
    run.arrivals.start()
    log.info("arrival clock started: %.0f%% of the scheduled rate on this process, %d VUs", share * 100, user_count)


def _dropped(due: float) -> None:
    run = _RUN
    if run is not None:
        run.recorder.record_dropped(name=f"{run.target.api} {run.target.model}", target=run.target.name)


def _on_request(request_type: str, name: str, response_time: float, response_length: int,
                exception: BaseException | None, context: dict[str, Any] | None = None, **kw: Any) -> None:
    run = _RUN
    if run is None or request_type == "BATCH":   # a batch's wall time is in Locust's own table
        return
    context = context or {}
    status = context.get("status")
    if status is None:   # a request from a plain Locust client in a team's own locustfile
        response = kw.get("response")
        code = getattr(response, "status_code", None)
        status = code if code else ("error" if exception else 200)
    run.recorder.record(name=name, target=str(context.get("target", run.target.name)), latency_ms=response_time,
                        ok=exception is None, status=status, cost_usd=float(context.get("cost_usd", 0.0)),
                        attempts=int(context.get("attempts", 1)), failover=bool(context.get("failover", False)))


def _drain(run: SuiteRun) -> dict[str, Any]:
    if run.arrivals is not None:
        lags, run.arrivals.lags_ms = run.arrivals.lags_ms, []
        run.health.schedule_lag_ms.extend(lags)
    return {"recorder": run.recorder.drain(), "health": run.health.drain()}


def _on_report_to_master(client_id: str, data: dict[str, Any]) -> None:
    run = _RUN
    if run is not None:
        data["imagegen"] = _drain(run)


def _merge(run: SuiteRun, payload: dict[str, Any] | None) -> None:
    if payload:
        run.recorder.merge(payload["recorder"])
        run.health.merge(payload["health"])


def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    run = _RUN
    if run is not None:
        _merge(run, data.get("imagegen"))


def _on_final_message(environment: Any, msg: Any, **_: Any) -> None:
    run = _RUN
    if run is not None:
        _merge(run, msg.data)
        run.finals_received.add(msg.node_id)


def _on_test_stop(environment: Any, **_: Any) -> None:
    run = _RUN
    if run is None or run.started_perf is None:
        return
    run.stopped_perf = time.perf_counter()
    for g in run.greenlets:
        g.kill(block=False)
    run.greenlets = []
    if run.arrivals is not None:
        run.arrivals.stop()
    run.health.stop()
    if run.is_worker:
        run.recorder.stop()
        run.arrivals = None
        run.runner.send_message(FINAL_MESSAGE, _drain(run))
        return
    if not run.is_master:
        run.recorder.stop()
    run.arrivals = None
    if not run.headless:       # web UI: the run can start again; gate each one when it stops
        run.finalizer = gevent.spawn(finalize, run)


def _on_quitting(environment: Any, **_: Any) -> None:
    run = _RUN
    if run is None or run.is_worker or run.started_perf is None:
        return
    summary = finalize(run)
    environment.process_exit_code = summary["exit_code"]


# --- greenlets on the master (or the only process) ---------------------------------------------


def _watch_users(run: SuiteRun) -> None:
    # A progress line now and then, so a long headless run (DURATION=4h) shows it is alive.
    every = 10 if run.scenario.duration_s <= 300 else 60
    tick = 0
    while True:
        run.recorder.set_users(run.runner.user_count)
        gevent.sleep(1.0)
        tick += 1
        if tick % every == 0:
            log.info("%s", progress_line(run))


def progress_line(run: SuiteRun) -> str:
    elapsed = run.elapsed_s()
    stage = next((name for name, a, b in run.scenario.load.windows() if a <= elapsed < b), "end")
    sel = run.recorder.select(now_s=elapsed)
    scheduled = sel.requests + sel.dropped
    failed = f"{(scheduled - sel.ok) / scheduled:.2%}" if scheduled else "—"
    p99 = f"{sel.percentile(99):,.0f} ms" if sel.requests else "—"
    return (f"progress {elapsed:,.0f}/{run.scenario.duration_s:,.0f} s, stage {stage}: {run.runner.user_count} users, "
            f"{run.environment.stats.total.current_rps:,.0f} req/s now, {sel.requests:,} requests, {failed} failed, "
            f"P99 so far {p99}")


def _run_actions(run: SuiteRun) -> None:
    if not run.scenario.actions:
        return
    if run.mock_url is None:
        log.warning("the scenario's admin actions are skipped: no --mock-url to send them to")
        return
    offset = OPEN_SPAWN_S if run.scenario.load.model == "open" else 0.0
    for action in sorted(run.scenario.actions, key=lambda a: a.at_s):
        gevent.sleep(max(0.0, run.started_perf + offset + action.at_s - time.perf_counter()))
        url = f"{run.mock_url}/admin/providers/{action.provider}"
        req = urllib.request.Request(url, data=json.dumps(dict(action.settings)).encode(), method="PATCH",
                                     headers={"Content-Type": "application/json"})
        token = os.environ.get("MOCK_ADMIN_TOKEN")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                outcome = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            outcome = f"failed: {exc}"
        done = {"at_s": round(run.elapsed_s(), 1), "planned_at_s": action.at_s, "provider": action.provider,
                "settings": dict(action.settings), "outcome": outcome}
        run.actions_done.append(done)
        log.info("admin action at %.1f s: %s %s -> %s", done["at_s"], action.provider, dict(action.settings),
                 outcome)


def _watch_aborts(run: SuiteRun) -> None:
    watched = [t for t in run.scenario.thresholds if t.abort_on_fail]
    if not watched:
        return
    while True:
        gevent.sleep(1.0)
        elapsed = run.elapsed_s()
        due = [t for t in watched if elapsed >= t.delay_abort_eval_s]
        if not due:
            continue
        for r in evaluate_live(due, run.recorder, elapsed, run.scenario.min_samples):
            if r.verdict == "fail":
                run.facts.aborted_by = r.threshold.label()
                log.error("aborting the run at %.0f s: %s (%s)", elapsed, r.threshold.label(), r.detail)
                if run.headless:
                    run.runner.quit()
                else:
                    run.runner.stop()
                return


# --- the end -----------------------------------------------------------------------------------


def _wait_for_finals(run: SuiteRun, timeout_s: float = 8.0) -> None:
    deadline = time.monotonic() + timeout_s
    while run.finals_expected - run.finals_received and time.monotonic() < deadline:
        gevent.sleep(0.2)
    missing = run.finals_expected - run.finals_received
    if missing:
        run.facts.notes.append(f"{len(missing)} worker(s) sent no final report; their last seconds are missing")


def _expected_latency(run: SuiteRun) -> dict[str, Any] | None:
    if not (run.embedded_mock and run.target.on_mock):
        return None
    profiles = load_profiles(run.scenario.mock.profiles)
    lat = profiles[run.target.name].latency
    return {"distribution": "lognormal", "p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms, "sigma": lat.sigma,
            "min_ms": lat.min_ms, "max_ms": lat.max_ms, "latency_scale": run.scenario.mock.latency_scale}


def _batches(run: SuiteRun) -> dict[str, Any] | None:
    size = run.scenario.client.batch_size
    if size <= 1:
        return None
    entry = run.environment.stats.entries.get((f"batch of {size}", "BATCH"))
    if entry is None or entry.num_requests == 0:
        return None
    return {"size": size, "batches": entry.num_requests, "mean_wall_ms": entry.avg_response_time,
            "mean_per_image_ms": entry.avg_response_time / size, "concurrency": run.scenario.client.batch_concurrency}


def _stalls_behind_failures(run: SuiteRun, verdict: Any) -> str:
    """Words for the generator stalls inside the window of a failed latency threshold, if any."""
    t0 = run.recorder.start_time
    if t0 is None:
        return ""
    windows = {name: (t0 + a, t0 + b) for name, a, b in run.scenario.load.windows()}
    whole = (t0, t0 + run.elapsed_s())
    found = []
    for r in verdict.results:
        if r.verdict != "fail" or r.threshold.metric != "latency":
            continue
        stage = dict(r.threshold.filters).get("stage")
        start, end = windows.get(stage, whole) if stage else whole
        stall = run.health.worst_stall_ms(start, end)
        if stall > STALL_LIMIT_MS and stall_explains(r, stall):
            where = f"during stage {stage}" if stage else "during the run"
            found.append(f"the load generator stalled for {stall:.0f} ms {where}, enough to explain "
                         f"{r.threshold.label()} failing")
    return "; ".join(found)


def finalize(run: SuiteRun) -> dict[str, Any]:
    """Gate the run and write its reports (once)."""
    if run.summary is not None:
        return run.summary
    if run.is_master:
        _wait_for_finals(run)
    stopped = run.stopped_perf or time.perf_counter()
    saturated, detail, figures = assess(run.health)
    run.facts.generator_saturated = saturated
    run.facts.saturation_detail = detail
    run.facts.generator_worst_stall_ms = run.health.worst_stall_ms()
    everything = run.recorder.select()
    connection_errors = everything.status_codes.get("connection_error", 0)
    if everything.requests and everything.ok == 0 and connection_errors >= 0.9 * everything.requests:
        run.facts.target_reachable = False
        run.facts.notes.append(f"{connection_errors} of {everything.requests} requests could not connect to "
                               f"{run.target.base_url}")
    elif everything.requests + everything.dropped == 0:
        run.facts.notes.append("no request completed during the run")
    verdict = evaluate(run.scenario.thresholds, run.recorder, run.facts, run.scenario.min_samples)
    if verdict.status == "fail" and not saturated:
        stalled = _stalls_behind_failures(run, verdict)
        if stalled:
            run.facts.generator_saturated = True
            run.facts.saturation_detail = stalled
            verdict = evaluate(run.scenario.thresholds, run.recorder, run.facts, run.scenario.min_samples)
    opts = run.environment.parsed_options
    files: dict[str, str] = {"recording": "recording.json"}
    if opts is not None and opts.html_file:
        files["locust_html"] = os.path.relpath(opts.html_file, run.report_dir)
    if opts is not None and opts.csv_prefix:
        files["locust_csv"] = os.path.relpath(opts.csv_prefix, run.report_dir) + "_stats.csv"
    load = run.scenario.load
    scenario_info = {"name": run.scenario.name, "description": run.scenario.description,
                     "source": os.path.relpath(run.scenario.source, ROOT) if run.scenario.source else "",
                     "load_model": load.model, "duration_s": run.scenario.duration_s,
                     "stages": [{"name": n, "start_s": a, "end_s": b} for n, a, b in load.windows()],
                     "min_samples": run.scenario.min_samples}
    target_info = {"name": run.target.name, "api": run.target.api, "base_url": run.target.base_url,
                   "model": run.target.model}
    workers = run.workers
    extra = {"actions": run.actions_done, "batches": _batches(run), "generator_figures": figures,
             "locust": {"workers": workers, "peak_users": load.peak_users},
             "mock": {"url": run.mock_url, "embedded": run.embedded_mock, "seed": run.scenario.mock.seed,
                      "latency_scale": run.scenario.mock.latency_scale, "set": list(run.scenario.mock.sets)}
             if run.mock_url else None}
    if run.arrivals is not None or load.model == "open":
        extra["open_model"] = {"max_vus": load.max_vus,
                               "scheduled_starts": round(ArrivalSchedule(load.stages, load.start_rate).total)}
    summary = build_summary(scenario=scenario_info, target=target_info, recorder=run.recorder, verdict=verdict,
                            facts=run.facts, started_at=run.started_at or datetime.now(UTC),
                            duration_s=stopped - (run.started_perf or stopped),
                            expected_latency=_expected_latency(run), extra=extra)
    summary.setdefault("files", {}).update(files)
    run.report_dir.mkdir(parents=True, exist_ok=True)
    write_all(summary, run.report_dir)
    (run.report_dir / "recording.json").write_text(json.dumps(run.recorder.export()))
    try:
        from ..report.html import write_html
        html = write_html(summary, run.report_dir)
        summary["files"]["html"] = html.name
        write_all(summary, run.report_dir)   # again, so summary.json and summary.md link the page
    except Exception:   # a broken plot must not lose the verdict
        log.exception("the HTML report could not be written")
    run.summary = summary
    print(console.render(summary, color=sys.stdout.isatty()), flush=True)
    return summary

