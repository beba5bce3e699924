import json
import math
import sys

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from loadtest import recorder as recmod
from loadtest.recorder import (
    COARSE,
    FINE,
    HIGHEST_US,
    OPEN_SECONDS,
    PERCENTILE_DEFINITION,
    SIGNIFICANT_FIGURES,
    Recorder,
)

T0 = 1_700_000_000.0


def lognormal(seed, n, median_ms, sigma):
    return np.random.default_rng(seed).lognormal(math.log(median_ms), sigma, n)


def fill(rec, lat_ms, *, t0=T0, rate=1000.0, target="relay", name="generate", fail_every=0, seed=0):
    """Record lat_ms as requests ending at a steady rate; every fail_every-th fails with a 500."""
    for i, ms in enumerate(lat_ms):
        ok = not (fail_every and i % fail_every == fail_every - 1)
        rec.record(name=name, target=target, latency_ms=float(ms), ok=ok, status=200 if ok else 500,
                   ts=t0 + 1.0 + i / rate, cost_usd=0.01 if ok else 0.0, attempts=2 if i % 7 == 0 else 1,
                   failover=i % 11 == 0)


def exact(sorted_ms, p):
    """The nearest-rank value: sorted[ceil(p/100 n) - 1], in exact integer arithmetic."""
    n = len(sorted_ms)
    rank = max(1, -((-int(round(p * 1000)) * n) // 100_000))
    return float(sorted_ms[rank - 1])


# -- HDR layout ------------------------------------------------------------------------------

def test_vectorised_index_matches_hdr_including_bucket_edges():
    h = HdrHistogram(1, HIGHEST_US, SIGNIFICANT_FIGURES)
    edges = [v for k in range(0, 22) for v in ((2048 << k) - 1, 2048 << k, (2048 << k) + 1, 1024 << k)]
    values = np.array(sorted(set(edges + list(range(0, 5000)) + [600_000, 599_999, HIGHEST_US]
                                 + lognormal(1, 3000, 500_000, 1.5).astype(np.int64).tolist())), dtype=np.int64)
    values = values[values <= HIGHEST_US]
    ours = FINE.index(values)
    theirs = np.array([h._counts_index_for(int(v)) for v in values])
    assert np.array_equal(ours, theirs)
    assert ours.max() < FINE.counts_len


def test_bucket_upper_edges_match_hdr():
    for layout in (FINE, COARSE):
        h = HdrHistogram(1, HIGHEST_US, layout.significant_figures)
        for i in range(0, layout.counts_len, 7):
            assert layout.highest[i] == h.get_highest_equivalent_value(h.get_value_from_index(i))


def test_counts_equal_hdr_record_value():
    ms = lognormal(2, 5000, 400, 0.8)
    rec = Recorder(start_time=T0)
    fill(rec, ms)
    rec.select()  # flushes
    (series,) = rec._series.values()
    h = HdrHistogram(1, HIGHEST_US, SIGNIFICANT_FIGURES)
    for v in np.ceil(ms * 1000 - 1e-6).astype(np.int64):
        h.record_value(int(v))
    assert np.array_equal(np.ctypeslib.as_array(series.ok.hist.counts), np.ctypeslib.as_array(h.counts))
    # The HdrHistogram's own bookkeeping stays true, so its methods agree with ours.
    assert series.ok.hist.get_total_count() == len(ms)
    assert series.ok.hist.get_max_value() == h.get_max_value()
    assert series.ok.hist.get_min_value() == h.get_min_value()


def test_precision_is_what_the_docstring_promises():
    assert SIGNIFICANT_FIGURES == 3 and FINE.counts_len == 23552
    width_ms = (FINE.highest - FINE.lowest + 1) / 1000
    at = lambda ms: width_ms[FINE.index(np.array([int(ms * 1000)]))[0]]  # noqa: E731
    assert at(600) <= 0.52
    assert at(2000) <= 1.03
    assert at(10_000) <= 8.2
    assert "ceil" in PERCENTILE_DEFINITION


# -- percentiles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, n, median, sigma", [
    (0, 20_000, 42, 0.323),      # the relay
    (1, 12_000, 3200, 0.43),     # a direct provider
    (2, 997, 450, 0.6),          # around the SLA, odd count
    (3, 50_000, 550, 0.15),      # tight around 600 ms
])
def test_percentiles_within_documented_precision_and_never_under(seed, n, median, sigma):
    ms = lognormal(seed, n, median, sigma)
    rec = Recorder(start_time=T0)
    fill(rec, ms)
    sel = rec.select()
    s = np.sort(ms)
    for p in (1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99):
        want = exact(s, p)
        got = sel.percentile(p)
        assert got >= want - 1e-9, (p, got, want)
        # at most one bucket (1/1024 of the value) plus the microsecond round-up above the exact value
        assert got - want <= want / 1024 + 0.001, (p, got, want)
        if want < 2000:
            assert got - want < 1.03
    assert sel.percentile(100) == sel.max_ms == s[-1]
    assert sel.percentile(0) == sel.min_ms == s[0]
    assert sel.mean_ms == pytest.approx(ms.mean(), rel=1e-12)


