"""A [sut] gateway's figures from synthetic ends: the per-stage figures, capability drift, the thresholds on gateway
metrics the gate judges, and what summary.md, junit.xml and report.html say of them. Fast: no process starts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hdrh.histogram import HdrHistogram

from loadtest.gate import judge
from loadtest.gateway import describe_gateway
from loadtest.gateway_figures import GatewayFacts, asked_pixels, calls_per_request
from loadtest.recorder import Recorder
from loadtest.report import junit, markdown
from loadtest.report.html import write_html
from loadtest.report.plots import gateway_over_time_figure
from loadtest.request_samples import RequestSamples
from loadtest.summary import ActionDoc, LoadDoc, RunDoc, ScenarioDoc, StageWindow, TargetDoc, build_summary
from loadtest.thresholds import ThresholdError, format_value, parse_thresholds
from mockprovider.hdr import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES
from mockprovider.profile import load_profiles
from mockprovider.record_client import Entry, Histogram, Series, Summary, Window

T0 = 1_700_000_000.0
STAGES = [("before", 0.0, 10.0), ("outage", 10.0, 20.0)]
SQUARE = 1024 * 1024


def histogram(values_ms: list[float]) -> Histogram:
    hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for v in values_ms:
        hdr.record_value(int(v * 1000))
    return Histogram.from_json({"count": len(values_ms), "sum": float(sum(values_ms)), "min": min(values_ms),
                                "max": max(values_ms), "hdr": hdr.encode()})


def series(model: str, window: str, outcome: str, values_ms: list[float], status: int,
           pixels: dict[int, int] | None = None) -> Series:
    n = len(values_ms)
    h = histogram(values_ms)
    ok = outcome == "ok"
    return Series(provider=model, model=model, window=window, outcome=outcome, api="openai", requests=n,
                  status={status: n}, served={model: n}, images_asked=n, images_delivered=n if ok else 0, polls=0,
                  total=h, queue=histogram([0.01] * n), service=h, pixels=pixels if pixels is not None else {SQUARE: n})


def entry(seq: int, model: str, window: str, outcome: str, status: int, at: float, total_ms: float,
          rid: str | None) -> Entry:
    return Entry(seq=seq, worker="1", api="openai", provider=model, model=model, served_model=model, window=window,
                 outcome=outcome, status=status, arrived_at=at, arrived_loop=at, queue_ms=0.0, service_ms=total_ms,
                 total_ms=total_ms, drawn_ms=total_ms, key=None, correlation_id=rid, trace_id=None, parent_id=None,
                 images_asked=1, images_delivered=1 if outcome == "ok" else 0, polls=0)


def run_ends(*, drifted: int = 40, orphans: int = 1, one_by_one: bool = False,
             fallback_ids: bool = True) -> tuple[Recorder, GatewayFacts]:
    """Before: 200 requests, each one upstream call to dall-e-4 at 40 ms; the client waited 70 ms (30 ms overhead).
    Outage: 200 requests, each first met a 503 from dall-e-4, then dall-e-4-flash served it at 20 ms (client 80 ms);
    `drifted` of those answers were for 512x512 images. One upstream call came after the run had ended.
    `one_by_one`: the recorder keeps each request under its id (a [sut] run); `fallback_ids`: the gateway
    passed the id on to the fallback too (else only to dall-e-4, as a route that drops headers would)."""
    rec = Recorder(stages=STAGES, start_time=T0, samples=RequestSamples() if one_by_one else None)
    rec.set_users(10, ts=T0 + 0.5)
    for i in range(200):
        rec.record(name="generate", target="dall-e-4", latency_ms=70.0, ok=True, status=200, ts=T0 + 1 + i * 0.04,
                   request_id=f"lt1a-{i}")
    for i in range(200):
        rec.record(name="generate", target="dall-e-4", latency_ms=80.0, ok=i % 50 != 0,
                   status=200 if i % 50 else "empty_success", ts=T0 + 11 + i * 0.04, request_id=f"lt1a-{200 + i}")
    rec.stop(T0 + 20)
    pixels = {SQUARE: 200 - drifted, 512 * 512: drifted} if drifted else {SQUARE: 200}
    s = [series("dall-e-4", "before", "ok", [40.0] * 200, 200),
         series("dall-e-4", "outage", "error", [5.0] * 200, 503, pixels={}),
         series("dall-e-4-flash", "outage", "ok", [20.0] * 200, 200, pixels=pixels)]
    seconds = ([(1 + i // 25, 0, 1) for i in range(200)] + [(11 + i // 25, 1, 1) for i in range(200)]
               + [(11 + i // 25, 2, 1) for i in range(200)])
    per_second: dict[tuple[int, int], int] = {}
    for sec, index, n in seconds:
        per_second[(sec, index)] = per_second.get((sec, index), 0) + n
    record = Summary(record_id="r1", worker="1", started_at=T0, now=T0 + 21, window="outage", seq=600, requests=600,
                     stale=0, windows=[Window("before", T0, 0.0, 1), Window("outage", T0 + 10, 10.0, 201)],
                     series=s, seconds=sorted((a, b, n) for (a, b), n in per_second.items()), raw={"cap": 1000})
    entries = [entry(i + 1, "dall-e-4", "before", "ok", 200, T0 + 1 + i * 0.04, 40.0, f"lt1a-{i}.1")
               for i in range(200)]
    for i in range(200):
        at = T0 + 11 + i * 0.04
        entries += [entry(201 + 2 * i, "dall-e-4", "outage", "error", 503, at, 5.0, f"lt1a-{200 + i}.1"),
                    entry(202 + 2 * i, "dall-e-4-flash", "outage", "ok", 200, at + 0.01, 20.0,
                          f"lt1a-{200 + i}.1" if fallback_ids else None)]
    entries += [entry(601 + i, "dall-e-4", "outage", "ok", 200, T0 + 25, 40.0, None) for i in range(orphans)]
    facts = GatewayFacts(record=record, primary="dall-e-4", primary_model="dall-e-4", profiles=load_profiles(),
                         asked_pixels=asked_pixels("1024x1024"), entries=tuple(entries), ended_at=T0 + 20)
    return rec, facts


def summary_of(thresholds: dict, **kw: int):
    rec, facts = run_ends(**kw)
    verdict = judge(parse_thresholds(thresholds), rec, None, None, min_samples=100, gateway=facts)
    summary = build_summary(
        scenario=ScenarioDoc(name="gateway_outage", load_model="closed", planned_s=20.0, min_samples=100,
                             stages=[StageWindow(name=n, start_s=a, end_s=b) for n, a, b in STAGES]),
        target=TargetDoc(name="dall-e-4", api="openai", base_url="http://127.0.0.1:4000", model="dall-e-4"),
        recorder=rec, verdict=verdict, health=None, run=RunDoc(end="schedule", planned_s=20.0, elapsed_s=20.0),
        load=LoadDoc(model="closed", peak_users=10), started_at=datetime.fromtimestamp(T0, UTC), duration_s=20.0,
        actions=[ActionDoc(at_s=10.0, planned_at_s=10.0, provider="dall-e-4", settings={"outage": True},
                           outcome="ok", ok=True)])
    summary.gateway = describe_gateway(facts, rec, kind="litellm", url="http://127.0.0.1:4000",
                                       asked_size="1024x1024")
    return summary, verdict


# -- the figures -----------------------------------------------------------------------------------


def test_the_gateway_section_per_stage_from_both_ends() -> None:
    rec, facts = run_ends()
    g = describe_gateway(facts, rec, kind="litellm", url="http://gw", asked_size="1024x1024")
    # Successful requests: client 70 ms (200) and 80 ms (196); provider 40 ms (200) and 20 ms (200). By
    # percentile, the run's median pairs the client's 70 ms with the provider's 20 ms.
    assert g.overhead_ms.p50 == pytest.approx(70.0 - 20.0, abs=0.1)
    assert g.overhead_ms.p99 == pytest.approx(80.0 - 40.0, abs=0.1)
    assert g.upstream_calls_per_request.mean == pytest.approx(600 / 400)
    assert g.upstream_calls_per_request.max == 2          # the outage's: a 503, then the fallback
    assert g.upstream_calls_per_request.status_mix == {"200": 400, "503": 200}
    assert g.failovers == 200 and g.served_by == {"dall-e-4": 200, "dall-e-4-flash": 200}
    assert g.silent_success == 4
    assert g.capability_drift == 40
    assert g.orphaned_upstream_calls == 1
    prices = load_profiles()
    assert g.upstream_cost_usd == pytest.approx(200 * prices["dall-e-4"].price_usd
                                                + 200 * prices["dall-e-4-flash"].price_usd)
    assert g.first_time_cost_usd == pytest.approx(400 * prices["dall-e-4"].price_usd)

    before, outage = g.stages
    assert (before.name, outage.name) == ("before", "outage")
    assert before.overhead_ms["p50"] == pytest.approx(30.0, abs=0.1)
    assert outage.overhead_ms["p50"] == pytest.approx(60.0, abs=0.1)
    assert (before.calls_mean, outage.calls_mean) == (1.0, 2.0)
    assert (before.calls_max, outage.calls_max) == (1, 2)
    assert (before.failovers, outage.failovers) == (0, 200)
    assert (before.silent_success, outage.silent_success) == (0, 4)
    assert (before.capability_drift, outage.capability_drift) == (0, 40)
    assert outage.status_mix == {"200": 200, "503": 200}


def test_overhead_request_by_request_where_the_ids_came_through() -> None:
    rec, facts = run_ends(one_by_one=True)
    g = describe_gateway(facts, rec, kind="litellm", url="http://gw")
    o = g.overhead_ms
    # Each request against the call that answered it: 30 ms before (200), 60 ms in the outage (196 succeeded).
    assert o.method == "by_request" and o.matched_requests == 396 and o.matched_share == 1.0
    assert (o.p50, o.p99) == (pytest.approx(30.0, abs=0.01), pytest.approx(60.0, abs=0.01))
    # Side by side the percentiles pair different requests: the run's P50 (client 70 ms, provider 20 ms).
    assert o.by_percentile["p50"] == pytest.approx(50.0, abs=0.1)
    before, outage = g.stages
    assert before.overhead_method == outage.overhead_method == "by_request"
    assert (before.overhead_ms["p99"], outage.overhead_ms["p50"]) == (pytest.approx(30.0), pytest.approx(60.0))
    # The gate's threshold reads the same figure, over the matched requests.
    verdict = judge(parse_thresholds({"gateway_overhead": ["p(99)<50"]}), rec, None, None, min_samples=100,
                    gateway=facts)
    (result,) = verdict.results
    assert result.verdict == "fail" and result.observed == pytest.approx(60.0, abs=0.01) and result.samples == 396


def test_overhead_falls_back_to_percentiles_when_the_ids_are_lost_on_the_way() -> None:
    # The fallback route dropped the header: 200 of the 396 successes matched, too few to stand for them all.
    rec, facts = run_ends(one_by_one=True, fallback_ids=False)
    g = describe_gateway(facts, rec, kind="litellm", url="http://gw")
    assert g.overhead_ms.method == "by_percentile" and g.overhead_ms.matched_requests == 200
    assert g.overhead_ms.matched_share == pytest.approx(200 / 396, abs=1e-6)
    assert g.overhead_ms.p50 == pytest.approx(50.0, abs=0.1)
    before, outage = g.stages
    assert (before.overhead_method, outage.overhead_method) == ("by_request", "by_percentile")
    # Without requests kept one by one (no [sut]), there is nothing to match.
    rec, facts = run_ends()
    assert describe_gateway(facts, rec, kind="litellm", url="http://gw").overhead_ms.matched_requests is None


def test_requests_kept_one_by_one_travel_from_workers_to_the_master_and_stay_capped() -> None:
    worker = Recorder(stages=STAGES, start_time=T0, samples=RequestSamples())
    for i in range(5):
        worker.record(name="generate", target="t", latency_ms=10.0 + i, ok=i != 4, status=200, ts=T0 + 1 + i,
                      request_id=f"lt9-{i}.2")
    master = Recorder(stages=STAGES, start_time=T0)
    master.merge(worker.drain())
    assert master.samples is not None and [s.generation for s in master.samples] == [f"lt9-{i}" for i in range(5)]
    assert [s.ok for s in master.samples][-1] is False and len(worker.samples or ()) == 0
    capped = RequestSamples(cap=3)
    for i in range(5):
        capped.add(f"g{i}", "before", 1.0, True, T0 + i)
    assert [s.generation for s in capped] == ["g2", "g3", "g4"] and capped.dropped == 2


def test_orphaned_work_after_the_end_and_after_the_client_gave_up() -> None:
    rec = Recorder(stages=STAGES, start_time=T0, samples=RequestSamples())
    # lt2-1 succeeded; lt2-2 timed out at T0 + 5 (30 s after it began), lt2-3 failed at T0 + 6.
    rec.record(name="g", target="dall-e-4", latency_ms=50.0, ok=True, status=200, ts=T0 + 2, request_id="lt2-1")
    rec.record(name="g", target="dall-e-4", latency_ms=3000.0, ok=False, status="timeout", ts=T0 + 5,
               request_id="lt2-2")
    rec.record(name="g", target="dall-e-4", latency_ms=40.0, ok=False, status=502, ts=T0 + 6, request_id="lt2-3")
    rec.stop(T0 + 20)
    _, base = run_ends()
    entries = (entry(1, "dall-e-4", "before", "ok", 200, T0 + 1.95, 40.0, "lt2-1.1"),
               entry(2, "dall-e-4", "before", "error", 503, T0 + 3, 5.0, "lt2-2.1"),
               entry(3, "dall-e-4", "before", "error", 503, T0 + 6.5, 5.0, "lt2-2.1"),   # after its client gave up
               entry(4, "dall-e-4", "before", "ok", 200, T0 + 9, 40.0, "lt2-3.1"),       # ditto
               entry(5, "dall-e-4", "outage", "ok", 200, T0 + 24, 40.0, "lt2-2.1"),      # after the end
               entry(6, "dall-e-4", "outage", "ok", 200, T0 + 25, 40.0, None))           # ditto
    facts = GatewayFacts(record=base.record, primary="dall-e-4", primary_model="dall-e-4", profiles=load_profiles(),
                         entries=entries, ended_at=T0 + 20, watched_s=5.2)
    g = describe_gateway(facts, rec, kind="litellm", url="http://gw")
    assert (g.orphaned_after_end, g.orphaned_after_give_up, g.orphaned_upstream_calls) == (2, 2, 4)
    assert g.orphan_watch_s == 5.2
    verdict = judge(parse_thresholds({"orphaned_upstream_calls": ["count==0"]}), rec, None, None, min_samples=1,
                    gateway=facts)
    assert verdict.results[0].verdict == "fail" and verdict.results[0].observed == 4


def test_the_timeline_lines_up_both_ends_by_second() -> None:
    rec, facts = run_ends()
    g = describe_gateway(facts, rec, kind="litellm", url="http://gw")
    rows = {r.t_s: r for r in g.timeline}
    # 25 client requests a second in both stages; upstream: 25 calls a second before, 50 in the outage.
    assert rows[3].client_requests == 25 and rows[3].upstream_requests == 25 and rows[3].calls_per_request == 1.0
    assert rows[13].client_requests == 25 and rows[13].upstream_requests == 50 and rows[13].calls_per_request == 2.0
    assert rows[3].provider_p50_ms == 40.0 and rows[13].provider_p50_ms == 20.0
    assert rows[13].client_p50_ms == pytest.approx(80.0, abs=0.1)


def test_drift_counts_answers_of_another_size_or_format_once_each() -> None:
    rec, facts = run_ends(drifted=0)
    flash = facts.record.series[2]
    # Of the fallback's 200 answers: 150 as asked, 30 JPEGs of the right size, 20 small JPEGs (drifted twice
    # over, counted once).
    shapes = {f"{SQUARE}:png": 150, f"{SQUARE}:jpeg": 30, f"{512 * 512}:jpeg": 20}
    record = replace(facts.record, series=[*facts.record.series[:2], replace(flash, shapes=shapes)])
    asked_png = replace(facts, record=record, asked_format="png")
    g = describe_gateway(asked_png, rec, kind="litellm", url="http://gw", asked_size="1024x1024")
    assert g.capability_drift == 50 and g.asked_format == "png"
    summary = summary_of({})[0].model_copy(update={"gateway": g})
    assert "50 answers of another size or format than 1024x1024 png" in markdown.render(summary)
    # Asked no format the API names: only sizes count.
    sizes_only = describe_gateway(replace(asked_png, asked_format=None), rec, kind="litellm", url="http://gw")
    assert sizes_only.capability_drift == 20
    # The record without shapes (an older mock): its pixels alone.
    assert describe_gateway(facts, rec, kind="litellm", url="http://gw").capability_drift == 0


def test_drift_needs_a_size_to_compare_and_counts_by_generation() -> None:
    assert asked_pixels("1536x1024") == 1536 * 1024
    assert asked_pixels("auto") is None and asked_pixels("1K") is None
    rec, facts = run_ends(drifted=0)
    assert describe_gateway(facts, rec, kind="command", url="http://gw").capability_drift == 0
    # Several mock workers' records add up, pixels included.
    flash = facts.record.series[2]
    assert (flash + flash).pixels == {SQUARE: 400}
    # A client retry is the same request: its attempts' calls count together.
    e = run_ends()[1].entries
    assert calls_per_request([e[0], e[1], e[0]]) == 2


# -- thresholds ------------------------------------------------------------------------------------


def test_gateway_thresholds_read_in_k6_syntax_with_their_units() -> None:
    th = parse_thresholds({"gateway_overhead": ["p(99)<50", "avg<40"],
                           "upstream_calls_per_request{stage:outage}": ["avg<1.2", "max<=3"],
                           "silent_success": ["count==0", "rate<0.01"], "orphaned_upstream_calls": ["count==0"],
                           "upstream_cost_usd": ["value<25"], "capability_drift": ["count==0"],
                           "gateway_failovers": ["count>0"]})
    labels = [t.label() for t in th]
    assert labels[0] == "gateway_overhead p(99) < 50 ms"
    assert labels[2] == "upstream_calls_per_request avg < 1.2 calls [stage=outage]"
    assert "upstream_cost_usd value < 25 USD" in labels
    assert format_value("upstream_calls_per_request", "avg", 1.444444) == "1.444 calls"
    assert format_value("upstream_cost_usd", "value", 12.5) == "$12.5000"
    with pytest.raises(ThresholdError, match="'count' is not an aggregation of gateway_overhead"):
        parse_thresholds({"gateway_overhead": ["count<5"]})


def test_the_gate_judges_gateway_thresholds_from_the_facts() -> None:
    rec, facts = run_ends()
    th = parse_thresholds({"gateway_overhead": ["p(99)<50"], "gateway_overhead{stage:outage}": ["p(50)<50"],
                           "upstream_calls_per_request": ["avg<1.6", "max<=2"],
                           "upstream_calls_per_request{stage:before}": ["avg<1.2"],
                           "silent_success": ["count==0"], "orphaned_upstream_calls": ["count==0"],
                           "capability_drift": ["count<=40"], "gateway_failovers": ["count>0"],
                           "upstream_cost_usd": ["value<1000"]})
    v = judge(th, rec, None, None, min_samples=100, gateway=facts)
    got = {r.threshold.label(): (r.verdict, r.observed) for r in v.results}
    assert got["gateway_overhead p(99) < 50 ms"] == ("pass", pytest.approx(40.0, abs=0.1))
    assert got["gateway_overhead p(50) < 50 ms [stage=outage]"] == ("fail", pytest.approx(60.0, abs=0.1))
    assert got["upstream_calls_per_request avg < 1.6 calls"] == ("pass", 1.5)
    assert got["upstream_calls_per_request max <= 2 calls"] == ("pass", 2.0)
    assert got["upstream_calls_per_request avg < 1.2 calls [stage=before]"] == ("pass", 1.0)
    assert got["silent_success count == 0"] == ("fail", 4.0)
    assert got["orphaned_upstream_calls count == 0"] == ("fail", 1.0)
    assert got["capability_drift count <= 40"] == ("pass", 40.0)
    assert got["gateway_failovers count > 0"] == ("pass", 200.0)
    assert got["upstream_cost_usd value < 1000 USD"][0] == "pass"
    assert v.status == "fail" and int(v.exit_code) == 1
    assert any("silent_success" in r.text for r in v.reasons if r.kind == "breach")


def test_gateway_thresholds_cannot_be_judged_without_the_record_or_mid_run() -> None:
    rec, facts = run_ends()
    th = parse_thresholds({"gateway_overhead": ["p(99)<50"]})
    unread = judge(th, rec, None, None, min_samples=100)
    assert unread.results[0].verdict == "insufficient" and unread.status == "invalid"
    assert "was not read" in unread.results[0].detail
    live = judge(th, rec, None, None, min_samples=100, live=True, now_s=15.0, gateway=facts)
    assert live.results[0].verdict == "insufficient" and "once the run has ended" in live.results[0].detail
    # An overhead percentile over fewer successful requests than min_samples proves nothing yet.
    thin = judge(th, rec, None, None, min_samples=1000, gateway=facts)
    assert thin.results[0].verdict == "insufficient" and "at least 1,000 needed" in thin.results[0].detail
    # A gateway that drops the correlation id leaves max unjudgeable, and says why.
    blind = GatewayFacts(record=facts.record, primary="dall-e-4", primary_model="dall-e-4", profiles=facts.profiles)
    v = judge(parse_thresholds({"upstream_calls_per_request": ["max<=3"]}), rec, None, None, min_samples=100,
              gateway=blind)
    assert v.results[0].verdict == "insufficient" and "x-request-id" in v.results[0].detail


# -- the reports ---------------------------------------------------------------------------------


def test_summary_md_has_the_gateway_figures_and_stages() -> None:
    summary, _ = summary_of({"gateway_overhead": ["p(99)<50"], "silent_success": ["count==0"]})
    md = markdown.render(summary)
    assert "### Gateway: both ends" in md
    assert "| Overhead p50 / p90 / p99 (ms) | 50.0 / 40.0 / 40.0 (client p(N) minus provider p(N)) |" in md
    assert "| Upstream calls per request | mean 1.500, most 2 (600 calls for 400 requests) |" in md
    assert "| Upstream status mix | 200: 400, 503: 200 |" in md
    assert "| Failovers | 200; served by dall-e-4: 200, dall-e-4-flash: 200 |" in md
    assert "| Capability drift | 40 answers of another size or format than 1024x1024 |" in md
    assert ("| Orphaned upstream calls | 1: 1 after the run had ended; n/a without correlation ids for requests "
            "their client had already given up |") in md
    assert "| outage | 60.0 | 60.0 | percentile | 2.000 | 2 | 200: 200, 503: 200 | 200 | 4 | 40 |" in md
    assert "| gateway_overhead p(99) < 50 ms | 40 ms | — | < 50 ms | ✅ pass |" in md


def test_junit_has_gateway_properties_and_a_case_per_gateway_threshold() -> None:
    summary, _ = summary_of({"gateway_overhead": ["p(99)<50"], "silent_success": ["count==0"]})
    suite = ET.fromstring(junit.render(summary).split("\n", 1)[1]).find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["gateway.overhead_p99_ms"] == "40" and props["gateway.upstream_calls_per_request_mean"] == "1.5"
    assert props["gateway.failovers"] == "200" and props["gateway.capability_drift"] == "40"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["gateway_overhead p(99) < 50 ms"].find("failure") is None
    failure = cases["silent_success count == 0"].find("failure")
    assert failure is not None and "observed 4" in (failure.get("message") or "")
    outs = suite.findall("system-out")
    assert len(outs) == 1 and "the gateway, from both ends:" in (outs[0].text or "")


def test_report_html_has_the_gateway_section_and_its_picture(tmp_path) -> None:
    summary, _ = summary_of({"gateway_overhead": ["p(99)<50"]})
    page = write_html(summary, tmp_path).read_text(encoding="utf-8")
    assert "<h2>Gateway: both ends</h2>" in page
    assert "Upstream calls per request" in page and "dall-e-4-flash: 200" in page
    assert (tmp_path / "gateway_over_time.png").stat().st_size > 0
    assert 'alt="client against provider latency per second, and upstream calls per request"' in page


def test_the_gateway_picture_draws_both_ends_the_calls_and_the_actions() -> None:
    summary, _ = summary_of({"gateway_overhead": ["p(99)<50"]})
    fig = gateway_over_time_figure(summary.json_dict())
    top, bottom = fig.axes[:2]
    assert [ln.get_label() for ln in top.get_lines() if not ln.get_label().startswith("_")][:4] == [
        "client P50", "client P99", "provider P50", "provider P99"]
    calls = next(ln for ln in bottom.get_lines() if ln.get_label() == "upstream calls per request")
    ys = [y for y in calls.get_ydata() if y == y]
    assert min(ys) == 1.0 and max(ys) == 2.0
    assert [ln.get_gid() for ln in top.get_lines()].count("action") == 1
    empty = gateway_over_time_figure({"gateway": {"timeline": []}})
    assert "no per-second figures" in empty.axes[0].texts[0].get_text()
