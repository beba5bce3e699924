"""`loadtest capacity`: the search's ramp, bisection and bound on steps with known outcomes; the scenario file
each step runs; the reports; and a real search against the mock, whose answer must bracket the theory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
import tomli_w

from loadtest.capacity import (
    STEP_STAGE,
    CapacityDoc,
    CapacityOptions,
    Outcome,
    Searcher,
    Step,
    StepDoc,
    saturated_over_step,
    step_document,
    step_thresholds,
    write_reports,
)
from loadtest.loadmodel import OpenLoad
from loadtest.report.capacity_html import BOUNDS
from loadtest.scenario import load_scenario
from loadtest.summary import Summary, TimelineRow

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "capacity.schema.json").read_text())

# dall-e-4 at a twentieth of its latency, with 20 slots and nothing else in the way: its mean service time is
# 4,508.4 ms x 0.05 (`--show-profiles` prints the mean), so it serves at most 20 / 0.22542 s = 88.7 req/s.
KNEE_TOML = """\
name = "knee"
description = "dall-e-4 at a twentieth of its latency with 20 slots"

[target]
name = "dall-e-4"

[mock]
seed = 7
latency_scale = 0.05
set = ["dall-e-4.slots=20", "dall-e-4.queue=100000", "dall-e-4.requests_per_minute=1000000",
       "dall-e-4.burst=100000", "dall-e-4.error_rate=0"]

[client]
timeout = "30s"
retry = { max_attempts = 1 }

[load]
model = "open"
max_vus = 400
stages = [{ name = "hold", duration = "10s", rate = 40 }]

[thresholds]
latency = ["p(99)<3000"]
success = ["rate>=0.99"]
"requests{stage:hold}" = ["rps>=39"]