def test_against_numpy_exact_percentile():
    ms = lognormal(7, 12_345, 500, 0.4)  # p * n / 100 is never an integer below: no float ties
    rec = Recorder(start_time=T0)
    fill(rec, ms)
    sel = rec.select()
    for p in (50, 90, 95, 99, 99.9):
        want = float(np.percentile(ms, p, method="inverted_cdf"))
        assert want <= sel.percentile(p) <= want * (1 + 1 / 1024) + 0.001


def test_rank_uses_exact_arithmetic():
    # 99.9 % of 200,000 is rank 199,800 exactly; float arithmetic makes it 199,800.00000000003.
    assert recmod._rank(99.9, 200_000) == 199_800
    assert recmod._rank(99, 1060) == 1050      # HDR's Python port would round to 1049
    assert recmod._rank(50, 1) == 1 and recmod._rank(0.001, 10) == 1


def test_p99_never_exceeds_max_and_values_in_one_bucket():
    rec = Recorder(start_time=T0)
    fill(rec, [600.0001] * 50 + [600.0002] * 50)
    sel = rec.select()
    assert sel.percentile(99) <= sel.max_ms == 600.0002
    assert sel.percentile(50) >= 600.0001


def test_distribution_is_monotonic_and_matches_percentile():
    rec = Recorder(start_time=T0)
    fill(rec, lognormal(4, 5000, 300, 0.5))
    sel = rec.select()
    dist = sel.distribution()
    values = [v for _, v in dist]
    assert values == sorted(values)
    assert dict(dist)[99.0] == sel.percentile(99)
    assert dist[0] == (0.0, sel.min_ms) and dist[-1] == (100.0, sel.max_ms)


def test_failed_requests_count_in_latency_and_expected_response_splits_them():
    rec = Recorder(start_time=T0)
    for i in range(1000):
        ok = i % 10 != 0
        rec.record(name="g", target="t", latency_ms=100.0 if ok else 30_000.0, ok=ok,
                   status=200 if ok else "timeout", ts=T0 + i / 100)
    everything = rec.select()
    assert everything.requests == 1000 and everything.failures == 100
    assert everything.percentile(95) == 30_000.0
    ok_only = rec.select({"expected_response": "true"})
    assert (ok_only.requests, ok_only.ok, ok_only.failures) == (900, 900, 0)
    assert ok_only.percentile(99) == 100.0 and ok_only.status_codes == {"200": 900}
    failed = rec.select([("expected_response", "false")])
    assert failed.requests == 100 and failed.ok == 0 and failed.status_codes == {"timeout": 100}


def test_clamped_beyond_one_hour_is_counted():
    rec = Recorder(start_time=T0)
    fill(rec, [100.0] * 99 + [5_000_000.0])
    sel = rec.select()
    assert sel.clamped == 1
    assert sel.max_ms == 5_000_000.0          # the exact maximum is kept
    assert 100.0 <= sel.percentile(99) <= 100.0 * (1 + 1 / 1024)


def test_empty_selection_is_nan_not_perfect():
    rec = Recorder(start_time=T0)
    sel = rec.select({"stage": "nope"})
    assert sel.requests == 0 and math.isnan(sel.success_rate) and math.isnan(sel.percentile(99))
    assert math.isnan(sel.mean_ms) and sel.distribution() == [] and sel.rps == 0.0


