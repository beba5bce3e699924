import math

import pytest

from loadtest.confidence import ConfidenceOptions
from loadtest.gate import End, RunFacts, abort_trigger, judge
from loadtest.health import HealthSamples, assess
from loadtest.recorder import Recorder
from loadtest.thresholds import parse_thresholds

T0 = 1_700_000_000.0
SLA = {"latency": ["p(99)<600"], "success": ["rate>=0.9995"]}


def evaluate(thresholds, recorder, facts=None, min_samples=100, health=None, confidence=None):
    return judge(thresholds, recorder, health, facts, min_samples=min_samples, confidence=confidence)


def evaluate_live(thresholds, recorder, elapsed_s, min_samples):
    return judge(thresholds, recorder, facts=None, min_samples=min_samples, live=True, now_s=elapsed_s).results


def strained(*, hot=False, stall_ms=0.0):
    """Generator health: CPU pinned (hot) for the whole run, and one loop stall of stall_ms inside it."""
    samples = HealthSamples(cpu=[99.0 if hot else 20.0] * 20, machine_cpu=[50.0] * 20)
    samples.lag_ms = [1.0] * 40 + [stall_ms]
    samples.lag_at = [T0 + 0.25 * i for i in range(41)]
    return assess(samples)


def run(n=10_000, ms=200.0, failed=0, dropped=0, stages=(), duration=10.0):
    """n requests of ms each spread over the duration; the first `failed` fail; `dropped` starts dropped.
    10,000 by default: enough for 99.95 % success to pass with 95 % confidence (7,679 without a failure)."""
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
    assert v.results[0].margin.words == "400 ms (66.7 %) to spare"
    # Every request took 200 ms, so every rank the interval could rest on is 200 ms too.
    assert v.results[0].detail == "observed 200 ms, limit < 600 ms: 400 ms (66.7 %) to spare (95 % interval 200–200 ms)"


def test_breach_is_exit_1_and_says_by_how_much():
    v = evaluate(parse_thresholds(SLA), run(ms=712.4))
    assert (v.status, v.exit_code, v.passed) == ("fail", 1, False)
    latency = v.results[0]
    assert latency.verdict == "fail" and latency.observed == 712.4 and latency.unit == "ms"
    assert latency.samples == 10_000
    assert latency.detail.startswith("observed 712.4 ms, limit < 600 ms: over by 112.4 ms (18.7 %)")
    assert v.reason_texts == ["latency p(99) was 712.4 ms, limit < 600 ms (+18.7 %)"]
    assert (latency.margin.amount, latency.margin.unit) == (pytest.approx(112.4), "ms")


def test_success_rate_breach_reads_in_percent():
    v = evaluate(parse_thresholds(SLA), run(n=2000, failed=3))
    assert v.exit_code == 1
    assert v.results[1].verdict == "fail"
    assert v.reason_texts == ["success rate was 99.850 %, limit >= 99.95 % (-0.1 percentage points)"]
    # 3 failures in 2,000: the Wilson interval's top (99.949 %) is still under the limit, a breach with confidence.
    assert "short by 0.1 percentage points (95 % interval 99.560–99.949 %)" in v.results[1].detail


def test_dropped_starts_count_against_success_and_failures():
    rec = run(n=10_000, dropped=20)
    v = evaluate(parse_thresholds({"success": ["rate>=0.9995"], "failures": ["rate<0.0005"],
                                   "http_req_failed{expected_response:true}": ["rate<0.0005"]}), rec)
    success, failures, ok_only = v.results
    assert success.observed == pytest.approx(10_000 / 10_020) and success.verdict == "fail"
    assert failures.observed == pytest.approx(20 / 10_020) and failures.verdict == "fail"
    assert ok_only.verdict == "pass"
    assert success.samples == 10_020


def test_too_few_samples_is_exit_2():
    v = evaluate(parse_thresholds(SLA), run(n=40))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert {r.verdict for r in v.results} == {"insufficient"}
    assert v.results[0].detail == "only 40 requests, at least 100 needed to judge (observed 200 ms, limit < 600 ms)"
    assert v.results[0].needed_samples == 100
    assert any("proves nothing" in r for r in v.reason_texts)
    # Past a floor of 40 the interval judges: neither a P99 nor 99.95 % can be shown by 40 requests.
    v = evaluate(parse_thresholds(SLA), run(n=40), min_samples=40)
    assert v.exit_code == 2 and [r.verdict for r in v.results] == ["inconclusive", "inconclusive"]
    # A P99's upper bound exists from 368 requests on (0.99**368 <= 2.5 %); 99.95 % without a failure
    # needs 7,680 (n / (n + 1.96**2) >= 0.9995).
    assert 0.99 * 328 <= v.results[0].more_samples <= 1.01 * 328
    assert 0.99 * 7_640 <= v.results[1].more_samples <= 1.01 * 7_640
    assert evaluate(parse_thresholds(SLA), run(n=40), min_samples=40,
                    confidence=ConfidenceOptions(inconclusive="observed")).exit_code == 0


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
    v = evaluate(parse_thresholds(SLA), run(ms=5000), RunFacts(target_unreachable="nothing listens at :9"))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert "could not be reached (nothing listens at :9)" in v.reason_texts[0]


