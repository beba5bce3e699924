"""Confidence in every verdict: intervals with known answers, synthetic recordings whose verdict is known.

The reference figures are computed here independently of loadtest.confidence (exact binomial sums with
math.comb, the Wilson formula written out) or taken from textbook tables.
"""

from __future__ import annotations

import math
import random

import pytest

from loadtest.confidence import ConfidenceOptions, binom_ppf, interval_for, order_ranks, samples_to_pass, wilson
from loadtest.gate import judge
from loadtest.recorder import Recorder
from loadtest.thresholds import ThresholdError, parse_thresholds

T0 = 1_700_000_000.0


def recording(latencies_ok: list[float], failed: int = 0, dropped: int = 0, duration: float = 10.0) -> Recorder:
    rec = Recorder(start_time=T0)
    n = len(latencies_ok) + failed
    for i, ms in enumerate(latencies_ok):
        rec.record(name="g", target="t", latency_ms=ms, ok=True, status=200, ts=T0 + 1 + i * 8 / n)
    for i in range(failed):
        rec.record(name="g", target="t", latency_ms=50.0, ok=False, status=500, ts=T0 + 1 + i * 8 / n)
    for _ in range(dropped):
        rec.record_dropped(name="g", target="t", ts=T0 + 2)
    rec.stop(T0 + duration)
    return rec


def verdicts(table: dict, rec: Recorder, **kw) -> list[str]:
    return [r.verdict for r in judge(parse_thresholds(table), rec, min_samples=kw.pop("min_samples", 1), **kw).results]