def test_bad_input_is_rejected():
    rec = Recorder()
    with pytest.raises(ValueError, match="latency_ms"):
        rec.record(name="g", target="t", latency_ms=-1.0, ok=True, status=200)
    with pytest.raises(ValueError, match="latency_ms"):
        rec.record(name="g", target="t", latency_ms=math.nan, ok=True, status=200)
    with pytest.raises(ValueError, match="latency_ms"):
        rec.record(name="g", target="t", latency_ms=math.inf, ok=True, status=200)
    with pytest.raises(ValueError, match="unknown filter tag"):
        rec.select({"zone": "eu"})
    with pytest.raises(ValueError, match="between 0 and 100"):
        rec.select().percentile(101)


# -- counters, success, windows ----------------------------------------------------------------

def test_counters_codes_cost_and_dropped():
    rec = Recorder(start_time=T0)
    fill(rec, [100.0] * 700, fail_every=100)
    for i in range(3):
        rec.record_dropped(name="generate", target="relay", ts=T0 + 2 + i)
    sel = rec.select()
    assert (sel.requests, sel.ok, sel.failures, sel.dropped) == (700, 693, 7, 3)
    assert sel.status_codes == {"200": 693, "500": 7, "dropped": 3}
    assert sel.success_rate == pytest.approx(693 / 703)
    assert sel.failure_rate == pytest.approx(10 / 703)
    assert sel.dropped_rate == pytest.approx(3 / 703)
    assert sel.cost_usd == pytest.approx(6.93)
    assert sel.attempts == 700 + 100 and sel.failovers == 64


def test_int_and_string_status_codes_merge_by_name():
    rec = Recorder(start_time=T0)
    rec.record(name="g", target="t", latency_ms=1.0, ok=True, status=200, ts=T0 + 1)
    rec.record(name="g", target="t", latency_ms=1.0, ok=True, status="200", ts=T0 + 1)
    assert rec.select().status_codes == {"200": 2}


def test_windows_and_rps():
    rec = Recorder(stages=[("ramp", 0, 10), ("surge", 10, 30)], start_time=T0)
    for i in range(600):  # one request every 50 ms for 30 s, 10 ms each
        rec.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, ts=T0 + i * 0.05 + 0.01)
    assert rec.select().window_s == pytest.approx(29.96)       # start .. last record
    rec.stop(T0 + 30)
    assert rec.select().window_s == 30 and rec.select().rps == pytest.approx(20.0)
    surge = rec.select({"stage": "surge"})
    assert surge.window_s == 20 and surge.rps == pytest.approx(20.0)
    assert rec.select({"stage": "surge"}, now_s=15).window_s == 5   # live: the elapsed part of the stage


def test_start_time_defaults_to_first_request_start():
    rec = Recorder()
    rec.record(name="g", target="t", latency_ms=250.0, ok=True, status=200, ts=T0)
    assert rec.start_time == pytest.approx(T0 - 0.25)


# -- stages --------------------------------------------------------------------------------------

def test_requests_belong_to_the_stage_they_started_in():
    rec = Recorder(stages=[("ramp", 0, 10), ("surge", 10, 20), ("cool", 20, 30)], start_time=T0)
    rec.record(name="g", target="t", latency_ms=2000, ok=True, status=200, ts=T0 + 11)  # started at 9 s
    rec.record(name="g", target="t", latency_ms=100, ok=True, status=200, ts=T0 + 10.2)  # started at 10.1 s
    rec.record(name="g", target="t", latency_ms=100, ok=True, status=200, ts=T0 + 25)
    rec.record(name="g", target="t", latency_ms=100, ok=True, status=200, ts=T0 + 45)    # after the last stage
    rec.record(name="g", target="t", latency_ms=100, ok=True, status=200, ts=T0 - 5)     # before the first
    rec.record_dropped(name="g", target="t", ts=T0 + 19.99)
    counts = {s: (rec.select({"stage": s}).requests, rec.select({"stage": s}).dropped)
              for s in ("ramp", "surge", "cool")}
    assert counts == {"ramp": (2, 0), "surge": (1, 1), "cool": (2, 0)}
    assert rec.tags() == {"target": ["t"], "name": ["g"], "stage": ["ramp", "surge", "cool"]}


