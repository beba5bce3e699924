"""The live SLA document (/sla) without a browser: what it says before a run, during one and after a stop.

A SuiteRun on a stand-in Locust environment (a runner with a state and a user count, nothing
else), the scenario of the browser test (tests/data/live_view.toml), and requests recorded
straight into the run's recorder as Locust's request event would: so the verdicts are the
gate's own, live.
"""

from __future__ import annotations

import copy
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from test_plots_html import make_summary

from loadtest.locust import live as live_module
from loadtest.locust import run as run_state
from loadtest.locust.live import LiveView
from loadtest.locust.run import SuiteRun
from loadtest.locust.webui import tab_rows
from loadtest.scenario import load_scenario
from loadtest.summary import ActionDoc, Summary

SCENARIO = Path(__file__).resolve().parent / "data" / "live_view.toml"
COLUMN_KEYS = ["threshold", "stage", "observed", "provider", "gap", "limit", "headroom", "verdict", "samples"]


def suite(tmp_path: Path, state: str = "ready") -> SuiteRun:
    runner = SimpleNamespace(state=state, user_count=0)
    env = SimpleNamespace(host=None, parsed_options=None, runner=runner,
                          stats=SimpleNamespace(errors={}))
    return SuiteRun(env, load_scenario(str(SCENARIO)), mock_url="http://127.0.0.1:9", embedded_mock=True,
                    report_dir=tmp_path / "report", report_root=tmp_path, result_file=None, key_pool=16)


def running(s: SuiteRun, elapsed_s: float, requests_per_s: int = 80, median_ms: float = 60.0) -> run_state.TestRun:
    """A run elapsed_s seconds in, with that many requests a second behind it, all successful."""
    s.runner.state = "running"
    s.runner.user_count = 120
    run = s.current = run_state.TestRun(s, 1)
    now = time.time()
    run.started_perf = time.perf_counter() - elapsed_s
    run.recorder.start(now - elapsed_s)
    rng = np.random.default_rng(11)
    n = int(requests_per_s * elapsed_s)
    for i, ms in enumerate(rng.lognormal(np.log(median_ms), 0.3, n)):
        run.recorder.record(name="generate", target="relay", latency_ms=float(ms), ok=True, status=200,
                            ts=now - elapsed_s + (i + 0.5) * elapsed_s / n)
    return run


def row(doc: dict[str, Any], i: int) -> dict[str, str]:
    return doc["thresholds"][i]["cells"]


def test_before_the_start_every_threshold_waits_and_the_load_is_the_scenarios(tmp_path):
    doc = LiveView(suite(tmp_path)).document()
    assert doc["format"] == "loadtest.live/1" and doc["run"]["state"] == "not started"
    assert [c["key"] for c in doc["columns"]] == COLUMN_KEYS
    assert [row(doc, i)["threshold"] for i in range(5)] == [
        "latency p(99) < 600 ms", "latency p(50) < 500 ms", "success rate >= 99.9 %", "requests rps >= 50 req/s",
        "latency p(99) < 600 ms"]
    assert [row(doc, i)["stage"] for i in range(5)] == ["whole run"] * 3 + ["hold", "surge"]
    assert {t["verdict"] for t in doc["thresholds"]} == {"waiting"}
    assert doc["verdict"]["status"] == "not started" and doc["verdict"]["provisional"]
    assert doc["load"]["driven_by_scenario"] and doc["load"]["text"] == "4 stages over 40 s: 40 → 120 → 120 → 40 users"
    assert [a["done"] for a in doc["actions"]] == [False, False]
    assert [c["title"] for c in doc["charts"]] == ["latency p(99) < 600 ms", "latency p(50) < 500 ms",
                                                   "latency p(99) < 600 ms [stage surge]"]
    assert doc["report"] is None and doc["sections"] == []