def binomial_cdf(k: int, n: int, p: float) -> float:
    def log_pmf(i: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + \
            (n - i) * math.log1p(-p)
    return sum(math.exp(log_pmf(i)) for i in range(0, k + 1))


# -- the intervals themselves ---------------------------------------------------------------------------

def test_the_median_of_100_is_bracketed_by_ranks_40_and_61() -> None:
    # The textbook table (e.g. Conover, Practical Nonparametric Statistics): n = 100, 95 %: X(40)..X(61).
    assert order_ranks(100, 0.5, 0.95) == (40, 61)


@pytest.mark.parametrize("n, q", [(1000, 0.99), (500, 0.95), (60, 0.5), (2000, 0.999)])
def test_order_statistic_ranks_cover_at_least_the_level_and_are_the_tightest(n: int, q: float) -> None:
    lo, hi = order_ranks(n, q, 0.95)
    coverage = binomial_cdf(hi - 1, n, q) - (binomial_cdf(lo - 1, n, q) if lo >= 1 else 0.0)
    assert coverage >= 0.95
    # One rank tighter on either side and a tail would exceed 2.5 %.
    assert binomial_cdf(lo, n, q) >= 0.025 and binomial_cdf(hi - 2, n, q) < 0.975


@pytest.mark.parametrize("n", [1, 2, 7, 40, 299, 1000, 54_321, 1_000_000, 17_280_000])
@pytest.mark.parametrize("q", [0.0005, 0.5, 0.95, 0.99, 0.999, 0.9995])
def test_the_binomial_quantile_is_scipy_stats_own(n: int, q: float) -> None:
    # Summed from numpy (scipy costs the Locust process 14 MB, scipy.stats 60); at the tails the 90, 95 and 99 %
    # intervals use it must agree exactly (checked over 16,248 cases up to n = 2e7 while writing it).
    from scipy.stats import binom
    for prob in (0.005, 0.025, 0.05, 0.95, 0.975, 0.995):
        assert binom_ppf(prob, n, q) == int(binom.ppf(prob, n, q)), (prob, n, q)


def test_the_binomial_quantile_agrees_with_scipy_on_random_cases() -> None:
    from scipy.stats import binom
    rng = random.Random(20_261_202)
    for _ in range(300):
        n = int(10 ** rng.uniform(0, 7.3))
        q = rng.choice([0.5, 0.9, 0.95, 0.99, 0.999, rng.random()])
        for prob in (0.005, 0.025, 0.05, 0.95, 0.975, 0.995):
            assert binom_ppf(prob, n, q) == int(binom.ppf(prob, n, q)), (prob, n, q)


@pytest.mark.parametrize("n", [10 ** 9, 10 ** 10, 10 ** 12])
def test_past_the_exact_range_the_quantile_is_within_a_rank_of_scipy(n: int) -> None:
    # Only "how many more requests would decide it" asks for these (it doubles n up to 1e12).
    from scipy.stats import binom
    for q in (0.5, 0.99, 0.999):
        for prob in (0.005, 0.025, 0.975, 0.995):
            assert abs(binom_ppf(prob, n, q) - int(binom.ppf(prob, n, q))) <= 1, (prob, n, q)


@pytest.mark.parametrize("n", [7, 35, 99])
def test_a_binomial_cdf_exactly_at_the_probability_reaches_it(n: int) -> None:
    # For odd n, P(X <= (n-1)/2) = 1/2 exactly: that rank is the median's quantile, though floating point
    # puts the CDF an ulp low (scipy.stats answers (n+1)/2 for n = 35 and 99, (n-1)/2 for 7).
    k = (n - 1) // 2
    assert binomial_cdf(k, n, 0.5) == pytest.approx(0.5, abs=1e-12)
    assert binom_ppf(0.5, n, 0.5) == k


def test_a_p99_of_40_requests_has_no_upper_bound() -> None:
    lo, hi = order_ranks(40, 0.99, 0.95)
    assert hi == 41                   # past the last request: the interval is open above


@pytest.mark.parametrize("k, n, low, high", [
    (0, 10, 0.0, 0.27753),             # z^2 / (n + z^2) with z = 1.95996
    (50, 100, 0.40383, 0.59617),
    (10, 10, 0.72247, 1.0),
])
def test_wilson_intervals_match_the_formula(k: int, n: int, low: float, high: float) -> None:
    assert wilson(k, n, 0.95) == (pytest.approx(low, abs=1e-5), pytest.approx(high, abs=1e-5))


def test_percentile_bounds_come_from_the_exact_histogram() -> None:
    rec = recording([float(ms) for ms in range(1, 1001)])       # 1 .. 1000 ms, each once
    (t,) = parse_thresholds({"latency": ["p(99)<1000"]})
    interval = interval_for(t, rec.select(), 0.95)
    lo, hi = order_ranks(1000, 0.99, 0.95)                    # ranks 983 and 997
    # The k-th smallest latency is k ms; each bound sits at its HDR bucket's outer edge, within 0.1 %.
    assert interval is not None and interval.method == "order statistics"
    assert lo - 1 < interval.low <= lo and hi <= interval.high < hi * 1.001


# -- verdicts on synthetic recordings -------------------------------------------------------------------

def test_a_p99_is_passed_failed_or_left_undecided_by_its_interval() -> None:
    rec = recording([float(ms) for ms in range(1, 1001)])       # P99 = 990 ms, bracketed by 983..997 ms
    assert verdicts({"latency": ["p(99)<1000"]}, rec) == ["pass"]           # even the top rank is under it
    assert verdicts({"latency": ["p(99)<995"]}, rec) == ["inconclusive"]    # 990 < 995, but 997 is not
    assert verdicts({"latency": ["p(99)<980"]}, rec) == ["fail"]            # even the bottom rank is over it


@pytest.mark.parametrize("failures, verdict", [(14, "pass"), (27, "inconclusive"), (30, "inconclusive"),
                                               (40, "fail")])
def test_9995_success_over_54000_requests(failures: int, verdict: str) -> None:
    # 27 failures sit exactly on 99.95 %; 14 is far enough under it to show, 40 far enough over.
    rec = recording([100.0] * (54_000 - failures), failed=failures)
    v = judge(parse_thresholds({"success": ["rate>=0.9995"]}), rec, min_samples=1000)
    (r,) = v.results
    assert r.verdict == verdict
    assert v.exit_code == {"pass": 0, "fail": 1, "inconclusive": 2}[verdict]
    assert r.interval is not None and r.interval.method == "Wilson score"
    if failures == 27:
        assert r.more_samples is None and "sits on the limit" in r.detail
    if failures == 30:
        # If 30 in 54,000 held on, a run this many requests longer would show the breach.
        assert r.more_samples is not None and r.more_samples > 0
        n = 54_000 + r.more_samples
        f = round(30 / 54_000 * n)
        longer = recording([100.0] * (n - f), failed=f)
        assert verdicts({"success": ["rate>=0.9995"]}, longer) == ["fail"]
        assert any("30" in x or "inconclusive" in x for x in v.reason_texts)


def test_an_inconclusive_threshold_makes_the_run_prove_nothing_unless_told_otherwise() -> None:
    rec = recording([100.0] * (54_000 - 30), failed=30)
    th = parse_thresholds({"success": ["rate>=0.9995"]})
    v = judge(th, rec, min_samples=1000)
    assert (v.status, v.exit_code) == ("invalid", 2)
    assert [r.kind for r in v.reasons] == ["inconclusive", "inconclusive"]
    assert "more requests would decide it" in v.reasons[0].text and "95 %" in v.reasons[1].text
    fail = judge(th, rec, min_samples=1000, confidence=ConfidenceOptions(inconclusive="fail"))
    assert fail.exit_code == 1 and fail.results[0].verdict == "fail"
    observed = judge(th, rec, min_samples=1000, confidence=ConfidenceOptions(inconclusive="observed"))
    assert observed.exit_code == 1      # 99.944 % is under 99.95 % taken at face value
    assert "judged on the observed value" in observed.results[0].detail
    # A lower level narrows the interval: 20 failures in 54,000 pass at 50 %, not at 95 %.
    twenty = recording([100.0] * (54_000 - 20), failed=20)
    assert judge(th, twenty, min_samples=1000).exit_code == 2
    assert judge(th, twenty, min_samples=1000, confidence=ConfidenceOptions(level=0.5)).exit_code == 0


def test_a_breach_outranks_an_undecided_threshold() -> None:
    rec = recording([float(ms) for ms in range(1, 1001)])
    v = judge(parse_thresholds({"latency": ["p(99)<995", "p(50)<300"]}), rec, min_samples=1)
    assert [r.verdict for r in v.results] == ["inconclusive", "fail"] and v.exit_code == 1


def test_a_limit_at_0_or_1_is_a_fact_of_the_run_not_an_estimate() -> None:
    rec = recording([100.0] * 500)
    (r,) = judge(parse_thresholds({"success": ["rate>=1"]}), rec, min_samples=1).results
    assert r.verdict == "pass" and r.interval is None


def test_the_mean_has_a_normal_interval() -> None:
    rec = recording([100.0, 300.0] * 200)                  # mean 200 ms, sd 100.1 ms, n = 400
    (t,) = parse_thresholds({"latency": ["avg<250"]})
    interval = interval_for(t, rec.select(), 0.95)
    half = 1.959964 * 100.125 / 20
    assert interval is not None
    assert interval.low == pytest.approx(200 - half, rel=0.003)
    assert interval.high == pytest.approx(200 + half, rel=0.003)
    assert verdicts({"latency": ["avg<250", "avg<205", "avg<150"]}, rec) == ["pass", "inconclusive", "fail"]


@pytest.mark.parametrize("table, n", [
    ({"latency": ["p(99)<600"]}, 368),          # 0.99**n <= 2.5 %: 0.99**367 is 2.508 %
    ({"latency": ["p(50)<600"]}, 6),            # 0.5**n <= 2.5 %
    ({"success": ["rate>=0.9995"]}, 7_680),     # n / (n + 1.96**2) >= 0.9995: n >= 7,679.2
    ({"failures": ["rate<0.001"]}, 3_838),      # 1.96**2 / (n + 1.96**2) <= 0.001
    ({"requests": ["rps>=100"]}, None),         # a fact of the run: no floor
])
def test_the_fewest_requests_a_threshold_can_pass_with(table: dict, n: int | None) -> None:
    (t,) = parse_thresholds(table)
    assert samples_to_pass(t, 0.95) == n


def test_the_fewest_requests_are_enough_and_one_fewer_is_not() -> None:
    assert verdicts({"latency": ["p(99)<600"]}, recording([100.0] * 368)) == ["pass"]
    assert verdicts({"latency": ["p(99)<600"]}, recording([100.0] * 367)) == ["inconclusive"]
    assert verdicts({"success": ["rate>=0.9995"]}, recording([100.0] * 7_680)) == ["pass"]
    assert verdicts({"success": ["rate>=0.9995"]}, recording([100.0] * 7_679)) == ["inconclusive"]


# -- goodput ----------------------------------------------------------------------------------------------

def test_goodput_counts_successes_within_the_objective_against_every_scheduled_start() -> None:
    # 900 fast successes, 50 slow ones, 50 fast failures, 20 dropped starts: 900 of 1,020 are goodput.
    rec = recording([100.0] * 900 + [800.0] * 50, failed=50, dropped=20, duration=10.0)
    th = parse_thresholds({"goodput{slo:600ms}": ["rate>=0.8", "rps>=80", "count==900"],
                           "goodput{slo:1s}": ["rate>=0.9"]})
    v = judge(th, rec, min_samples=1)
    rate, rps, count, wider = v.results
    assert rate.observed == pytest.approx(900 / 1020) and rate.verdict == "pass"
    assert rate.interval is not None and rate.interval.low > 0.8
    assert rps.observed == pytest.approx(90.0) and rps.unit == "req/s"
    assert count.observed == 900 and count.verdict == "pass"
    assert wider.observed == pytest.approx(950 / 1020)
    assert rate.threshold.label() == "goodput rate >= 0.8 [slo=600 ms]"


def test_a_request_under_the_objective_counts_but_one_a_bucket_over_does_not() -> None:
    # The histogram holds 600.6 ms and 599 ms apart (buckets are 0.5 ms wide here); a request whose bucket
    # straddles the objective is left out, so goodput is never over-counted.
    rec = recording([599.0] * 10 + [600.6] * 10)
    (r,) = judge(parse_thresholds({"goodput{slo:600ms}": ["count>=0"]}), rec, min_samples=1).results
    assert r.observed == 10


@pytest.mark.parametrize("key, message", [
    ("goodput", "goodput needs its latency objective"),
    ("goodput{slo:fast}", "slo: not a duration"),
    ("goodput{slo:0ms}", "slo must be a latency above 0"),
    ("goodput{slo:600ms,expected_response:true}", "expected_response does not apply"),
    ("latency{slo:600ms}", "slo is goodput's"),
])
def test_goodput_keys_are_checked(key: str, message: str) -> None:
    with pytest.raises(ThresholdError, match=message):
        parse_thresholds({key: ["rate>=0.99"]})