def test_no_stages_means_one_untagged_stage():
    rec = Recorder(start_time=T0)
    fill(rec, [10.0] * 10)
    assert rec.tags()["stage"] == [""]
    assert rec.select({"stage": ""}).requests == 10


def test_filters_by_target_and_name():
    rec = Recorder(start_time=T0)
    fill(rec, [10.0] * 10, target="relay", name="a")
    fill(rec, [20.0] * 5, target="dall-e-4", name="a")
    fill(rec, [30.0] * 3, target="relay", name="b")
    assert rec.select({"target": "relay"}).requests == 13
    assert rec.select({"name": "a"}).requests == 15
    assert rec.select({"target": "relay", "name": "b"}).percentile(50) == 30.0


# -- workers: drain and merge ----------------------------------------------------------------------

def simulate_workers(n_workers, ms, drain_every, stages):
    """Split the same requests over n workers, draining every drain_every records, merged in order."""
    master = Recorder(stages=stages, start_time=T0)
    workers = [Recorder(stages=stages, start_time=T0) for _ in range(n_workers)]
    for i, v in enumerate(ms):
        w = workers[i % n_workers]
        ok = i % 97 != 0
        w.record(name="g", target="relay", latency_ms=float(v), ok=ok, status=200 if ok else 429,
                 ts=T0 + 1 + i / 500, cost_usd=0.002, attempts=1 + (i % 5 == 0))
        if i % 1000 == 0:
            w.record_dropped(name="g", target="relay", ts=T0 + 1 + i / 500)
            w.set_users(i // 100, ts=T0 + 1 + i / 500)
        if i % drain_every == drain_every - 1:   # every worker reports, as Locust's do every 3 s
            for x in workers:
                master.merge(json.loads(json.dumps(x.drain())))   # through JSON, as over the wire
    for w in workers:
        master.merge(json.loads(json.dumps(w.drain())))
    return master


def record_single(ms, stages):
    rec = Recorder(stages=stages, start_time=T0)
    for i, v in enumerate(ms):
        ok = i % 97 != 0
        rec.record(name="g", target="relay", latency_ms=float(v), ok=ok, status=200 if ok else 429,
                   ts=T0 + 1 + i / 500, cost_usd=0.002, attempts=1 + (i % 5 == 0))
        if i % 1000 == 0:
            rec.record_dropped(name="g", target="relay", ts=T0 + 1 + i / 500)
            rec.set_users(i // 100, ts=T0 + 1 + i / 500)
    return rec


def assert_same(a, b, filters=()):
    sa, sb = a.select(filters), b.select(filters)
    for f in ("requests", "ok", "failures", "dropped", "status_codes", "attempts", "failovers", "clamped"):
        assert getattr(sa, f) == getattr(sb, f), f
    assert sa.cost_usd == pytest.approx(sb.cost_usd)
    assert (sa.min_ms, sa.max_ms) == (sb.min_ms, sb.max_ms)
    assert sa.mean_ms == pytest.approx(sb.mean_ms, rel=1e-12)
    assert sa.distribution() == sb.distribution()


def test_merged_worker_deltas_equal_one_recorder():
    stages = [("ramp", 0, 20), ("surge", 20, 40)]
    ms = lognormal(11, 18_000, 420, 0.35)
    single = record_single(ms, stages)
    master = simulate_workers(3, ms, drain_every=1500, stages=stages)  # 1500 records = 3 s, like Locust
    assert_same(single, master)
    for stage in ("ramp", "surge"):
        assert_same(single, master, {"stage": stage})
    assert master.timeline() == single.timeline()
    assert master.peak_users == single.peak_users == 170


def test_drain_forgets_and_an_idle_drain_is_empty():
    w = Recorder(start_time=T0)
    fill(w, [10.0] * 100)
    first = w.drain()
    assert sum(s["ok"]["count"] for s in first["series"]) == 100
    assert w.select().requests == 0
    second = w.drain()
    assert second["series"] == [] and second["seconds"] == [] and second["rows"] == []


def test_merge_shifts_a_worker_with_another_start_time():
    master = Recorder(start_time=T0)
    worker = Recorder(start_time=T0 + 5)
    worker.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, ts=T0 + 5 + 2.5)
    master.merge(worker.drain())
    (row,) = [r for r in master.timeline() if r["requests"]]
    assert row["t_s"] == 7


def test_merge_rejects_foreign_payloads():
    rec = Recorder()
    with pytest.raises(ValueError, match="unknown format"):
        rec.merge({"format": "something-else"})
    payload = Recorder().export()
    payload["precision"]["significant_figures"] = 4
    with pytest.raises(ValueError, match="precision"):
        rec.merge(payload)
    payload = Recorder(start_time=T0).export()
    payload["series"] = [{"target": "t", "name": "g", "stage": "", "dropped": 0,
                          "ok": {"count": 2, "hist": {"i": [5], "c": [1]}, "min_ms": 1, "max_ms": 1},
                          "fail": {"count": 0, "hist": {"i": [], "c": []}}}]
    with pytest.raises(ValueError, match="does not match"):
        Recorder().merge(payload)


def test_export_round_trip_through_json():
    rec = Recorder(stages=[("a", 0, 30), ("b", 30, 60)], start_time=T0)
    fill(rec, lognormal(5, 40_000, 300, 0.5), rate=800, fail_every=50)   # 50 s: some seconds finalised
    rec.record_dropped(name="generate", target="relay", ts=T0 + 40)
    rec.set_users(847, ts=T0 + 3)
    rec.stop(T0 + 60)
    data = json.loads(json.dumps(rec.export(), allow_nan=False))
    back = Recorder.from_export(data)
    assert back.export() == rec.export()
    assert back.stop_time == rec.stop_time and back.stages == rec.stages and back.peak_users == 847
    assert_same(rec, back)
    assert back.timeline() == rec.timeline()


# -- timeline ----------------------------------------------------------------------------------------

def test_timeline_rows():
    rec = Recorder(start_time=T0)
    rec.set_users(10, ts=T0 + 0.5)
    for i in range(100):
        rec.record(name="g", target="t", latency_ms=100.0 + i, ok=i != 5, status=200 if i != 5 else 503,
                   ts=T0 + 0.5 + i / 200)
    rec.record_dropped(name="g", target="t", ts=T0 + 3.2)
    rec.set_users(20, ts=T0 + 3.5)
    rows = rec.timeline()
    assert [r["t_s"] for r in rows] == [0, 1, 2, 3]
    assert [r["users"] for r in rows] == [10, 10, 10, 20]          # carried forward
    assert rows[0]["requests"] == 100 and rows[0]["failures"] == 1 and rows[0]["rps"] == 100.0
    assert rows[0]["codes"] == {"200": 99, "503": 1}
    assert rows[1]["requests"] == 0 and rows[1]["p99_ms"] is None  # a gap is a row of zeros
    assert rows[3]["dropped"] == 1
    # per-second latency is coarse (2 significant figures) but never under the exact value
    assert 149.0 <= rows[0]["p50_ms"] <= 149.0 * 1.008 + 0.001
    assert 198.0 <= rows[0]["p99_ms"] <= 199.0 and rows[0]["max_ms"] == 199.0
    assert rec.timeline(since_s=2)[0]["t_s"] == 2


def test_timeline_stays_bounded_over_four_hours():
    rec = Recorder(start_time=T0)
    hours = 4 * 3600
    most_open = 0
    for s in range(hours):
        # a few requests a second are enough to exercise the bookkeeping of 14,400 seconds
        for k in range(3):
            rec.record(name="g", target="t", latency_ms=40.0 + k, ok=True, status=200, ts=T0 + s + 0.1 + k * 0.3)
        if s % 60 == 0:
            rec.set_users(s // 60, ts=T0 + s)
        most_open = max(most_open, len(rec._open))
    assert most_open <= OPEN_SECONDS + 1 <= 20       # a fixed bound, whatever the run's length
    assert all(sec.counts is None or sec.counts.size == COARSE.counts_len for sec in rec._open.values())
    assert len(rec._rows) == hours - len(rec._open)
    assert all(isinstance(r, list) and len(r) == 9 for _, r in rec._rows.items())
    # Finalised seconds are kept as columns: 73 bytes a second here (a presence byte, four 8-byte counts,
    # four 8-byte percentiles, one status code's count), where lists of Python objects took about 600.
    cols = (rec._rows._present, *rec._rows._ints, *rec._rows._floats, *rec._rows._codes.values())
    assert sum(sys.getsizeof(c) for c in cols) <= 100 * hours
    rows = rec.timeline()
    assert len(rows) == hours and rows[-1]["t_s"] == hours - 1
    assert all(r["requests"] == 3 for r in rows)
    assert rows[7200]["users"] == 120 and rows[7200]["p50_ms"] == pytest.approx(41.0, rel=0.01)


def test_late_data_for_a_finalised_second_is_added():
    master = Recorder(start_time=T0)
    for s in range(40):
        master.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, ts=T0 + s + 0.5)
    assert 5 in master._rows and 5 not in master._open
    late = Recorder(start_time=T0)
    late.record(name="g", target="t", latency_ms=900.0, ok=False, status=500, ts=T0 + 5.5)
    master.merge(late.drain())
    row = master.timeline()[5]
    assert row["requests"] == 2 and row["failures"] == 1 and row["codes"] == {"200": 1, "500": 1}
    assert row["max_ms"] == 900.0 and row["p99_ms"] >= 900.0   # the larger estimate: never under
    assert master.select().requests == 41


# -- time to first image ---------------------------------------------------------------------------

def record_streams(rec, latency_ms, first_ms, *, t0=T0, rate=500.0, fail_every=0):
    """Streamed generations: each with its latency and, where first_ms is not nan, its time to first image."""
    for i, (ms, first) in enumerate(zip(latency_ms, first_ms)):
        ok = not (fail_every and i % fail_every == fail_every - 1)
        rec.record(name="stream", target="gpt-image-1-mini", latency_ms=float(ms), ok=ok, status=200 if ok else 500,
                   ts=t0 + 1.0 + i / rate, first_image_ms=None if math.isnan(first) else float(first))


def streams(seed, n, share_streamed=0.9):
    rng = np.random.default_rng(seed)
    latency = rng.lognormal(math.log(2800), 0.4, n)
    first = latency * rng.uniform(0.2, 0.45, n)      # the first partial image comes a third of the way in
    first[rng.uniform(size=n) > share_streamed] = math.nan
    return latency, first


def test_first_image_percentiles_are_exact_and_kept_apart_from_latency():
    latency, first = streams(7, 20_000)
    rec = Recorder(start_time=T0)
    record_streams(rec, latency, first)
    sel = rec.select()
    f = sel.first_image
    seen = np.sort(first[~np.isnan(first)])
    assert f.count == seen.size < sel.requests == 20_000
    assert (f.min_ms, f.max_ms) == (float(seen[0]), float(seen[-1]))
    assert f.mean_ms == pytest.approx(float(seen.mean()), rel=1e-12)
    for p in (50, 90, 95, 99, 99.9):
        want = exact(seen, p)
        got = f.percentile(p)
        assert want <= got <= want * (1 + 1 / 1024) + 0.001, p      # the requests' own HDR precision
    # The requests' latency is untouched by their first images.
    assert sel.percentile(99) == pytest.approx(exact(np.sort(latency), 99), rel=1 / 1024)


def test_first_image_splits_by_outcome_and_stage():
    latency, first = streams(3, 4000, share_streamed=1.0)
    rec = Recorder(stages=[("a", 0, 4), ("b", 4, 10)], start_time=T0)
    record_streams(rec, latency, first, fail_every=10)
    ok, failed = rec.select({"expected_response": "true"}), rec.select({"expected_response": "false"})
    assert ok.first_image.count == 3600 and failed.first_image.count == 400
    assert rec.select().first_image.count == 4000
    a, b = rec.select({"stage": "a"}), rec.select({"stage": "b"})
    assert a.first_image.count + b.first_image.count == 4000 and a.first_image.count == a.requests


def test_first_image_merges_across_workers_as_one_recorder():
    latency, first = streams(11, 9000)
    single = Recorder(stages=[("s", 0, 30)], start_time=T0)
    record_streams(single, latency, first, fail_every=13)
    master = Recorder(stages=[("s", 0, 30)], start_time=T0)
    workers = [Recorder(stages=[("s", 0, 30)], start_time=T0) for _ in range(3)]
    for i, (ms, f) in enumerate(zip(latency, first)):      # round-robin, drained every 1,000, like Locust's reports
        ok = not (i % 13 == 12)
        workers[i % 3].record(name="stream", target="gpt-image-1-mini", latency_ms=float(ms), ok=ok,
                              status=200 if ok else 500, ts=T0 + 1.0 + i / 500,
                              first_image_ms=None if math.isnan(f) else float(f))
        if i % 1000 == 999:
            for w in workers:
                master.merge(w.drain())
    for w in workers:
        master.merge(json.loads(json.dumps(w.drain())))
    a, b = single.select(), master.select()
    assert a.first_image.count == b.first_image.count
    assert (a.first_image.min_ms, a.first_image.max_ms) == (b.first_image.min_ms, b.first_image.max_ms)
    assert a.first_image.mean_ms == pytest.approx(b.first_image.mean_ms, rel=1e-12)
    for p in (0, 50, 95, 99, 99.9, 100):
        assert a.first_image.percentile(p) == b.first_image.percentile(p)
    assert_same(single, master)


def test_a_recording_without_streams_reads_as_before():
    rec = Recorder(start_time=T0)
    fill(rec, [120.0] * 50)
    payload = rec.export()
    assert all("first_image" not in s["ok"] and "first_image" not in s["fail"] for s in payload["series"])
    sel = Recorder.from_export(json.loads(json.dumps(payload))).select()
    assert sel.first_image.count == 0 and math.isnan(sel.first_image.percentile(99))
    assert sel.images == 50            # one image a successful request, unless told otherwise


def test_first_image_round_trips_and_its_payload_is_checked():
    latency, first = streams(5, 3000)
    rec = Recorder(start_time=T0)
    record_streams(rec, latency, first)
    back = Recorder.from_export(json.loads(json.dumps(rec.export(), allow_nan=False)))
    assert back.export() == rec.export()
    assert back.select().first_image.percentile(95) == rec.select().first_image.percentile(95)
    broken = rec.export()
    broken["series"][0]["ok"]["first_image"]["count"] += 1
    with pytest.raises(ValueError, match="first-image histogram"):
        Recorder().merge(broken)
    with pytest.raises(ValueError, match="first_image_ms"):
        rec.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, first_image_ms=math.inf)