def test_mid_run_the_gate_judges_live_and_says_what_is_still_collecting(tmp_path):
    s = suite(tmp_path)
    view = LiveView(s)
    run = running(s, elapsed_s=10.0)          # baseline done, 2 s into the surge: 800 requests
    view.sample(run)
    doc = view.document()
    assert doc["run"]["state"] == "running" and doc["run"]["stage"]["name"] == "surge"
    # 30 s left when the run was built; the clock runs on while the document is made (seconds on a loaded box).
    assert 25.0 < doc["run"]["left_s"] <= 30.0
    p99, p50, success, hold_rps, surge_p99 = (row(doc, i) for i in range(5))
    assert p99["verdict"] == "PASS" and p99["observed"].endswith(" ms") and p99["headroom"].endswith("to spare")
    assert p99["limit"] == "< 600 ms" and p99["samples"] == "800"
    assert success["observed"] == "100 %" and success["limit"] == ">= 99.9 %"       # rates as percentages
    assert hold_rps["verdict"] == "COLLECTING from 16 s" and doc["thresholds"][3]["verdict"] == "collecting"
    assert surge_p99["verdict"].startswith("COLLECTING ") and surge_p99["verdict"].endswith(" / 500")
    assert doc["verdict"]["status"] == "on track" and doc["verdict"]["headline"].startswith("Provisional: on track")
    # success: 800 of 800 cannot yet show >= 99.9 % at 95 % confidence (its interval reaches below), so it
    # is still gathering evidence, beside the two stage thresholds.
    assert doc["thresholds"][2]["verdict"] == "inconclusive"
    assert "3 still collecting" in doc["verdict"]["headline"]
    chart = doc["charts"][0]
    assert chart["limit"] == 600.0 and chart["window"] is None and len(chart["points"]) == 1
    assert chart["per_second_label"] == "P99 of each second" and len(chart["per_second"]) >= 9
    assert doc["charts"][2]["window"] == [8.0, 16.0]
    rows = tab_rows(view.document(series=False))
    assert len(rows) == 6 and rows[-1]["threshold"] == "Run 1: running" and rows[-1]["stage"] == "surge"
    assert rows[:5] == [t["cells"] for t in doc["thresholds"]]


def test_a_rate_is_not_judged_in_its_windows_first_seconds(tmp_path):
    s = suite(tmp_path)
    run = running(s, elapsed_s=17.0)          # one second into the hold
    doc = LiveView(s).document(series=False)
    assert row(doc, 3)["verdict"] == "COLLECTING (1 s in so far)"
    run.started_perf -= 6                     # six seconds in: judged
    run._live = (0.0, None)
    assert LiveView(s).document(series=False)["thresholds"][3]["verdict"] in ("pass", "fail")


def test_a_failing_threshold_makes_the_provisional_verdict_off_track(tmp_path):
    s = suite(tmp_path)
    running(s, elapsed_s=10.0, median_ms=900.0)
    doc = LiveView(s).document(series=False)
    assert row(doc, 0)["verdict"] == "FAIL" and row(doc, 0)["headroom"].startswith("over by")
    assert doc["verdict"]["class"] == "fail" and doc["verdict"]["headline"].startswith("Provisional: off track")


def test_after_a_stop_the_run_is_incomplete_and_its_report_linked(tmp_path):
    s = suite(tmp_path)
    view = LiveView(s)
    run = running(s, elapsed_s=21.0)
    run.actions_done.append(ActionDoc(at_s=12.0, planned_at_s=12.0, provider="midjourney-v7",
                                      settings={"outage": True}, outcome="HTTP 200", ok=True))
    run.stopped_perf = time.perf_counter()
    s.runner.state = "stopped"
    assert view.document()["verdict"]["status"] == "judging"
    doc = copy.deepcopy(make_summary(passed=True))
    doc.update(verdict="invalid", exit_code=2, passed=False, report_dir=str(tmp_path / "report"),
               reasons=[{"kind": "incomplete", "text": "the run was stopped by hand at 21 s of its planned 40 s: "
                                                      "an incomplete run proves nothing"}],
               files={"summary": "summary.json", "html": "report.html"})
    doc["run"].update(end="stopped", elapsed_s=21.0)
    run.summary = Summary.model_validate(doc)
    out = view.document()
    assert out["run"]["state"] == "finished" and out["run"]["end"] == "stopped"
    assert out["verdict"] == {"status": "invalid", "class": "invalid", "provisional": False, "incomplete": True,
                              "exit_code": 2, "headline": "INCOMPLETE: the run proves nothing (exit 2)",
                              "reasons": [doc["reasons"][0]["text"]]}
    assert out["report"]["url"] == "/sla/runs/1/report.html" and view.report_dir(1) == str(tmp_path / "report")
    assert [(a["done"], a["ok"]) for a in out["actions"]] == [(True, True), (False, None)]


