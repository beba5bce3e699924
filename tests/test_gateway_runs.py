"""A gateway between Locust and the simulated providers ([sut]), run for real through `loadtest run`.

LiteLLM's real proxy (the `gateway` extra) and a small in-house gateway (tests/inhouse_gateway.py)
sit in front of the embedded mock; the summary's `gateway` section sets the client side (the
recorder) beside the provider side (the mock's record). No assertion depends on this machine's
speed: counts, relations between the two ends, and that every process the run started is gone.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.slow

HELPER = Path(__file__).with_name("inhouse_gateway.py")


def loadtest(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[int, str, dict]:
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", *args, "--report-dir", str(report)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    out = proc.stderr + proc.stdout
    path = report / "summary.json"
    return proc.returncode, out, json.loads(path.read_text()) if path.exists() else {}


def listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def gone(pid: int, wait_s: float = 5.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


# The thresholds on the time a request took: the client's whole latency, and the part of it the gateway added.
GATEWAY_TIME = {"latency", "gateway_overhead"}


def assert_only_the_gateways_latency_may_breach(code: int, out: str, summary: dict) -> None:
    """Shortened, a threshold may be undecided (exit 2). A breach (exit 1) is the gateway's own, and only its
    time may be behind it: LiteLLM's first requests, cold, can take a short first stage's P95 past its ceiling,
    and on a busy machine its own event loop can take the hold stage's overhead P99 past 400 ms (406 ms in one
    CI-like run). Its upstream calls, failovers and silent successes are asserted by each test itself."""
    assert summary["exit_code"] == code, out
    if code == 1:
        failed = [t for t in summary["thresholds"] if t["verdict"] == "fail"]
        assert failed and all(t["metric"] in GATEWAY_TIME for t in failed), out
    else:
        assert code in (0, 2), out


def test_litellm_flash_sale_measures_overhead_and_amplification(tmp_path: Path) -> None:
    pytest.importorskip("litellm", reason="the gateway extra: pip install -e '.[gateway]'")
    code, out, summary = loadtest(tmp_path, "gateway_flash_sale", "--duration", "16s")
    assert summary, out
    g = summary["gateway"]
    assert g["kind"] == "litellm" and g["primary"] == "dall-e-4"
    calls = g["upstream_calls_per_request"]
    # Every client request the gateway answered cost at least one upstream call.
    assert calls["client_requests"] == summary["requests"] > 0
    assert calls["mean"] >= 1.0 and calls["upstream_requests"] >= calls["client_requests"]
    for p in ("p50", "p90", "p99"):
        assert g["overhead_ms"][p] is not None and math.isfinite(g["overhead_ms"][p]), g["overhead_ms"]
    # The gateway's own work sits between the two ends: the client's median is above the provider's.
    assert g["overhead_ms"]["p50"] > 0, g["overhead_ms"]
    # LiteLLM passes the x- headers on (forward_client_headers_to_llm_api): overhead is told request by
    # request, each against the upstream call that answered it, and calls are counted per request.
    assert g["overhead_ms"]["method"] == "by_request" and g["overhead_ms"]["matched_share"] >= 0.9, g["overhead_ms"]
    assert g["overhead_ms"]["by_percentile"]["p50"] is not None and calls["max"] is not None and calls["max"] >= 1
    assert g["orphan_watch_s"] >= 4.5 and g["orphaned_after_give_up"] == 0
    assert g["failovers"] == 0 and g["served_by"] == {"dall-e-4": calls["upstream_requests"]}
    assert g["silent_success"] == 0
    assert g["upstream_cost_usd"] == pytest.approx(0.06 * g["upstream_images"])    # dall-e-4's price
    assert "Gateway       litellm at" in out and "overhead ms" in out
    assert not listening(g["url"]), "the LiteLLM proxy outlived the run"
    assert_only_the_gateways_latency_may_breach(code, out, summary)


def test_litellm_fails_over_when_the_primary_goes_down(tmp_path: Path) -> None:
    pytest.importorskip("litellm", reason="the gateway extra: pip install -e '.[gateway]'")
    code, out, summary = loadtest(tmp_path, "gateway_outage", "--duration", "24s")
    assert summary, out
    assert [a["ok"] for a in summary["actions"]] == [True, True], summary["actions"]
    g = summary["gateway"]
    # While dall-e-4 was down, the gateway bought images on another provider: imagen-4 on the mock's Vertex AI
    # (dall-e-4-flash only should Vertex fail too), and met the downed primary's 503s on the way.
    assert g["failovers"] > 0, g
    assert g["served_by"].get("imagen-4", 0) > 0, g["served_by"]
    assert g["served_by"]["imagen-4"] + g["served_by"].get("dall-e-4-flash", 0) == g["failovers"], g["served_by"]
    assert g["upstream_requests_by_provider"].get("imagen-4", 0) >= g["served_by"]["imagen-4"]
    assert g["upstream_calls_per_request"]["status_mix"].get("503", 0) > 0, g
    assert g["upstream_calls_per_request"]["mean"] > 1.0
    # LiteLLM passes the suite's x-request-id on to OpenAI (not to Vertex): the downed primary's retries are
    # counted request by request, more than one call for some request.
    assert (g["upstream_calls_per_request"]["max"] or 0) > 1, g["upstream_calls_per_request"]
    # Billed as each provider prices it: imagen-4's $0.08 an image against dall-e-4's $0.06 (one image each).
    prices = {"dall-e-4": 0.06, "imagen-4": 0.08, "dall-e-4-flash": 0.02}
    assert g["upstream_cost_usd"] == pytest.approx(sum(prices[m] * n for m, n in g["served_by"].items()), abs=0.01)
    # Per stage: the record's windows split the upstream calls, and the fallbacks fall in the outage.
    stages = {st["name"]: st for st in g["stages"]}
    assert list(stages) == ["before", "outage", "after"]
    assert sum(st["failovers"] for st in stages.values()) == g["failovers"]
    upstream = g["upstream_calls_per_request"]["upstream_requests"]
    assert sum(st["upstream_requests"] for st in stages.values()) == upstream
    outage = stages["outage"]
    assert outage["failovers"] > 0 and outage["status_mix"].get("503", 0) > 0
    assert outage["served_by"].get("imagen-4", 0) > 0, outage["served_by"]
    # The fallback served the size asked: the Vertex record keeps the pixels Imagen served (1:1 at 1K is
    # 1024x1024, what the clients asked), so drift is compared across providers, not left unknown.
    assert g["asked_size"] == "1024x1024" and g["capability_drift"] == 0 and outage["capability_drift"] == 0, g
    # The scenario's gateway thresholds were judged from both ends (their limits are loose: see the scenario).
    judged = {t["label"]: t for t in summary["thresholds"] if t["metric"] in (
        "upstream_calls_per_request", "silent_success", "gateway_overhead", "capability_drift")}
    assert len(judged) == 5 and all(t["observed"] is not None for t in judged.values()), judged
    calls = judged["upstream_calls_per_request avg < 3 calls"]
    assert calls["observed"] == pytest.approx(g["upstream_calls_per_request"]["mean"]) and calls["verdict"] == "pass"
    report = tmp_path / "report"
    assert "### Gateway: both ends" in (report / "summary.md").read_text()
    assert 'name="gateway.failovers"' in (report / "junit.xml").read_text()
    assert (report / "gateway_over_time.png").exists()
    assert not listening(g["url"]), "the LiteLLM proxy outlived the run"
    assert_only_the_gateways_latency_may_breach(code, out, summary)


INHOUSE = """
name = "inhouse"
[target]
name = "dall-e-4"
[mock]
seed = 7
latency_scale = 0.01
set = ["dall-e-4.limits=false"]
[client]
keys = 1
[load]
model = "closed"
think_time = ["0.1s", "0.2s"]
stages = [{{ name = "steady", duration = "8s", users = 4, spawn_rate = 4 }}]
[thresholds]
success = ["rate>=0.5"]
"silent_success" = ["count==0"]                      # breaks: every fifth success comes back empty
"upstream_calls_per_request" = ["avg<1.5", "max<=1"]  # one call each, ids passed on
"capability_drift" = ["count>0"]                     # every fourth request asked upstream for 512x512
"gateway_overhead" = ["p(50)<1000"]                   # a passthrough: far under, however loaded the box
[gate]
min_samples = 20
[sut]
kind = "command"
command = [{python}, {helper}, "--port", "{{port}}", "--upstream", "{{openai_base_url}}", "--pid-file", {pid},
           "--empty-every", "5", "--resize-every", "4", "--forward-id"]
