"""Baselines: deltas against a previous run's summary.json, and regression thresholds with a noise floor."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtest.baseline import Baseline, compile_regressions, parse_regressions
from loadtest.fields import Problems, ScenarioError
from loadtest.gate import judge
from loadtest.recorder import Recorder
from loadtest.report import console, junit, markdown, write_all
from loadtest.scenario import Overrides, load_scenario
from loadtest.summary import LoadDoc, RunDoc, ScenarioDoc, StageWindow, Summary, TargetDoc, build_summary
from loadtest.thresholds import ThresholdError, parse_thresholds

T0 = 1_700_000_000.0
STAGES = [("warm", 0.0, 2.0), ("hold", 2.0, 10.0)]
SLA = {"latency": ["p(99)<600", "p(50)<500"], "success": ["rate>=0.99"]}


def recording(scale: float = 1.0, n: int = 4000, failed: int = 0) -> Recorder:
    """Latencies 100..299 ms (times `scale`), cycled: a P50 of about 200 ms."""
    rec = Recorder(stages=STAGES, start_time=T0)
    for i in range(n):
        ok = i >= failed
        rec.record(name="g", target="relay", latency_ms=(100.0 + i % 200) * scale, ok=ok, status=200 if ok else 500,
                   ts=T0 + 0.5 + i * 9 / n)
    rec.stop(T0 + 10)
    return rec


def summarize(rec: Recorder, thresholds, baseline: Baseline | None = None) -> Summary:
    verdict = judge(thresholds, rec, min_samples=100)
    return build_summary(
        scenario=ScenarioDoc(name="probe", load_model="open", planned_s=10, min_samples=100,
                             stages=[StageWindow(name=n, start_s=a, end_s=b) for n, a, b in STAGES]),
        target=TargetDoc(name="relay", api="relay", base_url=None, model="midjourney-v7"), recorder=rec,
        verdict=verdict, health=None, run=RunDoc(end="schedule", planned_s=10, elapsed_s=10),
        load=LoadDoc(model="open", peak_users=10), started_at=datetime.fromtimestamp(T0, UTC), duration_s=10,
        baseline=baseline)


def regressions(table: dict):
    problems = Problems()
    out = parse_regressions(table, problems)
    problems.raise_if_any()
    return out


@pytest.fixture
def main_run() -> Summary:
    return summarize(recording(), parse_thresholds(SLA))


def test_a_regression_is_a_threshold_once_the_baseline_is_known(main_run: Summary) -> None:
    regs = regressions({"latency": ["p(50) +10% floor 5ms", "p(99) +10% floor 50ms"], "success": ["rate -0.1pp"],
                        "latency{stage:hold}": ["p(90) +10%"]})
    compiled, unmatched = compile_regressions(regs, main_run)
    assert unmatched == []
    p50, p99, success, hold = compiled
    base50 = main_run.latency_ms.p50
    # 10 % of a 200 ms median is 20 ms, more than the 5 ms floor; for P99 (~298 ms) the 50 ms floor wins.
    # Limits are kept to a tenth of a millisecond.
    assert (p50.op, p50.value, p50.baseline) == ("<=", pytest.approx(base50 * 1.1, abs=0.05), base50)
    assert p99.value == pytest.approx(main_run.latency_ms.p99 + 50, abs=0.05)
    assert (success.op, success.value) == (">=", pytest.approx(1.0 - 0.001))
    assert hold.value == pytest.approx(next(s for s in main_run.stages if s.name == "hold").latency_ms.p90 * 1.1,
                                       abs=0.05)
    assert p50.label() == f"latency p(50) <= {p50.value:g} ms (baseline {base50:g} ms +10 %, floor 5 ms)"


def test_an_injected_slowdown_fails_and_an_unchanged_rerun_passes(main_run: Summary) -> None:
    regs = regressions({"latency": ["p(50) +10% floor 5ms", "p(99) +10% floor 10ms"]})
    compiled, _ = compile_regressions(regs, main_run)
    same = judge(compiled, recording(), min_samples=100)
    assert same.exit_code == 0 and [r.verdict for r in same.results] == ["pass", "pass"]
    slower = judge(compiled, recording(1.3), min_samples=100)
    assert slower.exit_code == 1 and [r.verdict for r in slower.results] == ["fail", "fail"]
    # Within the allowance: 5 % slower is noise under a 10 % allowance.
    assert judge(compiled, recording(1.05), min_samples=100).exit_code == 0


def test_the_noise_floor_keeps_jitter_on_a_fast_target_from_failing() -> None:
    fast = summarize(recording(0.2), parse_thresholds(SLA))          # a ~40 ms median
    compiled, _ = compile_regressions(regressions({"latency": ["p(50) +10% floor 10ms"]}), fast)
    # +6 ms is 15 % of 40 ms: over the share, under the 10 ms floor.
    jitter = Recorder(stages=STAGES, start_time=T0)
    for i in range(4000):
        jitter.record(name="g", target="relay", latency_ms=(100.0 + i % 200) * 0.2 + 6, ok=True, status=200,
                      ts=T0 + 0.5 + i * 9 / 4000)
    jitter.stop(T0 + 10)
    assert judge(compiled, jitter, min_samples=100).exit_code == 0
    assert judge(compiled, recording(0.2 * 1.6), min_samples=100).exit_code == 1


def test_a_regression_the_baseline_has_no_value_for_is_named_not_judged(main_run: Summary) -> None:
    compiled, unmatched = compile_regressions(regressions({"latency{stage:surge}": ["p(99) +10%"],
                                                           "latency": ["p(97.3) +10%"]}), main_run)
    assert compiled == [] and len(unmatched) == 2 and "latency{stage:surge}: p(99) +10%" in unmatched[0]


@pytest.mark.parametrize("table, message", [
    ({"latency": ["p(99) -10%"]}, r"a latency p\(99\) is worse when higher: write \+10%"),
    ({"success": ["rate +0.1pp"]}, "a success rate is worse when lower"),
    ({"success": ["rate -0.1"]}, "share of the baseline \\(%\\) or percentage points \\(pp\\)"),
    ({"latency": ["p(99) +10pp"]}, "pp \\(percentage points\\) is for rates"),
    ({"success": ["rate -1ms"]}, "ms is a latency's unit"),
    ({"latency": ["p99 +10%"]}, "'p99' is not an aggregation of latency"),
    ({"latency": ["p(99) more than 10%"]}, "expected AGGREGATION SIGN AMOUNT"),
    ({"latncy": ["p(99) +10%"]}, "unknown metric 'latncy'"),
])
def test_regression_mistakes_are_named(table: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        regressions(table)


def test_the_scenario_compiles_its_regressions_against_the_baseline_file(tmp_path: Path, main_run: Summary) -> None:
    path = tmp_path / "main" / "summary.json"
    write_all(main_run, path.parent)
    scenario = tmp_path / "s.toml"
    scenario.write_text('[target]\nname = "relay"\n[load]\nmodel = "open"\nmax_vus = 5\n'
                        'stages = [{ duration = "5s", rate = 10 }]\n[thresholds]\nlatency = ["p(99)<600"]\n'
                        '[regressions]\nlatency = ["p(50) +10%", "p(97.3) +5%"]\n')
    plain = load_scenario(str(scenario))
    assert len(plain.thresholds) == 1 and len(plain.regressions) == 2 and plain.baseline is None
    s = load_scenario(str(scenario), Overrides(baseline=str(path)))
    assert len(s.thresholds) == 2 and s.thresholds[1].baseline == main_run.latency_ms.p50
    assert s.baseline is not None and s.baseline.unmatched == ("latency: p(97.3) +5%: the baseline has no such value",)
    with pytest.raises(ScenarioError, match="--baseline: no such file"):
        load_scenario(str(scenario), Overrides(baseline=str(tmp_path / "nope.json")))
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ScenarioError, match="is not a summary.json this suite wrote"):
        load_scenario(str(scenario), Overrides(baseline=str(tmp_path / "bad.json")))


def test_deltas_are_in_the_summary_and_every_report(tmp_path: Path, main_run: Summary) -> None:
    compiled, _ = compile_regressions(regressions({"latency": ["p(50) +10% floor 5ms"]}), main_run)
    baseline = Baseline("main/summary.json", main_run)
    slower = summarize(recording(1.3), parse_thresholds(SLA) + compiled, baseline)
    b = slower.baseline
    assert b is not None and b.path == "main/summary.json" and b.verdict == "pass"
    p50 = next(d for d in b.figures if d.name == "latency p50")
    assert p50.delta_percent == pytest.approx(30.0, abs=0.5) and p50.worse is True
    shared = {d.name for d in b.thresholds}
    assert shared == {"latency p(99) < 600 ms", "latency p(50) < 500 ms", "success rate >= 0.99"}
    assert b.regressions == [compiled[0].label()]
    assert slower.exit_code == 1
    text = console.render(slower)
    assert "Baseline      main/summary.json (probe against relay" in text
    assert any(line.strip().startswith("latency p50") and "(+30." in line and "worse" in line
               for line in text.splitlines())
    md = markdown.render(slower)
    assert "### Against the baseline" in md and "| latency p50 |" in md
    suite = ET.fromstring(junit.render(slower)).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["baseline"] == "main/summary.json"
    assert "latency p50:" in (suite.find("system-out").text or "")
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [compiled[0].label()]
    write_all(slower, tmp_path / "out")           # the autouse fixture validates it against the schema
    assert Summary.read(tmp_path / "out" / "summary.json").baseline == b


def test_threshold_syntax_errors_still_name_thresholds() -> None:
    with pytest.raises(ThresholdError, match="thresholds.latncy"):
        parse_thresholds({"latncy": ["p(99)<600"]})