def test_a_column_and_a_section_are_one_entry_each(tmp_path, monkeypatch):
    monkeypatch.setattr(live_module, "COLUMNS",
                        [*live_module.COLUMNS, ("interval", "95 % interval", lambda t: "101–109 ms")])
    monkeypatch.setattr(live_module, "SECTIONS", [lambda suite: {"title": "Provider side", "note": "gateway",
                                                                 "columns": [{"key": "k", "title": "K"}],
                                                                 "rows": [{"k": "v"}]},
                                                  lambda suite: None])
    doc = LiveView(suite(tmp_path)).document()
    assert doc["columns"][-1] == {"key": "interval", "title": "95 % interval"}
    assert {t["cells"]["interval"] for t in doc["thresholds"]} == {"101–109 ms"}
    assert [sec["title"] for sec in doc["sections"]] == ["Provider side"]


# --- both ends, live ------------------------------------------------------------------------------------


def provider_record(values_ms, window="baseline"):
    """The relay's own record of the run: it answered every request in values_ms."""
    from test_attribution import record
    return record(values_ms, provider="relay", window=window)


def test_the_view_shows_each_latency_thresholds_provider_side_and_gap_and_blames_the_generator(tmp_path,
                                                                                             monkeypatch):
    from test_attribution import health as strained_health

    from loadtest.attribution import ProviderSide
    from mockprovider.record_client import merge_summaries

    s = suite(tmp_path)
    run = running(s, elapsed_s=10.0, median_ms=900.0)     # the client sees ~900 ms...
    fast = [40.0] * 980 + [90.0] * 20                      # ... the relay answered in 40
    side = ProviderSide(merge_summaries([provider_record(fast, "baseline"), provider_record(fast, "surge")]),
                        ("relay",))
    monkeypatch.setattr(run, "live_provider_side", lambda: side)
    monkeypatch.setattr(run, "live_health", lambda: strained_health(cpu=99.0, stall_ms=117.0))
    doc = LiveView(s).document(series=False)
    p99, p50 = doc["thresholds"][0], doc["thresholds"][1]
    assert p99["doc"]["provider_side"]["attribution"] == "generator"
    assert p99["doc"]["provider_side"]["samples"] == 2000 and p99["cells"]["provider"] == "90 ms (2,000)"
    gap = p99["doc"]["observed"] - p99["doc"]["provider_side"]["observed"]
    assert p99["doc"]["provider_side"]["gap"] == round(gap, 3) and p99["cells"]["gap"].startswith("+")
    assert p99["verdict"] == "invalid" and p99["cells"]["verdict"] == "INVALID (the generator's)"
    assert p50["cells"]["provider"] == "40.0 ms (2,000)" and p50["verdict"] == "invalid"
    # A stage's threshold is compared with the record's window of that stage.
    # (The client's surge stage has fewer requests than min_samples: mid-run, not judged yet.)
    surge = doc["thresholds"][4]
    assert surge["cells"]["provider"] == "90 ms (1,000)" and surge["verdict"] == "collecting"
    verdict = doc["verdict"]
    assert verdict["class"] == "invalid" and verdict["headline"].startswith("Provisional: the generator's breach")
    assert any("own queueing" in r for r in verdict["reasons"])
    # Judged from the client side alone, the same run is the target's breach (the view said so before).
    monkeypatch.setattr(run, "live_provider_side", lambda: None)
    run._live = (0.0, None)
    alone = LiveView(s).document(series=False)
    assert alone["thresholds"][0]["verdict"] == "fail" and alone["thresholds"][0]["cells"]["provider"] == "—"
    assert alone["verdict"]["class"] == "fail"