health = "/healthz"
base_path = "/v1"
ready_timeout = "30s"
"""


def test_inhouse_gateway_silent_200s_count_as_failures_and_it_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "gateway.pid"
    scenario = tmp_path / "inhouse.toml"
    scenario.write_text(INHOUSE.format(python=json.dumps(sys.executable), helper=json.dumps(str(HELPER)),
                                       pid=json.dumps(str(pid_file))))
    code, out, summary = loadtest(tmp_path, str(scenario))
    assert summary, out
    g = summary["gateway"]
    calls = g["upstream_calls_per_request"]
    # Every fifth upstream success came back as 200 with `data: []`: the client counted each as a failure.
    assert g["silent_success"] > 0
    assert g["silent_success"] == summary["status_codes"].get("empty_success") <= summary["failures"]
    # Each answer the client saw was paid for upstream (the empty ones too): one call each, none retried.
    assert calls["mean"] >= 1.0 and calls["upstream_requests"] >= calls["client_requests"]
    assert g["upstream_images"] >= summary["requests"] - summary["failures"] + g["silent_success"]
    # Every fourth request went upstream as 512x512: drift, a quarter of the upstream calls at most.
    assert 0 < g["capability_drift"] <= calls["upstream_requests"] // 4 + 1 and g["asked_size"] == "1024x1024"
    assert calls["max"] == 1     # the gateway passed each x-request-id on: one upstream call per request
    # ... so overhead is told request by request: the silent 200s are client failures, the rest all matched.
    assert g["overhead_ms"]["method"] == "by_request" and g["overhead_ms"]["matched_share"] == 1.0
    assert g["overhead_ms"]["matched_requests"] == summary["requests"] - summary["failures"]
    assert g["orphaned_after_give_up"] == 0 and g["orphaned_after_end"] == g["orphaned_upstream_calls"]
    (stage,) = g["stages"]
    assert stage["name"] == "steady" and stage["client_requests"] == calls["client_requests"]
    assert stage["silent_success"] == g["silent_success"] and stage["capability_drift"] == g["capability_drift"]
    assert sum(r["client_requests"] for r in g["timeline"]) == calls["client_requests"]
    verdicts = {t["label"]: t["verdict"] for t in summary["thresholds"]}
    assert verdicts["silent_success count == 0"] == "fail"
    assert verdicts["upstream_calls_per_request avg < 1.5 calls"] == "pass"
    assert verdicts["upstream_calls_per_request max <= 1 calls"] == "pass"
    assert verdicts["capability_drift count > 0"] == "pass"
    assert verdicts["gateway_overhead p(50) < 1000 ms"] == "pass"
    assert code == 1 and summary["verdict"] == "fail", out     # the silent 200s break the SLA
    report = tmp_path / "report"
    md = (report / "summary.md").read_text()
    assert "### Gateway: both ends" in md and f"| Silent successes | {g['silent_success']:,} HTTP 200s" in md
    drift = f"{g['capability_drift']:,} answers of another size or format than 1024x1024 png"
    assert f"| Capability drift | {drift} |" in md
    suite = ET.parse(report / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["gateway.silent_success"] == str(g["silent_success"])
    assert props["gateway.upstream_requests"] == str(calls["upstream_requests"])
    case = next(c for c in suite.iter("testcase") if c.get("name") == "silent_success count == 0")
    assert case.find("failure") is not None
    html = (report / "report.html").read_text()
    assert "<h2>Gateway: both ends</h2>" in html and (report / "gateway_over_time.png").stat().st_size > 0
    assert "Gateway       command at" in out and "  drift" in out
    assert gone(int(pid_file.read_text())), "the in-house gateway outlived the run"


def test_a_gateway_that_cannot_start_is_a_clear_exit_2_with_its_last_lines(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.toml"
    scenario.write_text(INHOUSE.replace('"--empty-every", "5"', '"--no-such-option"').format(
        python=json.dumps(sys.executable), helper=json.dumps(str(HELPER)), pid=json.dumps(str(tmp_path / "p"))))
    code, out, summary = loadtest(tmp_path, str(scenario), timeout=120)
    assert code == 2, out
    assert "exited (code 2) before it was ready" in out
    assert "unrecognized arguments: --no-such-option" in out     # argparse's own line, from the gateway's log


def test_a_gateway_that_never_turns_healthy_is_exit_2_and_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "gateway.pid"
    scenario = tmp_path / "unhealthy.toml"
    text = INHOUSE.replace('health = "/healthz"', 'health = "/no-such-health"').replace('"30s"', '"3s"')
    scenario.write_text(text.format(python=json.dumps(sys.executable), helper=json.dumps(str(HELPER)),
                                    pid=json.dumps(str(pid_file))))
    code, out, summary = loadtest(tmp_path, str(scenario), timeout=120)
    assert code == 2, out
    assert "did not answer http://127.0.0.1:" in out and "/no-such-health within 3 s" in out
    assert gone(int(pid_file.read_text())), "the gateway that never turned healthy outlived the run"
