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


# -- random arrivals ------------------------------------------------------------------------------------

import random  # noqa: E402
import statistics  # noqa: E402

from loadtest.fields import Problems  # noqa: E402
from loadtest.loadmodel import OpenLoad, parse_load  # noqa: E402
from loadtest.locust.arrival import arrivals_for, even, renewal  # noqa: E402


def open_load(**load) -> OpenLoad:
    problems = Problems()
    model = parse_load({"model": "open", "max_vus": 10, **load}, problems)
    problems.raise_if_any()
    assert isinstance(model, OpenLoad)
    return model


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def test_even_starts_from_several_processes_interleave_and_add_up() -> None:
    s = ArrivalSchedule([Stage("hold", 10.0, rate=100.0)])
    one = list(even(s))
    parts = [list(even(s, i, 3)) for i in range(3)]
    assert sorted(t for p in parts for t in p) == pytest.approx(one)
    assert parts[0][0] == pytest.approx(0.01) and parts[1][0] == pytest.approx(0.02)


def test_poisson_arrivals_have_exponential_gaps_at_the_rate() -> None:
    s = ArrivalSchedule([Stage("hold", 200.0, rate=100.0)])
    times = list(renewal(s, 1.0, random.Random(1)))
    g = gaps(times)
    # 20,000 starts: the count is Poisson(20,000) (sd 141), a gap's coefficient of variation is 1
    # (sd of the estimate about 0.007 here); 4-5 standard errors either way.
    assert abs(len(times) - 20_000) < 700
    assert statistics.mean(g) == pytest.approx(0.01, rel=0.03)
    assert statistics.stdev(g) / statistics.mean(g) == pytest.approx(1.0, abs=0.05)
    per_second = [sum(1 for t in times if k <= t < k + 1) for k in range(200)]
    dispersion = statistics.variance(per_second) / statistics.mean(per_second)
    assert 0.7 < dispersion < 1.3          # Poisson counts: variance = mean (sd of the ratio about 0.1)


def test_gamma_burstiness_sets_how_bursty_the_gaps_are() -> None:
    s = ArrivalSchedule([Stage("hold", 200.0, rate=100.0)])
    for shape, cv in ((0.25, 2.0), (4.0, 0.5)):
        g = gaps(list(renewal(s, shape, random.Random(2))))
        # A Gamma(k) gap has a coefficient of variation 1/sqrt(k); the mean rate stays the schedule's.
        assert statistics.mean(g) == pytest.approx(0.01, rel=0.06)
        assert statistics.stdev(g) / statistics.mean(g) == pytest.approx(cv, rel=0.08)


def test_random_arrivals_follow_a_ramp() -> None:
    s = ArrivalSchedule([Stage("ramp", 100.0, rate=200.0)], start_rate=0.0)
    times = list(renewal(s, 1.0, random.Random(3)))
    # 0 -> 200/s over 100 s: 10,000 starts, a quarter of them in the first half.
    first_half = sum(1 for t in times if t < 50)
    assert abs(len(times) - 10_000) < 500 and first_half / len(times) == pytest.approx(0.25, abs=0.02)


def test_random_arrivals_are_reproducible_from_the_seed() -> None:
    load = open_load(arrivals="poisson", seed=7, stages=[{"duration": "5s", "rate": 50}])
    first = [t for t, _, _ in arrivals_for(load)]
    assert first == [t for t, _, _ in arrivals_for(load)]
    other = open_load(arrivals="poisson", seed=8, stages=[{"duration": "5s", "rate": 50}])
    assert first != [t for t, _, _ in arrivals_for(other)]
    # Two workers draw streams of their own: neither repeats the other.
    w0, w1 = ([t for t, _, _ in arrivals_for(load, i, 2)] for i in range(2))
    assert w0 != w1 and 100 < len(w0) + len(w1) < 400


def test_the_scenario_seed_is_the_arrivals_seed_by_default() -> None:
    from loadtest.scenario import parse_scenario
    raw = {"target": {"name": "relay"}, "mock": {"seed": 11},
           "load": {"model": "open", "max_vus": 5, "arrivals": "gamma", "burstiness": 0.5,
                    "stages": [{"duration": "2s", "rate": 10}]}}
    s = parse_scenario(raw)
    assert isinstance(s.load, OpenLoad) and s.load.seed == 11 and s.load.burstiness == 0.5
    assert s.load.report()["arrivals"] == "gamma" and s.load.report()["burstiness"] == 0.5


@pytest.mark.parametrize("load, message", [
    ({"arrivals": "bursty"}, "load.arrivals must be one of"),
    ({"arrivals": "poisson", "burstiness": 0.5}, "burstiness is for arrivals = \"gamma\""),
    ({"arrivals": "gamma", "burstiness": 0}, "load.burstiness must be a number above 0"),
    ({"seed": 3}, "seed is for random arrivals"),
    ({"time_scale": 2}, "time_scale is for arrivals = \"trace\""),
    ({"arrivals": "trace"}, "load.trace is required"),
])
def test_arrival_options_are_checked(load: dict, message: str) -> None:
    from loadtest.fields import ScenarioError
    with pytest.raises(ScenarioError, match=message):
        open_load(**{"stages": [{"duration": "2s", "rate": 10}], **load})


def test_closed_models_refuse_arrival_options() -> None:
    problems = Problems()
    parse_load({"model": "closed", "arrivals": "poisson", "stages": [{"duration": "1s", "users": 1}]}, problems)
    assert any("arrivals is for an open model" in m for m in problems.messages)


def test_each_start_goes_to_the_vu_that_went_idle_last_and_never_to_a_stopped_one() -> None:
    import gevent

    from loadtest.locust.arrival import ArrivalExecutor

    # Three starts 20 ms apart; VUs 0..3 wait in that order, VU 3 is stopped before the first start.
    executor = ArrivalExecutor([(0.02, None, None), (0.04, None, None), (0.06, None, None)])
    got: dict[int, int | None] = {}

    def vu(n: int) -> None:
        ticket = executor.take()
        got[n] = None if ticket is None else ticket.index

    vus = [gevent.spawn(vu, n) for n in range(4)]
    gevent.sleep(0)                          # every VU is waiting now, 3 on top
    vus[3].kill()
    assert executor.idle == 3
    executor.start()
    gevent.joinall(vus, timeout=5)
    # Last in, first served: the warm VU 2 takes the first start; the stopped VU 3 took none, and
    # none was lost on it.
    assert got == {2: 1, 1: 2, 0: 3}
    assert (executor.issued, executor.dropped, executor.idle) == (3, 0, 0)


def test_the_fewest_idle_vus_count_the_vus_a_run_has_used() -> None:
    import gevent

    from loadtest.locust.arrival import ArrivalExecutor

    # Six starts 20 ms apart on five VUs. Each VU holds its start for 30 ms, so at most two are in
    # flight at once: the same two VUs (last idle, first served) take every start, three never get one.
    executor = ArrivalExecutor([(0.02 * k, None, None) for k in range(1, 7)])
    served: dict[int, int] = {}

    def vu(n: int) -> None:
        while executor.take() is not None:
            served[n] = served.get(n, 0) + 1
            gevent.sleep(0.03)

    vus = [gevent.spawn(vu, n) for n in range(5)]
    gevent.sleep(0)
    assert executor.min_idle is None          # no start handed out yet
    executor.start()
    gevent.joinall(vus, timeout=5)
    assert executor.dropped == 0
    assert executor.min_idle == 3
    assert sorted(served) == [3, 4] and sum(served.values()) == 6
