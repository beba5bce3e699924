"""A scenario that cannot show what its thresholds ask says so before it starts."""

from __future__ import annotations

import pytest

from loadtest.scenario import Overrides, load_scenario, parse_scenario, scenario_names
from loadtest.sizing import expected_requests, warnings


def test_single_against_a_direct_provider_says_up_front_that_it_cannot_pass() -> None:
    s = load_scenario("single", Overrides(target="dall-e-4"))
    estimate = expected_requests(s)
    # 4 users x 60 s / 4.51 s (dall-e-4's mean service time) is about 53 images.
    assert estimate is not None and estimate.total == pytest.approx(4 * 60 / 4.5084, rel=0.01)
    (note,) = warnings(s)
    assert "single against dall-e-4 will make about 53 requests in 60 s" in note
    assert "latency p(99) < 600 ms needs at least 500, the [gate] min_samples floor" in note
    assert "cannot pass" in note and "--duration" in note


def test_the_built_in_scenarios_can_show_what_they_ask_against_the_relay() -> None:
    for name in scenario_names():
        assert warnings(load_scenario(name)) == [], name


def test_the_confidence_level_sets_what_is_needed() -> None:
    raw = {"target": {"name": "relay"}, "load": {"model": "open", "max_vus": 50,
                                                   "stages": [{"duration": "10s", "rate": 600}]},
           "thresholds": {"success": ["rate>=0.9995"]}, "gate": {"min_samples": 100}}
    # 6,000 starts: 7,680 are needed at 95 %, 5,410 at 90 % (1.645**2 x 0.9995 / 0.0005).
    assert "needs at least 7,680 at 95 % confidence" in warnings(parse_scenario(raw))[0]
    assert warnings(parse_scenario({**raw, "gate": {"min_samples": 100, "confidence": 0.9}})) == []


def test_a_stage_filtered_threshold_is_sized_by_its_stage() -> None:
    raw = {"target": {"name": "relay"},
           "load": {"model": "open", "max_vus": 50, "stages": [{"name": "warm", "duration": "1s", "rate": 100},
                                                                {"name": "hold", "duration": "20s", "rate": 100}]},
           "thresholds": {"latency{stage:warm}": ["p(99)<600"]}, "gate": {"min_samples": 10}}
    (note,) = warnings(parse_scenario(raw))
    assert "latency p(99) < 600 ms [stage=warm] needs at least 368" in note
    assert "about 100 expected in its stage" in note


def test_a_url_target_gets_no_guess() -> None:
    s = load_scenario("single", Overrides(target="https://relay.example.com/v1"))
    assert expected_requests(s) is None and warnings(s) == []
