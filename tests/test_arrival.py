"""The open-model schedule: starts on time whatever the responses do, ramps like k6's arrival rate."""

from __future__ import annotations

import pytest

from loadtest.loadmodel import Stage
from loadtest.locust.arrival import ArrivalSchedule


def test_constant_rate_spaces_starts_evenly() -> None:
    s = ArrivalSchedule([Stage("hold", 10.0, rate=100.0)])
    assert s.total == pytest.approx(1000)
    times = [s.time_of(i) for i in range(1, 1001)]
    assert times[0] == pytest.approx(0.01) and times[-1] == pytest.approx(10.0)
    assert all(b - a == pytest.approx(0.01) for a, b in zip(times, times[1:]))
    assert s.time_of(1001) is None


def test_a_ramp_integrates_linearly_and_the_next_stage_starts_from_its_end() -> None:
    s = ArrivalSchedule([Stage("ramp", 10.0, rate=100.0), Stage("hold", 5.0, rate=100.0)],
                        start_rate=0.0)
    # 0 -> 100 per second over 10 s is 500 starts; then 100 per second.
    assert s.total == pytest.approx(500 + 500)
    assert s.time_of(125) == pytest.approx(5.0)        # a quarter of the ramp's area at half its time
    assert s.time_of(500) == pytest.approx(10.0)
    assert s.time_of(600) == pytest.approx(11.0)
    assert s.time_of(1000) == pytest.approx(15.0) and s.time_of(1001) is None


def test_a_process_share_takes_its_part_of_the_rate() -> None:
    s = ArrivalSchedule([Stage("hold", 10.0, rate=100.0)])
    # A worker with half the VUs issues every other start: its i-th start is the (2i)-th overall.
    assert s.time_of(10 / 0.5) == pytest.approx(0.2)
