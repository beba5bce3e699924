import math

import pytest

from loadtest.gate import RunFacts, abort_trigger, evaluate, evaluate_live
from loadtest.recorder import Recorder
from loadtest.thresholds import parse_thresholds

T0 = 1_700_000_000.0
SLA = {"latency": ["p(99)<600"], "success": ["rate>=0.9995"]}


def run(n=1000, ms=200.0, failed=0, dropped=0, stages=(), duration=10.0):
    """n requests of ms each spread over the duration; the first `failed` fail; `dropped` starts dropped."""
    rec = Recorder(stages=stages, start_time=T0)
    for i in range(n):
        ok = i >= failed
        rec.record(name="g", target="relay", latency_ms=ms, ok=ok, status=200 if ok else 500,
                   ts=T0 + 0.5 + i * (duration - 1) / max(n, 1))
    for i in range(dropped):
        rec.record_dropped(name="g", target="relay", ts=T0 + 1 + i * 0.001)
    rec.stop(T0 + duration)
    return rec


def test_pass_is_exit_0():
    v = evaluate(parse_thresholds(SLA), run())
    assert (v.status, v.exit_code, v.passed) == ("pass", 0, True)
    assert [r.verdict for r in v.results] == ["pass", "pass"]
    assert v.reasons == []
    assert v.results[0].detail == "observed 200 ms, limit < 600 ms: 400 ms (66.7 %) to spare"


def test_breach_is_exit_1_and_says_by_how_much():
    v = evaluate(parse_thresholds(SLA), run(ms=712.4))
    assert (v.status, v.exit_code, v.passed) == ("fail", 1, False)
    latency = v.results[0]
    assert latency.verdict == "fail" and latency.observed == 712.4 and latency.unit == "ms"
    assert latency.samples == 1000
    assert latency.detail == "observed 712.4 ms, limit < 600 ms: over by 112.4 ms (18.7 %)"
    assert v.reasons == ["latency p(99) was 712.4 ms, limit < 600 ms (+18.7 %)"]


def test_success_rate_breach_reads_in_percent():
    v = evaluate(parse_thresholds(SLA), run(n=2000, failed=3))
    assert v.exit_code == 1
    assert v.results[1].verdict == "fail"
    assert v.reasons == ["success rate was 99.850 %, limit >= 99.950 % (-0.1 percentage points)"]
    assert v.results[1].detail.endswith("short by 0.1 percentage points")


def test_dropped_starts_count_against_success_and_failures():
    rec = run(n=1000, dropped=1)
    v = evaluate(parse_thresholds({"success": ["rate>=0.9995"], "failures": ["rate<0.0005"],
                                   "http_req_failed{expected_response:true}": ["rate<0.0005"]}), rec)
    success, failures, ok_only = v.results
    assert success.observed == pytest.approx(1000 / 1001) and success.verdict == "fail"
    assert failures.observed == pytest.approx(1 / 1001) and failures.verdict == "fail"
    assert ok_only.verdict == "pass"
    assert success.samples == 1001


def test_too_few_samples_is_exit_2():
    v = evaluate(parse_thresholds(SLA), run(n=40))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert {r.verdict for r in v.results} == {"insufficient"}
    assert v.results[0].detail == "only 40 requests, at least 100 needed to judge (observed 200 ms, limit < 600 ms)"
    assert any("proves nothing" in r for r in v.reasons)
    assert evaluate(parse_thresholds(SLA), run(n=40), min_samples=40).exit_code == 0


def test_a_breach_outranks_insufficient_data():
    th = parse_thresholds({"latency": ["p(99)<600"], "latency{stage:cool}": ["p(99)<600"]})
    rec = run(n=1000, ms=900, stages=[("surge", 0, 9.5), ("cool", 9.5, 10)])
    v = evaluate(th, rec)
    assert [r.verdict for r in v.results] == ["fail", "insufficient"]
    assert v.exit_code == 1