[gate]
min_samples = 100
"""
SLOTS, MEAN_S = 20, 4.5084 * 0.05
THEORY_RPS = SLOTS / MEAN_S


def knee_file(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "knee.toml"
    path.write_text(KNEE_TOML)
    return path


def fake_searcher(tmp_path: Path, outcome_at: Callable[[float], Outcome], **options: object) -> Searcher:
    """A Searcher whose steps come out as `outcome_at(rate)` says, without running anything."""
    path = knee_file(tmp_path)
    searcher = Searcher(load_scenario(str(path)), str(path), CapacityOptions(**options),  # type: ignore[arg-type]
                        tmp_path, None, print_=lambda *a, **k: None)

    def run(rate: float, measure: float) -> Step:
        outcome = outcome_at(rate)
        broken = {"holds": None, "breaks": "latency p(99) < 3000 ms [stage=step]",
                  "generator": "the load generator (CPU 97 %)", "machine": "this machine's CPU (95 %)",
                  "inconclusive": "latency p(99) < 3000 ms (inconclusive)", "invalid": "harness"}[outcome]
        return Step(rate, StepDoc(rate_rps=rate, planned_s=measure, elapsed_s=measure, outcome=outcome,
                                  verdict="pass" if outcome == "holds" else "fail", exit_code=0,
                                  first_broken=broken, report_dir=str(tmp_path)))

    searcher._run = run  # type: ignore[method-assign]
    return searcher


def target_at(capacity: float) -> Callable[[float], Outcome]:
    return lambda rate: "holds" if rate <= capacity else "breaks"


def test_the_search_ramps_then_bisects_to_a_bracket_within_its_resolution(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, target_at(THEORY_RPS), start_rps=10, resolution=0.05)
    searcher.search()
    rates = [st.rate for st in searcher.steps]
    assert rates[:5] == [10, 20, 40, 80, 160]                     # the ramp, x2 until a step breaks
    doc = searcher.document(datetime.now(UTC))
    assert doc.holds_rps is not None and doc.breaks_rps is not None
    assert doc.holds_rps <= THEORY_RPS < doc.breaks_rps
    assert doc.breaks_rps / doc.holds_rps - 1 <= 0.05
    assert doc.bound == "target" and doc.exit_code == 0
    assert doc.first_broken == "latency p(99) < 3000 ms [stage=step]"
    assert f"holds at {doc.holds_rps:,.3g} req/s, breaks at {doc.breaks_rps:,.3g} req/s" in doc.answer
    assert [s.outcome for s in doc.steps] == ["holds" if r <= THEORY_RPS else "breaks" for r in rates]


def test_a_first_step_that_breaks_steps_down_until_one_holds(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, target_at(3.0), start_rps=40, resolution=0.1)
    searcher.search()
    assert [st.rate for st in searcher.steps][:5] == [40, 20, 10, 5, 2.5]
    doc = searcher.document(datetime.now(UTC))
    assert doc.holds_rps is not None and doc.breaks_rps is not None
    assert doc.holds_rps <= 3.0 < doc.breaks_rps and doc.bound == "target"


def test_a_generator_that_gives_out_first_is_the_bound_never_a_capacity(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, lambda rate: "holds" if rate <= 50 else "generator", start_rps=10)
    searcher.search()
    doc = searcher.document(datetime.now(UTC))
    assert doc.bound == "generator" and doc.exit_code == 2
    assert doc.holds_rps is not None and doc.holds_rps <= 50 and doc.first_broken == "the load generator (CPU 97 %)"
    assert "the generator's bound, not the target's capacity" in doc.answer


def test_a_machine_out_of_cpu_is_the_bound(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, lambda rate: "holds" if rate <= 50 else "machine", start_rps=10)
    searcher.search()
    doc = searcher.document(datetime.now(UTC))
    assert doc.bound == "machine" and doc.exit_code == 2 and "this machine's bound" in doc.answer


def test_an_undecided_step_bounds_nothing(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, lambda rate: "holds" if rate <= 50 else "inconclusive", start_rps=10)
    searcher.search()
    doc = searcher.document(datetime.now(UTC))
    assert doc.bound == "inconclusive" and doc.exit_code == 2 and "could not decide" in doc.answer


def test_an_undecided_first_step_goes_no_lower(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, lambda rate: "inconclusive", start_rps=40)
    searcher.search()
    assert [st.rate for st in searcher.steps] == [40]
    doc = searcher.document(datetime.now(UTC))
    assert doc.holds_rps is None and doc.bound == "inconclusive" and doc.exit_code == 2


def test_holding_at_every_rate_says_so_and_require_gates_the_answer(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, target_at(1e9), start_rps=10, max_rps=40)
    searcher.search()
    assert [st.rate for st in searcher.steps] == [10, 20, 40]
    doc = searcher.document(datetime.now(UTC))
    assert doc.bound == "none" and doc.breaks_rps is None and doc.holds_rps == 40 and doc.exit_code == 0
    assert "raise --max" in doc.answer
    short = fake_searcher(tmp_path / "b", target_at(30), start_rps=10, resolution=0.2, require_rps=35)
    short.search()
    assert short.document(datetime.now(UTC)).exit_code == 1            # it holds, but not at the rate required


def test_a_step_is_the_scenario_at_one_rate_judged_on_its_measured_stage(tmp_path: Path) -> None:
    path = knee_file(tmp_path)
    s = load_scenario(str(path))
    # The request-rate threshold is what the search sets, so no step judges it.
    assert [t.label() for t in step_thresholds(s)] == ["latency p(99) < 3000 ms", "success rate >= 0.99"]
    doc = step_document(s, {"client": {"timeout": "30s", "retry": {"max_attempts": 1}}}, 75.0, 3.0, 8.0, 300)
    step_file = tmp_path / "step.toml"
    step_file.write_text(tomli_w.dumps(doc))
    step = load_scenario(str(step_file))
    assert isinstance(step.load, OpenLoad)
    assert [(st.name, st.duration_s, st.rate) for st in step.load.stages] == [("warmup", 3.0, 75.0),
                                                                            (STEP_STAGE, 8.0, 75.0)]
    assert step.gate.stop_on_saturation and step.mock.latency_scale == 0.05
    assert all(dict(t.filters).get("stage") == STEP_STAGE for t in step.thresholds)
    assert all(t.abort_on_fail for t in step.thresholds if t.metric != "goodput")
    assert sorted(t.metric for t in step.thresholds) == ["goodput", "latency", "success"]
    # Goodput is reported against the SLA's latency limit; the threshold that names it cannot fail.
    goodput = next(t for t in step.thresholds if t.metric == "goodput")
    assert goodput.slo_ms == 3000 and goodput.expression() == "rate>=0"
    assert step.client.retry is not None and step.client.retry.max_attempts == 1


def test_the_reports_hold_the_answer_and_validate(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, target_at(THEORY_RPS), start_rps=40, resolution=0.1)
    searcher.search()
    doc = searcher.document(datetime.now(UTC))
    write_reports(doc, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "capacity.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(written)
    assert CapacityDoc.model_validate(written).holds_rps == doc.holds_rps
    assert (tmp_path / "out" / "knee.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written["files"]["knee"] == "knee.png"
    assert doc.answer in (tmp_path / "out" / "capacity.md").read_text()


def test_the_page_gives_the_bracket_the_bound_and_links_each_steps_own_report(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, target_at(THEORY_RPS), start_rps=40, resolution=0.1)
    searcher.search()
    doc = searcher.document(datetime.now(UTC))
    out = tmp_path / "out"
    # Every step but the first wrote its report, the first only its log (a step that died before its verdict).
    for i, step in enumerate(doc.steps):
        folder = out / "steps" / f"{i + 1:02d}-{step.rate_rps:g}rps"
        step.report_dir = str(folder)
        written = folder / ("run.log" if i == 0 else "report/report.html")
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text("step")
    write_reports(doc, out)
    page = (out / "capacity.html").read_text()
    assert json.loads((out / "capacity.json").read_text())["files"]["html"] == "capacity.html"
    assert doc.holds_rps is not None and doc.breaks_rps is not None
    assert f"holds at {doc.holds_rps:,.3g} req/s, breaks at {doc.breaks_rps:,.3g} req/s" in page
    assert BOUNDS["target"][1] in page and "data:image/png;base64," in page      # the knee, embedded
    links = re.findall(r'<a href="(steps/[^"]+)">(report|log)</a>', page)
    assert [words for _, words in links] == ["log"] + ["report"] * (len(doc.steps) - 1)
    assert all((out / link).is_file() for link, _ in links)           # relative to the page, so the folder moves


def recorded(served_per_s: Sequence[int], p50_ms: Sequence[float]) -> Summary:
    """A step's summary with only the per-second record the post-step check reads."""
    rows = [TimelineRow(t_s=t, users=None, requests=n, failures=0, dropped=0, rps=float(n), codes={"200": n},
                        p50_ms=p, p95_ms=None, p99_ms=None, max_ms=None)
            for t, (n, p) in enumerate(zip(served_per_s, p50_ms))]
    return Summary.model_construct(timeline=rows)


