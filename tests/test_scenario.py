"""Scenario files: every shipped one loads; a mistake in one is a clear error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.scenario import Overrides, ScenarioError, load_scenario, parse_scenario, scenario_names

BASE = {"load": {"stages": [{"name": "s", "duration": "10s", "users": 5}]}}


def scenario(**over):
    raw = {**BASE, **over}
    return parse_scenario(raw)


def test_the_shipped_scenarios_load() -> None:
    names = scenario_names()
    assert set(names) >= {"single", "batch_10", "batch_50", "flash_sale", "sustained", "rate_limit_storm", "outage"}
    for name in names:
        s = load_scenario(name)
        assert s.thresholds and s.duration_s > 0


def test_flash_sale_is_a_surge_to_847() -> None:
    s = load_scenario("flash_sale")
    assert [st.name for st in s.load.stages] == ["baseline", "surge", "hold", "decay"]
    assert max(st.users for st in s.load.stages) == 847
    assert {t.expression() for t in s.thresholds} >= {"p(99)<600", "p(50)<500", "rate>=0.9995"}


def test_duration_stretches_every_stage_and_action_in_proportion() -> None:
    s = load_scenario("outage")
    longer = load_scenario("outage", Overrides(duration="4h"))
    k = longer.duration_s / s.duration_s
    assert longer.duration_s == pytest.approx(4 * 3600)
    assert [st.duration_s for st in longer.load.stages] == pytest.approx([st.duration_s * k for st in s.load.stages])
    assert [a.at_s for a in longer.actions] == pytest.approx([a.at_s * k for a in s.actions])
    assert [st.spawn_rate for st in longer.load.stages] == [st.spawn_rate for st in s.load.stages]


def test_target_can_be_any_provider_or_a_base_url() -> None:
    s = load_scenario("single", Overrides(target="dall-e-4"))
    assert (s.target.api, s.target.model, s.target.on_mock) == ("openai", "dall-e-4", True)
    s = load_scenario("single", Overrides(target="imagen-4"))
    assert (s.target.api, s.target.model) == ("vertex", "imagen-4")
    s = load_scenario("single", Overrides(target="https://relay.example.com/v1/", api="relay", model="dall-e-4"))
    assert (s.target.on_mock, s.target.base_url, s.target.model) == (False, "https://relay.example.com/v1",
                                                                     "dall-e-4")


@pytest.mark.parametrize("over, message", [
    ({"load": {"stages": []}}, "load.stages must be a non-empty list"),
    ({"load": {"model": "sideways", "stages": [{"duration": "1s", "users": 1}]}}, "load.model must be"),
    ({"load": {"stages": [{"duration": "1s"}]}}, "load.stages[0].users is required"),
    ({"load": {"stages": [{"duration": "-1s", "users": 1}]}}, "load.stages[0].duration"),
    ({"load": {"stages": [{"duration": "1s", "users": 1, "rate": 3}]}}, "unknown key(s) rate"),
    ({"load": {"model": "open", "stages": [{"duration": "1s", "rate": 3}]}}, "load.max_vus"),
    ({"load": {"stages": [{"name": "a", "duration": "1s", "users": 1}, {"name": "a", "duration": "1s",
                                                                     "users": 1}]}}, "unique"),
    ({"target": {"name": "dall-e-9"}}, "neither a base URL nor a provider"),
    ({"target": {"name": "dall-e-4", "model": "imagen-4"}}, "serves only 'dall-e-4'"),
    ({"target": {"name": "relay", "model": "gpt-image-9"}}, "not served by relay"),
    ({"target": {"name": "https://x.example/v1", "api": "soap"}}, "target.api must be one of"),
    ({"client": {"retry": {"on": [200]}}}, "client.retry.on"),
    ({"client": {"use_cases": {"weddings": 1}}}, "client.use_cases: unknown key(s) weddings"),
    ({"client": {"keys": 0}}, "client.keys"),
    ({"thresholds": {"latency": ["p(99)<<600"]}}, "latency"),
    ({"thresholds": {"speed": ["p(99)<600"]}}, "speed"),
    ({"actions": [{"at": "99s", "provider": "relay", "set": {"outage": True}}]}, "after the run ends"),
    ({"actions": [{"at": "1s", "provider": "relay"}]}, "actions[0].set"),
    ({"surprise": 1}, "unknown top-level key(s) surprise"),
])
def test_mistakes_are_clear_errors(over: dict, message: str) -> None:
    with pytest.raises((ScenarioError, ValueError)) as err:
        scenario(**over)
    assert message in str(err.value)


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ScenarioError, match="bad.toml: not valid TOML"):
        load_scenario(str(bad))
    with pytest.raises(ScenarioError, match="no scenario 'nope'"):
        load_scenario("nope")