def test_images_delivered_are_counted_for_successes_only():
    rec = Recorder(start_time=T0)
    rec.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, ts=T0 + 1, images=10)
    rec.record(name="g", target="t", latency_ms=10.0, ok=True, status=200, ts=T0 + 1, images=4)
    rec.record(name="g", target="t", latency_ms=10.0, ok=False, status="empty_success", ts=T0 + 1, images=3)
    assert rec.select().images == 14 and rec.select({"expected_response": "false"}).images == 0
    master = Recorder(start_time=T0)
    master.merge(json.loads(json.dumps(rec.drain())))
    assert master.select().images == 14


def test_a_window_of_the_timeline_is_the_same_seconds_of_the_whole():
    # Users set now and then, seconds without requests, a status now and then: the window (what the live view
    # and the saturation watch read each second) must say what the whole timeline says for those seconds,
    # the users carried from before the window included, open seconds and finalised alike.
    rec = Recorder(start_time=T0)
    for s in range(120):
        if s % 7 == 3:
            continue
        for k in range(s % 4 + 1):
            rec.record(name="g", target="t", latency_ms=10.0 + s + k, ok=k != 2, status=200 if k != 2 else 503,
                       ts=T0 + s + 0.1 * k)
        if s % 25 == 0:
            rec.set_users(s + 1, ts=T0 + s)
    whole = rec.timeline()
    assert len(whole) == 120 and {r["users"] for r in whole} == {1, 26, 51, 76, 101}
    for since in (0, 1, 24, 26, 60, 101, 110, 119):
        assert rec.timeline(since_s=since) == whole[since:], since
    assert rec.timeline(since_s=500) == []
    # Drained and merged again (the master's side), the same timeline.
    assert Recorder.from_export(rec.export()).timeline() == whole
