"""Prometheus metrics of the load generator (`--metrics-port`): the run, watched live from Grafana.

Served by the master (or the only process) over HTTP in Prometheus's text format. Nothing is counted
on the request path: every scrape reads the run's own state, the same state the gate judges, so a
dashboard and the verdict cannot disagree on what was measured:

- requests, failures and dropped starts per (target, name, stage[, status]), from the run's exact
  recorder (`loadtest.recorder`); in distributed mode it holds what the workers have reported so far
  (every ~3 s, as Locust's own statistics do);
- `loadtest_request_duration_seconds`, a Prometheus histogram whose buckets are read from the recorder's
  HDR histogram: a bucket counts the requests certainly at or below its bound, so it is exact but for
  the one HDR bucket (at most 0.1 % wide) that straddles the bound;
- the exact percentiles as the gate computes them, for the whole run and for each stage;
- each threshold's live value, limit and verdict, from `gate.judge(live=True)` (the live SLA view's);
- users, the current stage, the run's clock; the generator's own health (`loadtest.health`): CPU, the
  event loop's lag, how late scheduled starts went out, and whether it is too strained to measure.

Units follow Prometheus's conventions: seconds, ratios, `_total` for counters. A threshold's value and
limit are in the unit named by its `unit` label (latencies converted to seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from gevent.pywsgi import WSGIServer
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..health import HealthReport, assess
from ..recorder import Selection

if TYPE_CHECKING:
    from .run import SuiteRun, TestRun

# Bucket bounds in seconds: dense around the SLA's 500-600 ms, then out to a 30 s client timeout.
DURATION_BUCKETS_S = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0,
                      1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
# Schedule lateness is kept in whole milliseconds (loadtest.health), so these bounds are exact.
SCHEDULE_LAG_BUCKETS_MS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
QUANTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
VERDICTS = ("pass", "fail", "inconclusive", "insufficient")
RUN_VERDICTS = ("pass", "fail", "invalid")
HEALTH_CACHE_S = 2.0      # assess() sorts every sample so far: not on every scrape
UNITS = {"ms": "seconds", "req/s": "requests_per_second", "requests": "requests", "": "ratio"}


def _quantile_label(p: float) -> str:
    return f"{p / 100:g}"


def _le(bound: float) -> str:
    return f"{bound:g}"


class RunCollector(Collector):
    """Reads the suite's current run at every scrape (see the module's docstring)."""

    def __init__(self, suite: SuiteRun) -> None:
        self.suite = suite
        self._health: tuple[float, int, HealthReport | None] = (0.0, -1, None)

    def collect(self) -> Iterator[Metric]:
        suite = self.suite
        target = suite.target
        info = GaugeMetricFamily("loadtest_run_info", "The scenario and target of this load generator (always 1)",
                                 labels=["scenario", "target", "api", "model", "load_model"])
        info.add_metric([suite.scenario.name, target.name, target.api, target.model, suite.scenario.load.KIND], 1)
        yield info
        run = suite.current
        runs = GaugeMetricFamily("loadtest_run_number", "Test runs started by this process (the web UI can start "
                                                        "several; counters restart with each)")
        runs.add_metric([], suite.runs)
        yield runs
        if run is None:
            return
        yield from self._clock(run)
        yield from self._requests(run)
        yield from self._thresholds(run)
        yield from self._health_metrics(run)

    # -- the run's clock, users, stage ---------------------------------------------------------------

    def _clock(self, run: TestRun) -> Iterator[Metric]:
        suite = self.suite
        load = suite.scenario.load
        elapsed = run.schedule_elapsed_s()
        running = run.stopped_perf is None
        yield _gauge("loadtest_run_elapsed_seconds", "Seconds on the scenario's clock", elapsed)
        yield _gauge("loadtest_run_planned_seconds", "The scenario's planned length", suite.scenario.duration_s)
        yield _gauge("loadtest_run_running", "1 while the run is going, 0 once it stopped", 1.0 if running else 0.0)
        users = float(suite.runner.user_count or 0)
        yield _gauge("loadtest_users", "Locust users now (open model: VUs, busy or waiting for a start)", users)
        arrivals = getattr(run.driver, "arrivals", None)
        if arrivals is not None and not arrivals.finished:    # open model, in the process that hands out starts
            yield _gauge("loadtest_vus_busy", "Open model: VUs with a request in flight now", users - arrivals.idle)
            peak = 0.0 if arrivals.min_idle is None else users - arrivals.min_idle
            yield _gauge("loadtest_vus_busy_peak", "Open model: the most VUs in flight at once so far (each start goes "
                                                   "to the VU idle last, so also the VUs ever used)", peak)
        current = load.stage_at(elapsed) if running else None
        stage = GaugeMetricFamily("loadtest_stage", "1 for the stage the run is in, 0 for the others",
                                  labels=["stage"])
        index = 0
        for i, (name, _a, _b) in enumerate(load.windows(), 1):
            stage.add_metric([name], 1.0 if name == current else 0.0)
            if name == current:
                index = i
        yield stage
        yield _gauge("loadtest_stage_index", "The current stage's number (1 = first; 0 = before, after or stopped)",
                     float(index))
        verdict = GaugeMetricFamily("loadtest_verdict", "The run's verdict, live until it is gated (1 for the "
                                                        "current one)", labels=["verdict", "final"])
        status: str = run.summary.verdict if run.summary is not None else run.live_verdict().status
        final = "true" if run.summary is not None else "false"
        for v in RUN_VERDICTS:
            verdict.add_metric([v, final], 1.0 if v == status else 0.0)
        yield verdict

    # -- what the recorder holds ----------------------------------------------------------------------

    def _requests(self, run: TestRun) -> Iterator[Metric]:
        recorder = run.recorder
        keys = ["target", "name", "stage"]
        requests = CounterMetricFamily("loadtest_requests", "Completed generations (successful or not), by status",
                                       labels=[*keys, "status"])
        failures = CounterMetricFamily("loadtest_request_failures", "Failed generations, by status",
                                       labels=[*keys, "status"])
        dropped = CounterMetricFamily("loadtest_dropped_starts", "Scheduled starts that found every VU busy "
                                                                 "(open model)", labels=keys)
        duration = HistogramMetricFamily("loadtest_request_duration_seconds",
                                         "Latency of each generation (open model: from its scheduled start), from "
                                         "the exact recorder", labels=keys)
        for key in recorder.keys():
            labels = list(key)
            f = dict(zip(keys, key))
            every = recorder.select(f)
            ok_only = recorder.select({**f, "expected_response": "true"})
            for status, n in sorted(every.status_codes.items()):
                if status == "dropped":
                    continue
                requests.add_metric([*labels, status], n)
                failed = n - ok_only.status_codes.get(status, 0)
                if failed:
                    failures.add_metric([*labels, status], failed)
            dropped.add_metric(labels, every.dropped)
            if every.requests:
                duration.add_metric(labels, _buckets(every), sum_value=every.mean_ms * every.requests / 1000.0)
        yield requests
        yield failures
        yield dropped
        yield duration
        yield from self._percentiles(run)

    def _percentiles(self, run: TestRun) -> Iterator[Metric]:
        exact = GaugeMetricFamily("loadtest_latency_percentile_seconds",
                                  "Exact latency percentiles of the whole run so far, as the gate computes them",
                                  labels=["quantile"])
        staged = GaugeMetricFamily("loadtest_stage_latency_percentile_seconds",
                                   "Exact latency percentiles of each stage so far", labels=["stage", "quantile"])
        success = GaugeMetricFamily("loadtest_success_ratio", "Successful share of scheduled starts so far "
                                                              "(dropped starts count as failures)", labels=["stage"])
        now = run.schedule_elapsed_s() if run.stopped_perf is None else None
        whole = run.recorder.select(now_s=now)
        for p in QUANTILES:
            if whole.requests:
                exact.add_metric([_quantile_label(p)], whole.percentile(p) / 1000.0)
        if not math.isnan(whole.success_rate):
            success.add_metric([""], whole.success_rate)
        for name in run.recorder.tags()["stage"]:
            sel = run.recorder.select({"stage": name}, now_s=now)
            if sel.requests:
                for p in QUANTILES:
                    staged.add_metric([name, _quantile_label(p)], sel.percentile(p) / 1000.0)
            if not math.isnan(sel.success_rate):
                success.add_metric([name], sel.success_rate)
        yield exact
        yield staged
        yield success

    # -- the gate, live -------------------------------------------------------------------------------

    def _thresholds(self, run: TestRun) -> Iterator[Metric]:
        labels = ["threshold", "key", "metric", "stage", "unit"]
        observed = GaugeMetricFamily("loadtest_threshold_observed", "Each threshold's value now, as the gate "
                                                                    "judges it live", labels=labels)
        limit = GaugeMetricFamily("loadtest_threshold_limit", "Each threshold's limit", labels=labels)
        verdict = GaugeMetricFamily("loadtest_threshold_verdict", "Each threshold's live verdict (1 for the "
                                                                  "current one)", labels=["threshold", "verdict"])
        samples = GaugeMetricFamily("loadtest_threshold_samples", "Samples each threshold is judged on",
                                    labels=["threshold"])
        for r in run.live_verdict().results:
            t = r.threshold
            unit = UNITS.get(t.unit, t.unit)
            scale = 1000.0 if t.unit == "ms" else 1.0
            row = [t.label(), t.key, t.metric, dict(t.filters).get("stage", ""), unit]
            if r.observed is not None and not math.isnan(r.observed):
                observed.add_metric(row, r.observed / scale)
            limit.add_metric(row, t.value / scale)
            for v in VERDICTS:
                verdict.add_metric([t.label(), v], 1.0 if r.verdict == v else 0.0)
            samples.add_metric([t.label()], r.samples)
        yield observed
        yield limit
        yield verdict
        yield samples

    # -- the generator's own health -------------------------------------------------------------------

    def _health_metrics(self, run: TestRun) -> Iterator[Metric]:
        s = run.samples
        if s.cpu:
            yield _gauge("loadtest_generator_cpu_percent", "The latest sample of a Locust process's CPU, percent of "
                                                           "one core (distributed: the latest any worker sent)",
                         s.cpu[-1])
        if s.machine_cpu:
            yield _gauge("loadtest_generator_machine_cpu_percent", "The latest sample of the machine's CPU, percent",
                         s.machine_cpu[-1])
        if s.lag_ms:
            yield _gauge("loadtest_generator_loop_lag_seconds", "How late the latest 0.25 s sleep of the event loop "
                                                                "woke", s.lag_ms[-1] / 1000.0)
        if s.schedule_lag:
            lag = HistogramMetricFamily("loadtest_generator_schedule_lag_seconds",
                                        "How late each scheduled start went out (open model; whole milliseconds)")
            counts = s.schedule_lag
            buckets = [(_le(ms / 1000.0), float(sum(v for k, v in counts.items() if k <= ms)))
                       for ms in SCHEDULE_LAG_BUCKETS_MS]
            total = sum(counts.values())
            buckets.append(("+Inf", float(total)))
            lag.add_metric([], buckets, sum_value=sum(k * v for k, v in counts.items()) / 1000.0)
            yield lag
        health = self._assessed(run)
        if health is not None:
            yield _gauge("loadtest_generator_saturated", "1 when the generator was too strained for the run to prove "
                                                         "anything (the gate's own test), 0 when healthy",
                         1.0 if health.saturated else 0.0)

    def _assessed(self, run: TestRun) -> HealthReport | None:
        at, number, report = self._health
        if report is None or number != run.number or time.monotonic() - at > HEALTH_CACHE_S:
            if not (run.samples.cpu or run.samples.lag_ms):
                return None
            report = assess(run.samples)
            self._health = (time.monotonic(), run.number, report)
        return report


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _buckets(sel: Selection) -> list[tuple[str, float]]:
    out = [(_le(b), float(sel.count_within(b * 1000.0))) for b in DURATION_BUCKETS_S]
    out.append(("+Inf", float(sel.requests)))
    return out


class MetricsServer:
    """The /metrics endpoint in this process's gevent loop (a scrape never blocks the users)."""

    def __init__(self, suite: SuiteRun, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RunCollector(suite))
        self.registry.register(ProcessCollector(registry=None))   # process_resident_memory_bytes, ...
        self.server = WSGIServer((host, port), make_wsgi_app(self.registry), log=None, error_log=None)

    def start(self) -> MetricsServer:
        self.server.start()
        return self

    @property
    def url(self) -> str:
        host, port = self.server.address[:2]
        return f"http://{host}:{port}/metrics"

    def stop(self) -> None:
        self.server.stop(timeout=1)


def serve(environment: Any, suite: SuiteRun, host: str, port: int) -> MetricsServer:
    metrics = MetricsServer(suite, host, port).start()
    environment.loadtest_metrics = metrics
    return metrics
