"""Over-saturation seen from the timeline: a target past its capacity, told apart from a busy one that copes."""

from __future__ import annotations

import random

from loadtest.gate import RunFacts, judge
from loadtest.recorder import Recorder
from loadtest.saturation import ABORT_PREFIX, SaturationCheck, is_saturation_abort
from loadtest.thresholds import parse_thresholds


def timeline(seconds: int, offered: float, served: float, p50: float, rise_ms_per_s: float = 0.0,
             dropped_from: int | None = None, dropped_per_s: int = 0, seed: int = 0) -> list[dict]:
    """Per-second rows as the recorder writes them: Poisson-noisy completions, a median latency."""
    rng = random.Random(seed)
    rows = []
    for s in range(seconds):
        finished = max(0, round(rng.gauss(min(offered, served), min(offered, served) ** 0.5)))
        dropped = dropped_per_s if dropped_from is not None and s >= dropped_from else 0
        rows.append({"t_s": s, "requests": finished, "dropped": dropped,
                     "p50_ms": p50 + rise_ms_per_s * s + rng.gauss(0, p50 * 0.03)})
    return rows


def first_finding(check: SaturationCheck, rows: list[dict]) -> float | None:
    for now in range(1, len(rows) + 1):
        finding = check.check(rows[:now], now)
        if finding is not None:
            return finding.at_s
    return None


def constant(rate: float):
    return lambda a, b: rate * (b - a)


def test_a_target_that_keeps_up_is_never_called_saturated() -> None:
    for seed in range(20):
        # 90 % of capacity: every start finishes, latency flat up to noise.
        rows = timeline(30, offered=80, served=89, p50=225, seed=seed)
        assert first_finding(SaturationCheck(constant(80), since_s=3), rows) is None


def test_a_queue_filling_towards_a_steady_state_is_not_saturation() -> None:
    # Near capacity latency climbs for a while, but what starts still finishes.
    rows = timeline(30, offered=85, served=86, p50=225, rise_ms_per_s=15, seed=1)
    assert first_finding(SaturationCheck(constant(85), since_s=3), rows) is None


def test_a_growing_backlog_with_rising_latency_is_found_within_seconds() -> None:
    # 20 % over capacity: 18 more start than finish each second, and each waits longer than the last.
    rows = timeline(30, offered=106, served=88, p50=225, rise_ms_per_s=200, seed=2)
    at = first_finding(SaturationCheck(constant(106), since_s=3), rows)
    assert at is not None and at <= 3 + 5 + 2      # the warm-up, one window, two checks in a row
    finding = SaturationCheck(constant(106), since_s=3)
    for now in range(1, 12):
        found = finding.check(rows[:now], now)
    assert found is not None and found.signal == "backlog" and "more requests started than finished" in found.words


def test_dropped_starts_are_saturation_at_once() -> None:
    # Every VU busy from the 8th second on: 3 of each 100 starts find none free.
    rows = timeline(20, offered=100, served=97, p50=100, dropped_from=8, dropped_per_s=3)
    check = SaturationCheck(constant(100), since_s=3)
    at = first_finding(check, rows)
    assert at is not None and 9 <= at <= 11
    assert check.assess(rows, 12).signal == "dropped"


def test_nothing_is_judged_during_the_warm_up() -> None:
    rows = timeline(8, offered=106, served=50, p50=225, rise_ms_per_s=400)
    assert first_finding(SaturationCheck(constant(106), since_s=5), rows) is None


def test_a_saturation_abort_is_a_breach_named_as_such() -> None:
    rec = Recorder(start_time=1e9)
    for i in range(500):
        rec.record(name="g", target="t", latency_ms=100.0, ok=True, status=200, ts=1e9 + 1 + i / 100)
    rec.stop(1e9 + 8)
    words = f"{ABORT_PREFIX} at 8 s: 90 more requests started than finished"
    assert is_saturation_abort(words) and not is_saturation_abort("latency p(99) < 600 ms")
    v = judge(parse_thresholds({"latency": ["p(99)<600"]}), rec, facts=RunFacts(aborted_by=words), min_samples=1)
    assert v.exit_code == 1
    assert v.reasons[0].kind == "saturated" and "stopped early on over-saturation at 8 s" in v.reasons[0].text


def test_ten_percent_over_capacity_is_found_in_a_short_step() -> None:
    # 97.6 offered against 88.7 served (dall-e-4 scaled, 20 slots): 9 more each second, a queue that never
    # drains; the median climbs by about a tenth of a second per second. Seen within 11 s of a 3 s warm-up.
    for seed in range(10):
        rows = timeline(20, offered=97.6, served=88.7, p50=220, rise_ms_per_s=100, seed=seed)
        at = first_finding(SaturationCheck(constant(97.6), since_s=3), rows)
        assert at is not None and at <= 14, (seed, at)
