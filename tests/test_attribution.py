"""The attribution rule: a failed latency ceiling judged against the provider side's same figure."""

import pytest
from hdrh.histogram import HdrHistogram

from loadtest.attribution import GENERATOR, MOCK_LATE, TARGET, ProviderSide
from loadtest.gate import End, GeneratorAbort, RunFacts, abort_trigger, attributions, generator_abort_trigger, judge
from loadtest.health import HealthSamples, assess
from loadtest.recorder import Recorder
from loadtest.summary import threshold_doc
from loadtest.thresholds import parse_thresholds
from mockprovider.hdr import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES
from mockprovider.record_client import Histogram, Series, Summary, Window

T0 = 1_700_000_000.0
P99 = parse_thresholds({"latency": ["p(99)<600"]})


def histogram(values_ms):
    hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for v in values_ms:
        hdr.record_value(int(v * 1000))
    return Histogram.from_json({"count": len(values_ms), "sum": float(sum(values_ms)), "min": min(values_ms),
                                "max": max(values_ms), "hdr": hdr.encode()})


def record(values_ms, *, provider="relay", window="steady", intended_ms=None):
    """A provider-side record whose `provider` answered every request of `window` in values_ms (and meant to
    answer in intended_ms: by default, the same)."""
    h = histogram(values_ms)
    series = Series(provider=provider, model="midjourney-v7", window=window, outcome="ok", api="relay",
                    requests=len(values_ms), status={200: len(values_ms)}, served={}, images_asked=len(values_ms),
                    images_delivered=len(values_ms), polls=0, total=h, queue=histogram([0.01] * len(values_ms)),
                    service=h, intended=histogram(intended_ms) if intended_ms is not None else h)
    return Summary(record_id="r1", worker="1", started_at=T0, now=T0 + 10, window=window, seq=len(values_ms),
                   requests=len(values_ms), stale=0, windows=[Window(window, T0, 0.0, 1)], series=[series],
                   seconds=[], raw={"cap": 0})


def client(ms, n=2000, slow_share=0.02, fast_ms=45.0):
    """n generations: the slowest slow_share took `ms`, the rest fast_ms (so P99 is `ms`)."""
    rec = Recorder(stages=[("steady", 0.0, 10.0)], start_time=T0)
    slow = int(n * slow_share)
    for i in range(n):
        rec.record(name="g", target="relay", latency_ms=ms if i < slow else fast_ms, ok=True, status=200,
                   ts=T0 + 1 + i * 8 / n)
    rec.stop(T0 + 10)
    return rec


def health(*, cpu=20.0, machine=30.0, stall_ms=1.0, machine_wide=False):
    samples = HealthSamples(cpu=[cpu] * 20, machine_cpu=[machine] * 20, lag_ms=[1.0] * 40 + [stall_ms],
                            lag_at=[T0 + 0.25 * i for i in range(41)])
    return assess(samples, machine_wide=machine_wide)


