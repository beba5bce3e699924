"""[sut]: how a scenario declares its gateway, and every mistake in it named at load time."""

from __future__ import annotations

import pytest

from loadtest.scenario import ScenarioError, load_scenario, parse_scenario
from loadtest.sut import fill, placeholders

BASE = {"target": {"name": "dall-e-4"}, "load": {"model": "closed", "stages": [{"duration": "10s", "users": 2}]}}


def scenario_with(sut: object) -> dict:
    return {**BASE, "sut": sut}


def test_builtin_gateway_scenarios_route_the_target_to_the_mock_with_a_fallback() -> None:
    fallbacks = {"gateway_flash_sale": {"dall-e-4-flash"}, "gateway_outage": {"imagen-4", "dall-e-4-flash"}}
    for name, expected in fallbacks.items():
        s = load_scenario(name)
        assert s.sut is not None and s.sut.kind == "litellm"
        assert s.duration_s <= 60
        names = [m["model_name"] for m in s.sut.litellm["model_list"]]
        assert s.target.model in names and expected <= set(names)
        assert s.sut.fallback_models() == expected
        openai = [m for m in s.sut.litellm["model_list"] if m["litellm_params"]["model"].startswith("openai/")]
        assert openai and all(m["litellm_params"]["api_base"] == "{openai_base_url}" for m in openai)
    outage = load_scenario("gateway_outage")
    assert [(a.provider, dict(a.settings)) for a in outage.actions] == [
        ("dall-e-4", {"outage": True}), ("dall-e-4", {"outage": False})]
    # The cross-provider fallback: imagen-4 first, on the mock's Vertex AI, at the whole :predict URL that
    # LiteLLM takes a custom api_base for (it sends no token there: the mock's imagen-4 takes none).
    assert outage.sut is not None
    assert outage.sut.litellm["router_settings"]["fallbacks"] == [{"dall-e-4": ["imagen-4", "dall-e-4-flash"]}]
    [imagen] = [m["litellm_params"] for m in outage.sut.litellm["model_list"] if m["model_name"] == "imagen-4"]
    assert imagen["model"] == "vertex_ai/imagen-4.0-generate-001" and set(imagen) == {"model", "api_base"}
    url = fill(imagen["api_base"], placeholders("http://127.0.0.1:9000", 4000))
    assert url == ("http://127.0.0.1:9000/vertex/v1/projects/shop/locations/us-central1/publishers/google/models/"
                   "imagen-4.0-generate-001:predict")
    assert "imagen-4.auth=optional" in outage.mock.sets and "imagen-4.limits=false" in outage.mock.sets


def test_placeholders_are_the_mock_base_urls_per_api_and_the_port() -> None:
    values = placeholders("http://127.0.0.1:9000/", 4321)
    assert values["openai_base_url"] == "http://127.0.0.1:9000/openai/v1"
    assert values["vertex_base_url"] == "http://127.0.0.1:9000/vertex/v1"
    assert values["relay_base_url"] == "http://127.0.0.1:9000/relay/v1"
    assert fill({"a": ["--port={port}", "{mock_url}", "{not_known} {x"]}, values) == {
        "a": ["--port=4321", "http://127.0.0.1:9000", "{not_known} {x"]}


def test_a_command_gateway_is_parsed_with_its_health_path() -> None:
    s = parse_scenario(scenario_with({"kind": "command", "command": ["./gw", "--port", "{port}"],
                                      "health": "/healthz", "base_path": "/v1/", "ready_timeout": "5s"}))
    assert s.sut is not None
    assert s.sut.command == ("./gw", "--port", "{port}")
    assert (s.sut.health, s.sut.base_path, s.sut.ready_timeout_s) == ("/healthz", "/v1", 5.0)
    assert s.sut.orphan_watch_s == 5.0        # the default watch for calls the gateway makes after the end
    s = parse_scenario(scenario_with({"kind": "command", "command": ["./gw", "{port}"], "orphan_watch": "0s"}))
    assert s.sut is not None and s.sut.orphan_watch_s == 0.0


@pytest.mark.parametrize("sut, words", [
    ({"kind": "envoy"}, 'sut.kind must be one of "litellm", "command"'),
    ({"kind": "command"}, "sut.command must be a non-empty list of strings"),
    ({"kind": "command", "command": ["./gw"]}, "must say where the gateway listens: put {port} in it"),
    ({"kind": "command", "command": ["./gw", "{port}", "{openai_url}"]}, "placeholder {openai_url} that is not known"),
    ({"kind": "litellm"}, "sut.litellm must hold LiteLLM's proxy config with a non-empty model_list"),
    ({"kind": "litellm", "command": ["x"], "litellm": {"model_list": [{}]}}, "sut.command is for kind = \"command\""),
    ({"kind": "command", "command": ["./gw", "{port}"], "health": "healthz"}, "sut.health must be a path"),
    ({"kind": "command", "command": ["./gw", "{port}"], "colour": 1}, "sut: unknown key(s) colour"),
    ({"kind": "command", "command": ["./gw", "{port}"], "orphan_watch": "20m"},
     "sut.orphan_watch must be 0 s to 600 s"),
    ({"kind": "command", "command": ["./gw", "{port}"], "orphan_watch": "soon"}, "sut.orphan_watch"),
    ("litellm", "sut must be a table"),
])
def test_every_mistake_in_sut_is_named(sut: object, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario_with(sut))
    assert words in str(info.value)


def test_a_gateway_needs_a_mock_provider_as_its_target() -> None:
    raw = {**scenario_with({"kind": "command", "command": ["./gw", "{port}"]}),
           "target": {"name": "https://gw.example.com", "api": "openai", "model": "x"}}
    with pytest.raises(ScenarioError, match="with \\[sut\\], the target names the mock provider"):
        parse_scenario(raw)