def test_connection_errors_everywhere_mean_unreachable():
    rec = Recorder(start_time=T0)
    for i in range(200):
        rec.record(name="g", target="t", latency_ms=1.0, ok=False, status="connection_error", ts=T0 + i / 100)
    v = evaluate(parse_thresholds(SLA), rec)
    assert v.exit_code == 2 and v.reasons[0].kind == "unreachable"


def test_saturated_generator_is_exit_2_and_explains_why():
    v = evaluate(parse_thresholds(SLA), run(ms=900), health=strained(hot=True, stall_ms=400))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert v.reason_texts[0] == ("the load generator was saturated: load generator CPU was at or above 90 % for "
                                 "100% of the run — the load was not offered as planned, so this run proves nothing "
                                 "about the target")
    assert any("not attributable to the target" in r for r in v.reason_texts)


def test_a_stall_inside_a_failed_latency_window_makes_the_run_invalid():
    # 650 ms measured, a 120 ms stall: 530 ms would have held, so the generator explains the breach.
    v = evaluate(parse_thresholds({"latency": ["p(99)<600"]}), run(n=2000, ms=650.0), health=strained(stall_ms=120))
    assert v.exit_code == 2 and v.reasons[0].kind == "generator" and "stalled for 120 ms" in v.reason_texts[0]
    # A 60 ms stall (under the 100 ms bar) explains nothing: the breach stands.
    assert evaluate(parse_thresholds({"latency": ["p(99)<600"]}), run(n=2000, ms=650.0),
                    health=strained(stall_ms=60)).exit_code == 1


@pytest.mark.parametrize("end, words", [(End.STOPPED, "stopped by hand at 39 s"), (End.INTERRUPTED, "interrupted"),
                                        (End.FAULT, "stopped by a fault of the suite at 39 s")])
def test_a_run_stopped_before_its_end_is_incomplete(end, words):
    facts = RunFacts(planned_s=70, elapsed_s=39, end=end)
    v = evaluate(parse_thresholds(SLA), run(), facts)
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert words in v.reason_texts[0] and "incomplete" in v.reason_texts[0]
    # ...and a breach measured before the stop is still not the target's verdict
    assert evaluate(parse_thresholds(SLA), run(ms=900), facts).exit_code == 2


@pytest.mark.parametrize("facts, kind", [
    (RunFacts(workers_expected=2, workers_lost=("w1",)), "workers"),
    (RunFacts(actions_failed=("midjurney-v7 {'outage': True}: HTTP 404",)), "action"),
    (RunFacts(harness_errors=("the embedded mock providers died",)), "harness"),
    (RunFacts(harness_errors=("the report could not be written to r: No space left on device (report.html)",),
              end=End.SCHEDULE), "harness"),
    (RunFacts(harness_errors=("Locust worker 1 of 2 (pid 7) was killed by SIGKILL at 6 s",), end=End.FAULT,
              workers_expected=2, workers_lost=("w1",)), "harness"),
])
def test_the_harness_failing_is_never_a_breach(facts, kind):
    v = evaluate(parse_thresholds(SLA), run(ms=900, failed=100), facts)
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert v.reasons[0].kind == kind
    # even beside a generator whose stalls cannot explain the breach
    assert evaluate(parse_thresholds(SLA), run(ms=900), facts, health=strained(hot=True, stall_ms=5)).exit_code == 2


def test_every_request_refused_alike_is_a_misconfigured_run():
    rec = Recorder(start_time=T0)
    for i in range(500):
        rec.record(name="g", target="t", latency_ms=3.0, ok=False, status=400, ts=T0 + i / 100)
    v = evaluate(parse_thresholds(SLA), rec, RunFacts(errors=(("HTTP 400: No connected db", 500),)))
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert v.reasons[0].kind == "misconfigured" and "No connected db" in v.reason_texts[0]
    # 429s are the target's rate limit, not a misconfiguration
    limited = Recorder(start_time=T0)
    for i in range(500):
        limited.record(name="g", target="t", latency_ms=3.0, ok=False, status=429, ts=T0 + i / 100)
    assert evaluate(parse_thresholds(SLA), limited).exit_code == 1