def provider_fast(n=2000):
    # 98 % at 40 ms, 2 % at 90 ms: P99 90 ms, the relay's own answers when the generator was the bottleneck.
    return ProviderSide(record([40.0] * (n - n // 50) + [90.0] * (n // 50)), ("relay",))


def test_a_breach_the_provider_side_did_not_see_on_a_hot_generator_is_invalid_not_fail():
    # The 1,700-user flash sale: client P99 799 ms, the relay's own P99 90 ms, CPU hot half the run
    # and a 117 ms stall, which the stall rule alone took for the target's breach.
    hot = health(cpu=99.0, stall_ms=117.0)
    assert judge(P99, client(799.2), hot, min_samples=100).exit_code == 1     # the old, one-ended verdict
    v = judge(P99, client(799.2), hot, min_samples=100, provider=provider_fast())
    assert (v.status, int(v.exit_code)) == ("invalid", 2)
    queued = [r.text for r in v.reasons if r.kind == "generator" and "queueing" in r.text]
    assert len(queued) == 1
    assert "the provider answered p(99) 90 ms, the client saw 799.2 ms, CPU 99 %" in queued[0], queued[0]


def test_cpu_peaks_under_the_invalidating_share_still_count_as_strain():
    # The 2,500-user case: the run was stopped early, so CPU was hot for under 20 % of the samples
    # (health alone finds nothing), yet it peaked at 98 %, and the provider side held.
    samples = HealthSamples(cpu=[98.0] * 2 + [40.0] * 18, machine_cpu=[60.0] * 20, lag_ms=[1.0] * 40,
                            lag_at=[T0 + 0.25 * i for i in range(40)])
    h = assess(samples)
    assert not h.reasons
    v = judge(P99, client(799.2), h, min_samples=100, provider=provider_fast())
    assert int(v.exit_code) == 2 and v.reasons[0].kind == "generator" and "CPU 98 %" in v.reason_texts[0]


def test_both_sides_breaching_is_the_targets_even_on_a_hot_generator():
    side = ProviderSide(record([40.0] * 1900 + [750.0] * 100), ("relay",))
    v = judge(P99, client(799.2), health(cpu=99.0, stall_ms=117.0), min_samples=100, provider=side)
    assert (v.status, int(v.exit_code)) == ("fail", 1)
    breach = [r.text for r in v.reasons if r.kind == "breach"]
    assert len(breach) == 1 and "the provider side breached too: it answered p(99) 750 ms" in breach[0], breach


def late_mock():
    # The relay's answers came out at P99 750 ms, but its profile meant 90 ms: its timers woke late.
    return ProviderSide(record([40.0] * 1900 + [750.0] * 100, intended_ms=[40.0] * 1960 + [90.0] * 40), ("relay",))


def test_a_provider_side_that_breached_only_by_running_late_is_invalid_not_the_targets_fail():
    # The generator was calm: the starved party was the mock on the same machine, not the client.
    v = judge(P99, client(799.2), health(), min_samples=100, provider=late_mock())
    assert (v.status, int(v.exit_code)) == ("invalid", 2), v.reason_texts
    mock = [r.text for r in v.reasons if r.kind == "mock"]
    assert len(mock) == 1 and "its profile meant p(99) 90 ms" in mock[0]
    assert "it answered 750 ms over 2,000 requests" in mock[0]
    assert "proves nothing about the target" in mock[0]
    assert not any(r.kind == "breach" and "the target's" in r.text for r in v.reasons)
    # The same record whose profile breached too is the target's, as before.
    side = ProviderSide(record([40.0] * 1900 + [750.0] * 100, intended_ms=[40.0] * 1900 + [700.0] * 100), ("relay",))
    assert int(judge(P99, client(799.2), health(), min_samples=100, provider=side).exit_code) == 1
    # A record with no intended time (an older mock's) reads as empty: the breach stays the target's.
    old = record([40.0] * 1900 + [750.0] * 100)
    old.series[0].__dict__["intended"] = Histogram()
    v = judge(P99, client(799.2), health(), min_samples=100, provider=ProviderSide(old, ("relay",)))
    assert int(v.exit_code) == 1


def test_a_late_mocks_breach_never_aborts_a_run_as_the_targets():
    v = live(client(799.2), health(), late_mock())
    assert abort_trigger(v.results, 9.0) is None
    stop = generator_abort_trigger(v.results, 9.0)
    assert stop is v.results[0] and stop.attribution is not None and stop.attribution.kind == MOCK_LATE


def test_a_provider_side_that_held_and_a_calm_generator_leave_the_breach_standing_with_the_gap_named():
    v = judge(P99, client(799.2), health(), min_samples=100, provider=provider_fast())
    assert int(v.exit_code) == 1
    assert "the gap lies between the provider and the client" in v.reason_texts[0]


def test_with_nothing_but_loopback_between_the_ends_a_gap_with_no_strain_is_this_machines():
    # The target is the mock itself on 127.0.0.1, no gateway, no connection toxic: no network or gateway can
    # be the gap, so a calm generator's breach still proves nothing about the target.
    facts = RunFacts(direct=True)
    v = judge(P99, client(799.2), health(), facts, min_samples=100, provider=provider_fast())
    assert (v.status, int(v.exit_code)) == ("invalid", 2), v.reason_texts
    assert "nothing but this machine's loopback lies between the two ends" in v.reason_texts[0], v.reason_texts
    # A breach the provider side shares is the target's all the same.
    side = ProviderSide(record([40.0] * 1900 + [750.0] * 100), ("relay",))
    assert int(judge(P99, client(799.2), health(), facts, min_samples=100, provider=side).exit_code) == 1
    # And drops the target did not hold, with a calm generator.
    direct_pool = RunFacts(planned_s=20.0, elapsed_s=20.0, open_pool=(600, 1150.0), direct=True)
    v = judge(DROPS, open_run(), health(), direct_pool, min_samples=100, provider=provider_fast())
    assert int(v.exit_code) == 2 and any("this machine's loopback" in t for t in v.reason_texts), v.reason_texts


def test_a_provider_side_that_held_only_narrowly_decides_nothing():
    # 580 ms of a 600 ms limit is within the 10 % margin: the generator's own rules decide, as before.
    side = ProviderSide(record([40.0] * 1900 + [580.0] * 100), ("relay",))
    found = attributions(judge(P99, client(799.2), None, min_samples=100).results, side, health(cpu=99.0))
    assert [a.kind for a in found.values()] == ["undecided"]
    calm = judge(P99, client(799.2), health(), min_samples=100, provider=side)
    assert int(calm.exit_code) == 1 and "held narrowly" in calm.reason_texts[0]


@pytest.mark.parametrize("filters, providers, expected", [
    ({"stage": "steady"}, ("relay",), GENERATOR), ({"stage": "other"}, ("relay",), None),
    ({"target": "relay"}, ("relay",), GENERATOR), ({"target": "relay"}, ("dall-e-4",), None)])
def test_a_thresholds_filters_select_the_provider_side_it_is_compared_with(filters, providers, expected):
    key = "latency{" + ",".join(f"{k}:{v}" for k, v in filters.items()) + "}"
    t = parse_thresholds({key: ["p(99)<600"]})
    rec = client(799.2)
    if "other" in filters.values():
        rec = Recorder(stages=[("other", 0.0, 10.0)], start_time=T0)
        for i in range(2000):
            rec.record(name="g", target="relay", latency_ms=799.2 if i < 40 else 45.0, ok=True, status=200,
                       ts=T0 + 1 + i * 0.004)
        rec.stop(T0 + 10)
    failed = [r for r in judge(t, rec, None, min_samples=100).results if r.verdict == "fail"]
    assert len(failed) == 1
    side = ProviderSide(provider_fast().record, providers)
    found = attributions(failed, side, health(cpu=99.0))
    assert [a.kind for a in found.values()] == ([expected] if expected else [])


def test_the_provider_figure_follows_the_thresholds_aggregation():
    side = provider_fast()
    for expr, value in (("p(50)<600", 40.0), ("max<600", 90.0), ("avg<600", 41.0)):
        got = side.figure(parse_thresholds({"latency": [expr]})[0])
        assert got is not None and got[1] == 2000
        assert got[0] == pytest.approx(value, rel=2e-3), expr    # HDR's 3 significant figures
    assert side.figure(parse_thresholds({"first_image": ["p(99)<600"]})[0]) is None
    assert TARGET == "target"


def test_several_generator_processes_are_judged_by_the_machines_cpu():
    # Two workers at 60 % of a core each look fine alone; the box at 97 % is full.
    assert not health(cpu=60.0, machine=97.0).reasons
    h = health(cpu=60.0, machine=97.0, machine_wide=True)
    assert h.reasons == ("the machine's CPU (all cores) was at or above 90 % for 100% of the run",)
    assert h.figures()["machine_cpu_hot_share"] == 1.0


# --- dropped starts: whose VUs were they? -----------------------------------------------------------------

DROPS = parse_thresholds({"dropped": ["rate<0.001"], "success": ["rate>=0.9995"], "latency": ["p(50)<600"]})


def open_run(dropped=800, n=20_000, errors=0):
    """An open-model run at 1,150 req/s whose answers took 45 ms client-side, with some starts dropped."""
    rec = Recorder(stages=[("hold", 0.0, 20.0)], start_time=T0)
    for i in range(n):
        rec.record(name="g", target="relay", latency_ms=45.0, ok=i >= errors, status=200 if i >= errors else 500,
                   ts=T0 + 1 + i * 18 / n)
    for i in range(dropped):
        rec.record_dropped(name="g", target="relay", ts=T0 + 15 + i * 4 / dropped)
    rec.stop(T0 + 20)
    return rec


OPEN_POOL = RunFacts(planned_s=20.0, elapsed_s=20.0, open_pool=(600, 1150.0))


def test_starts_dropped_while_the_target_answered_fast_are_the_generators_on_a_strained_generator():
    # The relay's own slowest answers (90 ms) keep ~104 of 600 VUs busy at 1,150 req/s: it did not hold them.
    stalled = health(stall_ms=107.0)
    v = judge(DROPS, open_run(), stalled, OPEN_POOL, min_samples=100, provider=provider_fast())
    assert (v.status, int(v.exit_code)) == ("invalid", 2), v.reason_texts
    whose = {r.threshold.metric: r.attribution.kind for r in v.results if r.attribution is not None}
    assert whose == {"dropped": GENERATOR, "success": GENERATOR}, whose
    text = next(r.text for r in v.reasons if r.kind == "generator" and r.text.startswith("dropped rate"))
    assert "keep about 104 of the 600 VUs busy" in text and "event loop stalled for 107 ms" in text, text
    # One-ended, as before: the target's FAIL.
    assert int(judge(DROPS, open_run(), stalled, OPEN_POOL, min_samples=100).exit_code) == 1


def test_starts_dropped_with_a_calm_generator_stand_with_the_gap_named():
    v = judge(DROPS, open_run(), health(), OPEN_POOL, min_samples=100, provider=provider_fast())
    assert int(v.exit_code) == 1
    assert any("held between the provider and the client" in t for t in v.reason_texts), v.reason_texts


def test_starts_dropped_because_the_target_was_slow_are_its_own():
    # Its p(99.9) of 750 ms at 1,150 req/s keeps ~860 VUs busy: more than the 600 there are.
    side = ProviderSide(record([40.0] * 1900 + [750.0] * 100), ("relay",))
    v = judge(DROPS, open_run(), health(stall_ms=107.0), OPEN_POOL, min_samples=100, provider=side)
    assert (v.status, int(v.exit_code)) == ("fail", 1), v.reason_texts
    assert any("the target's own time held the VUs" in t for t in v.reason_texts), v.reason_texts


def test_a_success_rate_that_fails_on_its_own_answers_is_not_the_drops_to_decide():
    # 1 % of the answers were 500s: the success rate fails without its drops too, so it stays the target's.
    v = judge(DROPS, open_run(errors=200), health(stall_ms=107.0), OPEN_POOL, min_samples=100,
              provider=provider_fast())
    success = next(r for r in v.results if r.threshold.metric == "success")
    assert success.verdict == "fail" and success.attribution is None
    dropped = next(r for r in v.results if r.threshold.metric == "dropped")
    assert dropped.attribution is not None and dropped.attribution.kind == GENERATOR
    # Without the open model's pool (a closed model), drops are not judged by both ends.
    closed = judge(DROPS, open_run(), health(stall_ms=107.0), RunFacts(), min_samples=100, provider=provider_fast())
    assert all(r.attribution is None for r in closed.results if r.threshold.metric != "latency")


# --- live: abort_on_fail and the SLA view judge with both ends too ------------------------------------

ABORTING = parse_thresholds({"latency": [{"threshold": "p(99)<600", "abort_on_fail": True,
                                          "delay_abort_eval": "5s"}],
                             "success": [{"threshold": "rate>=0.99", "abort_on_fail": True}]})


def peaked():
    """The 2,500-user case mid-run: CPU peaked at 98 % but hot for under 20 % of the samples, no stall."""
    return assess(HealthSamples(cpu=[98.0] * 2 + [40.0] * 18, machine_cpu=[60.0] * 20, lag_ms=[1.0] * 40,
                                lag_at=[T0 + 0.25 * i for i in range(40)]))


def live(rec, health_report=None, provider=None, facts=None):
    return judge(ABORTING, rec, health_report, facts, min_samples=100, live=True, now_s=9.0, provider=provider)


def test_a_breach_only_the_client_saw_on_a_strained_generator_never_aborts_as_the_targets():
    rec = client(799.2)
    h = peaked()
    assert not h.reasons     # the generator-health rules alone find nothing to object to
    # Judged from the client side alone (as before, and as with no record to read), it aborts as a FAIL.
    one_ended = live(rec, h)
    assert abort_trigger(one_ended.results, 9.0) is one_ended.results[0]
    both = live(rec, h, provider_fast())
    assert abort_trigger(both.results, 9.0) is None
    mine = generator_abort_trigger(both.results, 9.0)
    assert mine is both.results[0] and mine.attribution is not None and mine.attribution.kind == GENERATOR
    assert (both.status, int(both.exit_code)) == ("invalid", 2)
    assert [r.kind for r in both.reasons][:1] == ["generator"] and "own queueing" in both.reason_texts[0]
    assert generator_abort_trigger(both.results, 4.0) is None       # before delay_abort_eval: nothing yet


def test_what_the_live_gate_stops_on_the_end_judges_invalid_even_without_the_record_then():
    rec = client(799.2)
    both = live(rec, peaked(), provider_fast())
    mine = generator_abort_trigger(both.results, 9.0)
    assert mine is not None and mine.attribution is not None
    facts = RunFacts(planned_s=10.0, elapsed_s=9.0, end=End.ABORT,
                     generator_abort=GeneratorAbort(mine.threshold.label(), 9.0, mine.attribution.text))
    for side in (provider_fast(), None):       # None: the record could not be read at the end
        v = judge(ABORTING, rec, peaked(), facts, min_samples=100, provider=side)
        assert (v.status, int(v.exit_code)) == ("invalid", 2), v.reason_texts
        stops = [t for t in v.reason_texts if t.startswith("abort_on_fail stopped the run at 9 s on the generator")]
        assert len(stops) == 1 and "the provider answered p(99) 90 ms" in stops[0]
        # ... said once, not again by the end's own attribution of the same threshold
        assert sum("own queueing" in t for t in v.reason_texts) == 1
    # Without the stop on record, the same run with the record unread at the end would be the target's FAIL.
    assert int(judge(ABORTING, rec, peaked(), RunFacts(aborted_by=mine.threshold.label(), end=End.ABORT),
                     min_samples=100).exit_code) == 1


def test_a_breach_the_provider_side_shares_aborts_as_the_targets_as_before():
    side = ProviderSide(record([40.0] * 1900 + [750.0] * 100), ("relay",))
    v = live(client(799.2), peaked(), side)
    trigger = abort_trigger(v.results, 9.0)
    assert trigger is v.results[0] and trigger.attribution is not None and trigger.attribution.kind == TARGET
    assert generator_abort_trigger(v.results, 9.0) is None and int(v.exit_code) == 1


def test_a_calm_generator_leaves_the_abort_standing_with_the_gap_named():
    v = live(client(799.2), health(), provider_fast())
    trigger = abort_trigger(v.results, 9.0)
    assert trigger is v.results[0] and trigger.attribution is not None and trigger.attribution.kind == "between"


def test_a_failing_success_rate_aborts_as_before_whatever_the_provider_side_says():
    rec = Recorder(stages=[("steady", 0.0, 10.0)], start_time=T0)
    for i in range(2000):
        rec.record(name="g", target="relay", latency_ms=45.0, ok=i % 10 != 0, status=200 if i % 10 else 500,
                   ts=T0 + 1 + i * 0.004)
    v = live(rec, peaked(), provider_fast())
    trigger = abort_trigger(v.results, 9.0)
    assert trigger is not None and trigger.threshold.metric == "success" and trigger.attribution is None


def test_every_latency_threshold_carries_the_provider_sides_figure_and_the_gap():
    v = live(client(799.2), peaked(), provider_fast())
    doc = threshold_doc(v.results[0]).provider_side
    assert doc is not None and doc.samples == 2000 and doc.attribution == GENERATOR
    assert doc.observed == pytest.approx(90.0, rel=2e-3)          # HDR's 3 significant figures
    assert doc.gap == pytest.approx(v.results[0].observed - doc.observed, abs=2e-3)
    assert doc.attribution_text is not None and "own queueing" in doc.attribution_text
    assert threshold_doc(v.results[1]).provider_side is None          # success has no provider-side figure
    # A passing latency threshold shows both ends too, with no attribution.
    passing = judge(parse_thresholds({"latency": ["p(50)<600"]}), client(799.2), None, min_samples=100,
                    provider=provider_fast())
    side = threshold_doc(passing.results[0]).provider_side
    assert passing.results[0].passed and side is not None and side.attribution is None
    assert side.observed == pytest.approx(40.0, rel=2e-3)
    assert side.gap == pytest.approx(passing.results[0].observed - side.observed, abs=2e-3)


def test_every_report_shows_a_thresholds_provider_side_and_whose_breach_it_is(tmp_path):
    from datetime import UTC, datetime

    from loadtest.report import console, markdown
    from loadtest.report.html import write_html
    from loadtest.summary import LoadDoc, RunDoc, ScenarioDoc, StageWindow, TargetDoc, build_summary

    rec = client(799.2)
    v = judge(parse_thresholds({"latency": ["p(99)<600"], "success": ["rate>=0.99"]}), rec, peaked(), None,
              min_samples=100, provider=provider_fast())
    summary = build_summary(
        scenario=ScenarioDoc(name="flash_sale", load_model="closed", planned_s=10.0, min_samples=100,
                             stages=[StageWindow(name="steady", start_s=0.0, end_s=10.0)]),
        target=TargetDoc(name="relay", api="relay", base_url="http://127.0.0.1:8000/relay", model="midjourney-v7"),
        recorder=rec, verdict=v, health=None, run=RunDoc(end="schedule", planned_s=10.0, elapsed_s=10.0),
        load=LoadDoc(model="closed", peak_users=1700), started_at=datetime.fromtimestamp(T0, UTC), duration_s=10.0)
    words = "90.0 ms, gap +709.2 ms: the generator's"
    md = markdown.render(summary)
    assert "| Threshold | Observed | Provider side |" in md and words in md
    # The success rate has no provider-side figure: its cell says so.
    success_row = next(line for line in md.splitlines() if line.startswith("| success"))
    assert success_row.split(" | ")[2] == "—"
    text = console.render(summary)
    assert words in text and "provider side" in text
    page = write_html(summary, tmp_path).read_text(encoding="utf-8")
    assert "provider side</th>" in page and words.replace("'", "&#x27;") in page


def test_nothing_lies_between_only_for_the_mock_itself_on_loopback_with_no_gateway_or_connection_toxic():
    from dataclasses import replace
    from types import SimpleNamespace

    from loadtest.locust.run import SuiteRun
    from loadtest.scenario import Action, load_scenario

    s = load_scenario("flash_sale")

    def direct(scenario=s, mock_url="http://127.0.0.1:8000", host=None):
        return SuiteRun._nothing_between(SimpleNamespace(scenario=scenario, mock_url=mock_url), host)

    assert direct()
    assert not direct(mock_url="http://10.0.0.2:8000")                      # another host: a network between
    assert not direct(host="http://127.0.0.1:4000")                         # --host: something else is driven
    slowed = replace(s, mock=replace(s.mock, sets=("relay.bandwidth=0.5",)))
    assert not direct(slowed)                                                # a connection toxic on
    assert direct(replace(s, mock=replace(s.mock, sets=("relay.bandwidth=0", "relay.error_rate=0.01"))))
    acted = replace(s, actions=(Action(at_s=5.0, provider="relay", settings={"slicer": 1.0}),))
    assert not direct(acted)
