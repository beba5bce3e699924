"""A real Prometheus (Debian's `prometheus`) scrapes the load generator and the mock during a real run.

The generator is started with `--metrics-port 0` and announces its endpoint in the ready-file; the test
hands that address to Prometheus through a file_sd target file (Prometheus watches it), exactly as a
team would point service discovery at a run. Afterwards the test reads what Prometheus stored through
its HTTP API and holds it against the run's own summary.json, and runs every query of the example
Grafana dashboard against the same data.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mockserver import MockServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "examples" / "grafana" / "loadtest-run.json"
P99 = "latency p(99) < 600 ms"
MAX_VUS = 40

SCENARIO = f"""
name = "watched"
description = "A short open-model run for Prometheus to watch"
[target]
name = "relay"
[load]
model = "open"
max_vus = {MAX_VUS}
start_rate = 0
stages = [
  {{ name = "ramp", duration = "5s", rate = 150 }},
  {{ name = "hold", duration = "15s", rate = 150 }},
]
[thresholds]
latency = ["p(99)<600"]
success = ["rate>=0.99"]
[gate]
min_samples = 100
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = probe()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        try:
            with urllib.request.urlopen(f"{self.base}/api/v1/query?{urllib.parse.urlencode(params)}",
                                        timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:     # Prometheus says what is wrong with a query in its body
            raise AssertionError(f"{expr}: {exc.read().decode(errors='replace')}") from None
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def scalar(self, expr: str, at: float | None = None) -> float:
        result = self.query(expr, at)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, Path, MockServer]]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Debian's prometheus package is not installed (make test installs it: apt-get install prometheus)")
    with MockServer("--seed", "0") as mock:
        targets = tmp_path / "sd" / "loadtest.json"
        targets.parent.mkdir()
        targets.write_text("[]")
        mock_host = urllib.parse.urlsplit(mock.url).netloc
        config = tmp_path / "prometheus.yml"
        # JSON is YAML: no YAML writer needed for the generated config.
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {"job_name": "mockprovider", "metrics_path": "/metrics",
                 "static_configs": [{"targets": [mock_host]}]},
                {"job_name": "loadtest", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]},
            ]}))
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for("Prometheus to be ready", lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status
                     == 200, 60)
            yield Prometheus(base), targets, mock
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()


def last_sample(prom: Prometheus, expr: str) -> tuple[float, float]:
    """(timestamp, value) of the newest stored sample of a one-series selector."""
    result = prom.query(f"{expr}[10m]")
    assert len(result) == 1, (expr, result)
    ts, value = result[0]["values"][-1]
    return float(ts), float(value)


def test_prometheus_scrapes_a_live_run_and_the_dashboard_queries_answer(
        tmp_path: Path, prometheus: tuple[Prometheus, Path, MockServer]) -> None:
    prom, targets, mock = prometheus
    scenario = tmp_path / "watched.toml"
    scenario.write_text(SCENARIO)
    ready = tmp_path / "ready.json"
    report = tmp_path / "report"
    with (tmp_path / "loadtest.log").open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "loadtest", "run", str(scenario), "--mock-url", mock.url,
                                "--metrics-port", "0", "--ready-file", str(ready), "--report-dir", str(report)],
                               cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            announced = wait_for("the metrics URL in the ready-file",
                                 lambda: ready.exists() and json.loads(ready.read_text()).get("metrics_url"), 90)
            generator = urllib.parse.urlsplit(announced).netloc
            tmp = targets.with_name("loadtest.json.tmp")
            tmp.write_text(json.dumps([{"targets": [generator], "labels": {"run": "watched"}}]))
            tmp.replace(targets)
            run.wait(180)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    log = (tmp_path / "loadtest.log").read_text()
    assert f"Prometheus metrics of the run: {announced}" in log
    summary = json.loads((report / "summary.json").read_text())
    time.sleep(2.5)     # one more scrape of the mock, which is still up, after the last request it answered

    # The generator was scraped, and its series carry the labels the file_sd target gave it.
    assert prom.scalar('max_over_time(up{job="loadtest", run="watched"}[10m])') == 1.0

    # The request counter against the summary. The generator's last scrape came up to a scrape interval
    # before its end, so Prometheus may lack the requests completed after it: the summary's timeline says
    # how many those are (every second from the one the last scrape fell in). Never more than the summary.
    last_at, last_elapsed = last_sample(prom, 'loadtest_run_elapsed_seconds{job="loadtest"}')
    scraped = prom.scalar('sum(max_over_time(loadtest_requests_total{job="loadtest"}[10m]))')
    after = sum(row["requests"] for row in summary["timeline"] if row["t_s"] >= int(last_elapsed) - 1)
    assert summary["requests"] - after <= scraped <= summary["requests"], (scraped, summary["requests"], after)
    assert scraped > 0.5 * summary["requests"]      # the run was watched for most of it, not only its start

    # The threshold's series: its limit exactly, its verdict as the gate said it live, its value plausible.
    labels = f'threshold="{P99}"'
    assert prom.scalar(f'max_over_time(loadtest_threshold_limit{{{labels}}}[10m])') == 0.6
    final = next(t for t in summary["thresholds"] if t["label"] == P99)
    assert final["verdict"] == "pass", final
    _, passing = last_sample(prom, f'loadtest_threshold_verdict{{{labels}, verdict="pass"}}')
    assert passing == 1.0
    _, observed = last_sample(prom, f'loadtest_threshold_observed{{{labels}}}')
    assert 0 < observed < 0.6
    # The exported histogram agrees with the gate's count of requests within 600 ms (all of them passed).
    within = prom.scalar('sum(max_over_time(loadtest_request_duration_seconds_bucket{le="0.6"}[10m]))')
    total = prom.scalar('sum(max_over_time(loadtest_request_duration_seconds_count[10m]))')
    # The live P99 was under 600 ms at that scrape, so at least 99 % of the requests sat in buckets at or
    # below 0.6 s (a retried generation can take longer; it counts, as it did for the gate).
    assert total == scraped and 0.99 * total <= within <= total, (within, total, scraped)

    # The VUs in flight: some, never more than the scenario has, and the peak at least what was busy.
    busy = prom.scalar('max_over_time(loadtest_vus_busy{job="loadtest"}[10m])')
    peak = prom.scalar('max_over_time(loadtest_vus_busy_peak{job="loadtest"}[10m])')
    assert 1 <= busy <= peak <= MAX_VUS, (busy, peak)

    # The stage series followed the run: Prometheus saw both stages as current at some point.
    for stage in ("ramp", "hold"):
        assert prom.scalar(f'max_over_time(loadtest_stage{{stage="{stage}"}}[10m])') == 1.0, stage

    # The mock's own counter: every HTTP attempt the generator made was answered and counted; at most
    # the requests in flight when the run stopped (no more than max_vus) were answered but not recorded.
    answered = prom.scalar('sum(max_over_time(mock_requests_total{provider="relay"}[10m]))')
    assert summary["attempts"] <= answered <= summary["attempts"] + MAX_VUS, (answered, summary["attempts"])

    # Every query of the example dashboard parses and has data, at a moment inside the run.
    inside = last_at - 3
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    empty = [e for e in exprs if not prom.query(e, at=inside)]
    assert not empty, empty
    p99_limit = prom.scalar(next(e for e in exprs if "loadtest_threshold_limit" in e), at=inside)
    assert p99_limit == 0.6