def test_a_small_key_pool_behind_429s_is_named():
    rec = Recorder(start_time=T0)
    for i in range(2000):
        rec.record(name="g", target="t", latency_ms=100.0, ok=i >= 100, status=200 if i >= 100 else 429,
                   ts=T0 + i / 200, attempts=3 if i < 300 else 1)
    v = evaluate(parse_thresholds(SLA), rec, RunFacts(key_pool=2))
    assert v.exit_code == 1
    assert any(r.kind == "note" and "2 API key(s)" in r.text for r in v.reasons)


def test_an_abort_counts_as_failed_even_if_the_end_looks_fine():
    th = parse_thresholds({"latency": [{"threshold": "p(99)<600", "abort_on_fail": True}],
                           "success": ["rate>=0.9995"]})
    label = th[0].label()
    v = evaluate(th, run(ms=100), RunFacts(aborted_by=label))
    assert (v.status, v.exit_code) == ("fail", 1)
    assert v.results[0].verdict == "fail" and "aborted" in v.results[0].detail
    assert any(f"aborted early because {label} failed" in r for r in v.reason_texts)
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
    v = evaluate(th, rec, confidence=ConfidenceOptions(inconclusive="observed"))
    assert [r.observed for r in v.results] == [pytest.approx(100.5), 1.0, 200.0, pytest.approx(100.0, abs=0.07),
                                               pytest.approx(180.0, abs=0.2)]
    assert v.exit_code == 0


def test_no_thresholds_passes_but_says_so():
    v = evaluate([], run())
    assert v.exit_code == 0 and v.reason_texts == ["no thresholds were defined, so nothing was checked"]


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
    # Mid-run, fewer than min_samples are not judged, however slow: the run goes on past them, and the
    # requests to come could still bring a P99 (or a rate) back within its limit.
    assert evaluate_live(th, rec, 40.0, 1000)[0].verdict == "insufficient"
    for i in range(500, 1000):
        rec.record(name="g", target="t", latency_ms=800.0, ok=True, status=200, ts=T0 + i / 50)
    # 1,000 all at 800 ms: judged, and the interval is wholly above the limit, so it aborts.
    trigger = abort_trigger(evaluate_live(th, rec, 40.0, 1000), elapsed_s=40.0)
    assert trigger is not None and trigger.verdict == "fail"
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
    assert p99.verdict == "fail" and "already beyond repair" in p99.detail
    assert p50.verdict == "insufficient"           # 280 fast ones: a P50 could still go either way
    assert success.verdict == "fail"              # 15 failures > 1 % of 1,000
    rec2 = Recorder(start_time=T0)
    for i in range(300):
        rec2.record(name="g", target="t", latency_ms=900.0 if i < 10 else 100.0, ok=True, status=200, ts=T0 + i)
    assert [r.verdict for r in evaluate(th, rec2, min_samples=1000).results] == ["insufficient"] * 3


def test_mid_run_a_failure_in_the_first_requests_is_never_beyond_repair():
    # A capacity step at 580 req/s for 20 s, 2 s in: one failure in 528 requests. Were the run to end at
    # min_samples (1,000), 99.9 % could not reach 99.95 %; but it goes on to ~11,600, where one failure is
    # 99.99 %. Mid-run that is "not yet judged", so abort_on_fail does not stop the step on it.
    th = parse_thresholds({"success": [{"threshold": "rate>=0.9995", "abort_on_fail": True}]})
    rec = Recorder(start_time=T0)
    for i in range(528):
        rec.record(name="g", target="t", latency_ms=45.0, ok=i != 100, status=200 if i != 100 else 500,
                   ts=T0 + i * 2 / 528)
    (live,) = evaluate_live(th, rec, 2.0, 1000)
    assert live.verdict == "insufficient" and abort_trigger([live], elapsed_s=2.0) is None
    # The same requests as the whole of a run are beyond repair: no further requests will come.
    (end,) = evaluate(th, rec, min_samples=1000).results
    assert end.verdict == "fail" and "already beyond repair" in end.detail


def test_nan_never_passes():
    v = evaluate(parse_thresholds({"success": ["rate>=0"]}), Recorder(start_time=T0), min_samples=0)
    assert v.results[0].observed is None and v.results[0].verdict == "insufficient"
    assert not math.isnan(v.exit_code) and v.exit_code == 2


def test_a_breach_larger_than_the_generators_stalls_is_the_targets() -> None:
    th = parse_thresholds({"latency": ["p(99)<600"], "success": ["rate>=0.9995"]})
    slow = run(n=2000, ms=700.0)
    v = evaluate(th, slow, health=strained(hot=True, stall_ms=50.0))
    assert v.exit_code == 1
    assert any("even after taking off the generator's worst stall (50 ms)" in r for r in v.reason_texts)
    # A stall of 150 ms could have made 700 ms out of 550: that breach proves nothing.
    v = evaluate(th, slow, health=strained(hot=True, stall_ms=150.0))
    assert v.exit_code == 2 and v.status == "invalid"