def test_requests_thresholds_have_no_sample_floor():
    v = evaluate(parse_thresholds({"requests": ["count>0"], "dropped": ["count==0"]}), run(n=5))
    assert [r.verdict for r in v.results] == ["pass", "pass"] and v.exit_code == 0
    v = evaluate(parse_thresholds({"requests": ["count>0"]}), Recorder(start_time=T0))
    assert v.results[0].verdict == "fail" and v.results[0].observed == 0


def test_request_rate_over_the_run_and_over_a_stage():
    rec = run(n=1000, duration=10.0, stages=[("a", 0, 5), ("b", 5, 10)])
    v = evaluate(parse_thresholds({"requests": ["rate>=100"], "requests{stage:a}": ["rps>=90"]}), rec)
    assert v.results[0].observed == pytest.approx(100.0) and v.results[0].unit == "req/s"
    in_a = rec.select({"stage": "a"}).requests
    assert 500 < in_a < 550 and v.results[1].observed == pytest.approx(in_a / 5)   # over the stage's 5 s
    assert v.exit_code == 0


def test_a_stage_that_has_not_begun_has_no_rate_yet():
    th = parse_thresholds({"requests{stage:surge}": [{"threshold": "rate>=10", "abort_on_fail": True}]})
    rec = run(n=200, duration=10.0, stages=[("ramp", 0, 10), ("surge", 10, 20)])
    (r,) = evaluate_live(th, rec, elapsed_s=5.0, min_samples=100)
    assert r.verdict == "insufficient" and r.observed is None
    assert abort_trigger([r], elapsed_s=5.0) is None


def test_unreachable_target_is_exit_2_even_with_failures():
    v = evaluate(parse_thresholds(SLA), run(ms=5000), RunFacts(target_reachable=False))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert "could not be reached" in v.reasons[0]


def test_saturated_generator_is_exit_2_and_explains_why():
    facts = RunFacts(generator_saturated=True, saturation_detail="load generator CPU at 97 % for 12 s")
    v = evaluate(parse_thresholds(SLA), run(ms=900), facts)
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert v.reasons[0] == ("the load generator was saturated: load generator CPU at 97 % for 12 s — the load "
                            "was not offered as planned, so this run proves nothing about the target")
    assert any("not attributable to the target" in r for r in v.reasons)


def test_an_abort_counts_as_failed_even_if_the_end_looks_fine():
    th = parse_thresholds({"latency": [{"threshold": "p(99)<600", "abort_on_fail": True}],
                           "success": ["rate>=0.9995"]})
    label = th[0].label()
    v = evaluate(th, run(ms=100), RunFacts(aborted_by=label))
    assert (v.status, v.exit_code) == ("fail", 1)
    assert v.results[0].verdict == "fail" and "aborted" in v.results[0].detail
    assert any(f"aborted early because {label} failed" in r for r in v.reasons)
    # aborted runs are short: insufficient data elsewhere does not turn the verdict into "invalid"
    v = evaluate(th, run(n=20, ms=900), RunFacts(aborted_by=label))
    assert v.exit_code == 1


def test_an_unknown_stage_is_named_in_the_detail():
    rec = run(stages=[("ramp", 0, 5), ("peak", 5, 10)])
    v = evaluate(parse_thresholds({"latency{stage:surge}": ["p(99)<600"]}), rec)
    assert v.exit_code == 2
    assert v.results[0].detail == "no stage named 'surge' in this run (known: ramp, peak)"
    assert v.results[0].observed is None and v.results[0].samples == 0


def test_every_latency_aggregation_is_observed():
    rec = Recorder(start_time=T0)
    for i in range(1, 201):
        rec.record(name="g", target="t", latency_ms=float(i), ok=True, status=200, ts=T0 + i / 100)
    rec.stop(T0 + 3)
    th = parse_thresholds({"latency": ["avg<101", "min>=1", "max<=200", "med<=100.1", "p(90)<181"]})
    v = evaluate(th, rec)
    assert [r.observed for r in v.results] == [pytest.approx(100.5), 1.0, 200.0, pytest.approx(100.0, abs=0.07),
                                               pytest.approx(180.0, abs=0.2)]
    assert v.exit_code == 0