def test_a_record_that_cannot_be_read_live_leaves_the_client_side_judging_and_is_not_asked_every_second(
        tmp_path, monkeypatch):
    from loadtest.provider_side import RecordSession

    with socket.socket() as silent:          # listens, never answers: a read must time out, not hang
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setattr(run_state, "LIVE_RECORD_TIMEOUT_S", 0.3)
        s = suite(tmp_path)
        run = running(s, elapsed_s=10.0, median_ms=900.0)
        run.record = RecordSession(f"http://127.0.0.1:{silent.getsockname()[1]}")
        reads = []
        peek = run.record.peek
        monkeypatch.setattr(run.record, "peek", lambda timeout_s: reads.append(timeout_s) or peek(timeout_s))
        verdict = run.live_verdict()
        assert reads == [0.3] and run.record.live_error is not None and "timed out" in run.record.live_error
        assert verdict.results[0].verdict == "fail" and verdict.results[0].provider_observed is None
        run._live = (0.0, None)
        run.live_verdict()
        assert reads == [0.3]                 # retried only after LIVE_RECORD_RETRY_S
        assert run.record.error is None       # the end still reads the record


def test_the_live_gate_reads_this_runs_record_and_no_other(tmp_path, monkeypatch):
    from loadtest.provider_side import RecordSession
    from mockprovider.record_client import RecordClient

    s = suite(tmp_path)
    run = running(s, elapsed_s=10.0)
    run.record = RecordSession("http://127.0.0.1:9")
    run.record.record_id = "r0"                # the record this run reset; the mock now holds "r1"
    asked: list[bool] = []

    def summary(self, *, seconds=True):
        asked.append(seconds)
        return provider_record([40.0] * 100)

    monkeypatch.setattr(RecordClient, "summary", summary)
    assert run.live_provider_side() is None
    assert run.record.live_error is not None and "reset by someone else" in run.record.live_error
    run.record.record_id = "r1"
    run._live_side_at = -1e9
    side = run.live_provider_side()
    assert side is not None and side.providers == ("relay",) and side.record.requests == 100
    assert asked == [False, False]       # the live reads leave the per-second rows out


def test_a_four_hour_history_is_compact_and_charts_what_it_was_given():
    import math
    import sys

    from loadtest.locust.live import History

    h = History()
    hours = 4 * 3600
    for s in range(hours):
        h.t_s.append(s + 0.25)
        h.add_value("t0", None if s < 10 else 500.0 + s % 7)     # judged from its tenth second on
        if s != 100:                                              # a second the recorder never had
            h.set_second(s, (40.0, 70.0, None if s % 2 else 90.0, 120.0))
    h.add_value("t1", 12.5)                                       # a threshold first seen at the end
    size = (sys.getsizeof(h.t_s) + sum(map(sys.getsizeof, h.values.values()))
            + sum(map(sys.getsizeof, h.seconds)) + sys.getsizeof(h.present))
    # 8 bytes a sample and series, 33 a second: about 0.8 MB, where lists and a dict of tuples took about 5 MB.
    assert size < 60 * hours, size
    points = h.points("t0")
    assert len(points) == hours - 10 and points[0] == (10.25, 503.0)
    assert points[-1] == (hours - 0.75, 500.0 + (hours - 1) % 7)
    assert h.points("t1") == [(hours - 0.75, 12.5)] and h.points("nothing") == []
    p99 = h.per_second(2)
    assert len(p99) == hours // 2 - 1       # the even seconds but the 100th
    assert p99[0] == (0.5, 90.0) and all(v == 90.0 for _, v in p99)
    p50 = h.per_second(0, 90, 110)
    assert [t for t, _ in p50] == [s + 0.5 for s in range(90, 110) if s != 100]
    assert math.isnan(h.seconds[0][100]) and not h.present[100]


def test_the_view_keeps_the_history_of_the_current_run_only(tmp_path):
    s = suite(tmp_path)
    view = LiveView(s)
    first = running(s, 12.0)
    view.sample(first)
    assert len(view.history(first).t_s) == 1
    second = s.current = run_state.TestRun(s, 2)
    second.started_perf = time.perf_counter()
    second.recorder.start(time.time())
    view.sample(second)
    assert list(view.histories) == [2] and len(view.history(second).t_s) == 1