# -- time to first image ---------------------------------------------------------------------------

def streamed(n=1000, first_ms=300.0, ms=2000.0, streams=None, stages=(), duration=10.0, failed=0):
    """n requests of ms each; the first `streams` (all by default) also saw their first image after first_ms."""
    streams = n if streams is None else streams
    rec = Recorder(stages=stages, start_time=T0)
    for i in range(n):
        ok = i >= failed
        rec.record(name="g", target="gpt-image-1-mini", latency_ms=ms, ok=ok, status=200 if ok else 500,
                   ts=T0 + 2.5 + i * (duration - 3) / max(n, 1), first_image_ms=first_ms if i < streams else None)
    rec.stop(T0 + duration)
    return rec


def test_first_image_is_judged_like_latency_beside_it():
    th = parse_thresholds({"first_image": ["p(95)<1000", "avg<500"], "latency": ["p(95)<3000"]})
    v = evaluate(th, streamed())
    assert v.exit_code == 0 and [r.verdict for r in v.results] == ["pass", "pass", "pass"]
    first = v.results[0]
    assert (first.observed, first.samples, first.unit) == (300.0, 1000, "ms")
    assert first.detail == "observed 300 ms, limit < 1,000 ms: 700 ms (70.0 %) to spare"
    # The whole generation (2 s) is not what first_image measures: a slow first image fails on its own.
    v = evaluate(th, streamed(first_ms=1200.0))
    assert v.exit_code == 1 and [r.verdict for r in v.results] == ["fail", "fail", "pass"]
    assert v.reason_texts[0] == "first_image p(95) was 1,200 ms, limit < 1,000 ms (+20.0 %)"


def test_first_image_counts_only_generations_that_received_one():
    # 400 streamed of 1,000 requests: 400 samples, so a floor of 500 leaves it insufficient, and it says why.
    v = evaluate(parse_thresholds({"first_image": ["p(95)<1000"]}), streamed(streams=400), min_samples=500)
    (r,) = v.results
    assert (r.verdict, r.samples, r.needed_samples) == ("insufficient", 400, 500) and v.exit_code == 2
    # Nothing streamed at all: no observation, in words that point at the cause.
    (r,) = evaluate(parse_thresholds({"first_image": ["p(95)<1000"]}), streamed(streams=0)).results
    assert r.verdict == "insufficient" and r.observed is None
    assert "none of the 1,000 requests received a streamed image" in r.detail


def test_a_first_image_breach_beyond_repair_fails_a_short_run():
    # 60 first images all at 3 s: even 100 samples whose other 40 were instant keep p(50) at 3 s.
    v = evaluate(parse_thresholds({"first_image": ["med<1500"]}), streamed(n=60, first_ms=3000.0))
    (r,) = v.results
    assert r.verdict == "fail" and "already beyond repair" in r.detail and v.exit_code == 1
    # ...while p(99) of 60 samples could still be met by 40 fast ones: that is insufficient, not a failure.
    (r,) = evaluate(parse_thresholds({"first_image": ["p(30)<1500"]}), streamed(n=60, first_ms=3000.0)).results
    assert r.verdict == "insufficient"


def test_first_image_per_stage_and_for_successful_generations_only():
    rec = Recorder(stages=[("a", 0, 5), ("b", 5, 10)], start_time=T0)
    for i in range(400):
        ok = i % 4 != 0
        rec.record(name="g", target="t", latency_ms=1000.0, ok=ok, status=200 if ok else 500,
                   ts=T0 + 1.0 + i * 0.025, first_image_ms=200.0 if i < 200 else 700.0)   # starts at 0.025 i s
    rec.stop(T0 + 10)
    th = parse_thresholds({"first_image{stage:a}": ["max<=200"], "first_image{stage:b}": ["min>=700"],
                           "first_image{expected_response:true}": ["med<=700"]})
    v = evaluate(th, rec)
    assert [r.verdict for r in v.results] == ["pass", "pass", "pass"], [r.detail for r in v.results]
    assert [r.samples for r in v.results] == [rec.select({"stage": "a"}).first_image.count,
                                              rec.select({"stage": "b"}).first_image.count, 300]


def test_a_generator_stall_can_explain_a_first_image_breach():
    # 650 ms first images against 600, a 120 ms stall inside the run: the generator, not the target.
    th = parse_thresholds({"first_image": ["p(99)<600"]})
    v = evaluate(th, streamed(n=2000, first_ms=650.0), health=strained(stall_ms=120))
    assert v.exit_code == 2 and v.reasons[0].kind == "generator"
    assert "enough to explain first_image p(99) < 600 ms failing" in v.reason_texts[0]