def test_no_thresholds_passes_but_says_so():
    v = evaluate([], run())
    assert v.exit_code == 0 and v.reasons == ["no thresholds were defined, so nothing was checked"]


def test_live_evaluation_uses_elapsed_time_and_abort_respects_the_delay():
    th = parse_thresholds({"latency": [{"threshold": "p(99)<600", "abort_on_fail": True, "delay_abort_eval": "30s"}],
                           "requests": ["rate>=50"]})
    rec = Recorder(start_time=T0)
    for i in range(500):
        rec.record(name="g", target="t", latency_ms=800.0, ok=True, status=200, ts=T0 + i / 50)
    results = evaluate_live(th, rec, elapsed_s=10.0, min_samples=100)
    assert results[0].verdict == "fail"
    assert results[1].observed == pytest.approx(50.0) and results[1].verdict == "pass"
    assert abort_trigger(results, elapsed_s=10.0) is None
    assert abort_trigger(results, elapsed_s=30.0) is results[0]
    # 500 requests all at 800 ms already break P99 < 600 for any 1,000: conclusive, so it aborts.
    assert abort_trigger(evaluate_live(th, rec, 40.0, 1000), elapsed_s=40.0).verdict == "fail"
    few = Recorder(start_time=T0)
    for i in range(5):
        few.record(name="g", target="t", latency_ms=800.0, ok=True, status=200, ts=T0 + i)
    # 5 slow of 1,000 could still be the 1 % a P99 forgives: insufficient never aborts.
    assert abort_trigger(evaluate_live(th, few, 40.0, 1000), elapsed_s=40.0) is None


def test_a_small_run_fails_when_no_further_samples_could_save_it():
    th = parse_thresholds({"latency": ["p(99)<600", "p(50)<500"], "success": ["rate>=0.99"]})
    rec = Recorder(start_time=T0)
    for i in range(300):   # 300 of min 1,000: 20 slow ones are more than the 10 a P99 of 1,000 allows
        rec.record(name="g", target="t", latency_ms=900.0 if i < 20 else 100.0, ok=i >= 15, status=200, ts=T0 + i)
    p99, p50, success = evaluate(th, rec, min_samples=1000).results
    assert p99.verdict == "fail" and "even if" in p99.detail
    assert p50.verdict == "insufficient"           # 280 fast ones: a P50 could still go either way
    assert success.verdict == "fail"              # 15 failures > 1 % of 1,000
    rec2 = Recorder(start_time=T0)
    for i in range(300):
        rec2.record(name="g", target="t", latency_ms=900.0 if i < 10 else 100.0, ok=True, status=200, ts=T0 + i)
    assert [r.verdict for r in evaluate(th, rec2, min_samples=1000).results] == ["insufficient"] * 3


def test_nan_never_passes():
    v = evaluate(parse_thresholds({"success": ["rate>=0"]}), Recorder(start_time=T0), min_samples=0)
    assert v.results[0].observed is None and v.results[0].verdict == "insufficient"
    assert not math.isnan(v.exit_code) and v.exit_code == 2


def test_a_breach_larger_than_the_generators_stalls_is_the_targets() -> None:
    th = parse_thresholds({"latency": ["p(99)<600"], "success": ["rate>=0.9995"]})
    slow = run(n=2000, ms=700.0)
    strained = RunFacts(generator_saturated=True, saturation_detail="loop ran late", generator_worst_stall_ms=50.0)
    v = evaluate(th, slow, strained)
    assert v.exit_code == 1
    assert any("even after taking off the generator's worst stall (50 ms)" in r for r in v.reasons)
    # A stall of 150 ms could have made 700 ms out of 550: that breach proves nothing.
    v = evaluate(th, slow, RunFacts(generator_saturated=True, generator_worst_stall_ms=150.0))
    assert v.exit_code == 2 and v.status == "invalid"