def test_a_step_that_held_but_queued_without_bound_is_a_break() -> None:
    # 95 offered a second for 3 + 20 s against 88.7 served: 6 more each second, the median up 70 ms a second.
    # The live check (a lag, two looks) may miss it within the step; the complete record cannot.
    growing = recorded([89, 88, 89] + [88, 89] * 10, [220, 290, 360] + [430 + 70 * i for i in range(20)])
    assert (words := saturated_over_step(growing, 95.0, 3.0, 20.0)) is not None
    assert words.startswith("over-saturation over the step: ") and "more requests started than finished" in words
    # 80 offered and 80 served, the median flat (up to a few ms of jitter): it kept up.
    steady = recorded([80] * 23, [215 + (3 if i % 2 else -3) for i in range(23)])
    assert saturated_over_step(steady, 80.0, 3.0, 20.0) is None


@pytest.mark.slow
def test_against_the_mock_the_bracket_holds_the_theoretical_capacity(tmp_path: Path) -> None:
    path = knee_file(tmp_path)
    measure_s = 20.0
    proc = subprocess.run([sys.executable, "-m", "loadtest", "capacity", str(path), "--start", "40",
                           "--warmup", "3", "--min-step", str(measure_s), "--max-step", str(measure_s),
                           "--resolution", "0.1", "--max-steps", "9", "--report-dir", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "capacity.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert proc.returncode == 0 and doc["bound"] == "target", out
    assert out.rstrip().splitlines()[-1].startswith("capacity: knee against dall-e-4 holds at"), out
    # Above capacity the queue grows by (rate - capacity) a second. Judged over the step's complete seconds
    # (T - 1), the over-saturation check tells that growth from the count's noise only past twice its square
    # root: rate/capacity - 1 > 2 / sqrt(capacity * (T - 1)), 4.9 % here. So a rate up to that far over may
    # still hold. Below capacity, the 3 s P99 limit leaves no step under 90 % of it breaking: 20 slots at
    # 90 % load queue for tens of milliseconds (Erlang C).
    over = 2 / (THEORY_RPS * (measure_s - 1)) ** 0.5
    assert doc["holds_rps"] <= THEORY_RPS * (1 + over), out
    assert doc["breaks_rps"] >= THEORY_RPS * 0.9, out
    assert doc["holds_rps"] < doc["breaks_rps"] and doc["first_broken"], out
    assert doc["breaks_rps"] / doc["holds_rps"] - 1 <= 0.1 or len(doc["steps"]) == 9, out
    assert all(Path(s["report_dir"], "report", "summary.json").exists() for s in doc["steps"])
    assert (tmp_path / "out" / "knee.png").exists()


def undecided_summary(folder: Path) -> None:
    """A step's summary.json where it belongs (<step folder>/report/): success 99.6 % of 3,000 against a
    99.5 % limit, which the interval cannot yet tell apart."""
    from loadtest.gate import judge
    from loadtest.recorder import Recorder
    from loadtest.summary import LoadDoc, RunDoc, ScenarioDoc, StageWindow, TargetDoc, build_summary
    from loadtest.thresholds import parse_thresholds

    t0 = 1_700_000_000.0
    rec = Recorder(stages=[("step", 0.0, 10.0)], start_time=t0)
    for i in range(3000):
        rec.record(name="g", target="relay", latency_ms=50.0, ok=i >= 12, status=200 if i >= 12 else 500,
                   ts=t0 + 0.5 + i * 9 / 3000)
    rec.stop(t0 + 10)
    verdict = judge(parse_thresholds({"success": ["rate>=0.995"]}), rec, min_samples=100)
    assert [r.verdict for r in verdict.results] == ["inconclusive"] and verdict.results[0].more_samples
    summary = build_summary(
        scenario=ScenarioDoc(name="step", load_model="open", planned_s=10, min_samples=100,
                             stages=[StageWindow(name="step", start_s=0.0, end_s=10.0)]),
        target=TargetDoc(name="relay", api="relay", base_url=None, model="midjourney-v7"), recorder=rec,
        verdict=verdict, health=None, run=RunDoc(end="schedule", planned_s=10, elapsed_s=10),
        load=LoadDoc(model="open", peak_users=10), started_at=datetime.fromtimestamp(t0, UTC), duration_s=10)
    (folder / "report").mkdir(parents=True, exist_ok=True)
    (folder / "report" / "summary.json").write_text(json.dumps(summary.json_dict()))


def test_an_undecided_step_runs_once_more_for_as_long_as_its_own_summary_says(tmp_path: Path) -> None:
    searcher = fake_searcher(tmp_path, lambda rate: "holds", start_rps=10, max_rps=10)
    runs: list[float] = []
    fake = searcher._run

    def run(rate: float, measure: float) -> Step:
        runs.append(measure)
        if len(runs) > 1:
            return fake(rate, measure)
        folder = tmp_path / "steps" / "01"
        undecided_summary(folder)
        return Step(rate, StepDoc(rate_rps=rate, planned_s=measure, elapsed_s=measure, outcome="inconclusive",
                                  verdict="invalid", exit_code=2, first_broken="success (inconclusive)",
                                  report_dir=str(folder)))

    searcher._run = run  # type: ignore[method-assign]
    searcher.run_step(10.0)
    assert len(runs) == 2 and runs[1] > runs[0], runs
    assert searcher.steps[-1].doc.outcome == "holds"


@pytest.mark.slow
def test_against_the_relay_the_answer_is_this_machines_bound_never_a_capacity(tmp_path: Path) -> None:
    # The relay serves ~8,700 req/s at saturation (400 slots / its ~46 ms mean, `--show-profiles`); one Locust
    # process on this machine gives out far below that, so the search must end on the generator's (or the
    # machine's) bound, exit 2, and never call a rate the relay's capacity. Its injected errors are off so that
    # a step's success rate is decided at once and the search reaches the rate where the generator gives out.
    proc = subprocess.run([sys.executable, "-m", "loadtest", "capacity", "sustained", "--set", "relay.error_rate=0",
                           "--start", "1200", "--factor", "2", "--max-steps", "3", "--warmup", "3",
                           "--min-step", "15", "--max-step", "30", "--report-dir", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "capacity.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert proc.returncode == 2 and doc["bound"] in ("generator", "machine"), out
    assert "bound, not the target's capacity" in doc["answer"], out
    assert all(s["rate_rps"] < 8000 for s in doc["steps"]), out
    # The search may bisect back below the rate where the generator gave out (and that step holds), but
    # no step may be the target's break.
    outcomes = [s["outcome"] for s in doc["steps"]]
    assert any(o in ("generator", "machine") for o in outcomes) and "breaks" not in outcomes, out
