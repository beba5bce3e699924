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


# -- request options: the real request shapes, checked against the target's API and model --------------

def test_the_new_scenarios_ask_for_what_their_models_take() -> None:
    stream = load_scenario("stream_preview")
    assert (stream.target.api, stream.client.stream, stream.client.partial_images) == ("openai", True, 2)
    assert {t.metric for t in stream.thresholds} == {"first_image", "latency", "success"}
    edit = load_scenario("catalog_edit")
    assert (edit.client.operation, edit.client.edit.mask, edit.client.input_fidelity) == ("edit", True, "high")
    assert {case for case, _ in edit.client.use_cases} == {"background_replacement", "product_placement"}


def test_request_options_are_read_in_the_apis_own_terms() -> None:
    s = scenario(target={"name": "gpt-image-1"}, client={
        "stream": True, "partial_images": 3, "quality": "high", "size": "1536x1024", "output_format": "webp",
        "output_compression": 70, "background": "transparent", "moderation": "low"})
    assert s.client.request_options() == {"stream": True, "partial_images": 3, "quality": "high",
                                          "size": "1536x1024", "output_format": "webp", "output_compression": 70,
                                          "background": "transparent", "moderation": "low"}
    assert s.client.size_text == "1536x1024" and scenario().client.size_text == "1024x1024"
    e = scenario(target={"name": "gpt-image-1"}, client={"operation": "edit", "edit": {"size": "1536x1024",
                                                                                    "images": 3, "format": "png"}})
    assert (e.client.edit.width, e.client.edit.height, e.client.edit.images) == (1536, 1024, 3)
    assert e.client.use_cases == (("background_replacement", 0.7), ("product_placement", 0.3))
    g = scenario(target={"name": "gemini-3.1-flash-image"}, client={"aspect_ratio": "4:1", "image_size": "2K",
                                                                    "operation": "edit"})
    assert (g.client.aspect_ratio, g.client.image_size, g.client.operation) == ("4:1", "2K", "edit")
    n = scenario(target={"name": "imagen-4"}, client={"batch": {"size": 10, "mode": "native"}})
    assert (n.client.batch_mode, n.client.batch_size) == ("native", 10)


def test_every_request_option_mistake_is_reported_at_once() -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(target={"name": "dall-e-3"}, client={
            "stream": True, "quality": "low", "output_format": "gif", "partial_images": 4, "aspect_ratio": "1:1",
            "size": "huge", "background": "transparent", "operation": "remix",
            "batch": {"size": 10, "mode": "parallel"}})
    text = str(err.value)
    for message in ("client.operation must be one of \"generate\", \"edit\"",
                    "client.output_format must be one of \"png\", \"jpeg\", \"webp\", got 'gif'",
                    "client.partial_images must be a whole number from 0 to 3",
                    "client.size must be WIDTHxHEIGHT",
                    "client.batch.mode must be one of \"semaphore\", \"native\"",
                    "client.stream streams single generations",
                    "client.quality 'low' is not a quality of dall-e-3 (standard, hd)",
                    "client.stream: dall-e-3 does not stream",
                    "client.aspect_ratio is not an option of the openai API",
                    "client.background is a gpt-image option; dall-e-3 does not take it"):
        assert message in text, message
    assert text.startswith("10 problems") or "problems:" in text


@pytest.mark.parametrize("target, client, message", [
    ({"name": "relay"}, {"operation": "edit"}, "the relay API has no image edits"),
    ({"name": "relay"}, {"size": "1536x1024"}, "'1536x1024' is not a size the relay takes"),
    ({"name": "imagen-4"}, {"stream": True}, "client.stream is not an option of the vertex API"),
    ({"name": "imagen-4"}, {"aspect_ratio": "21:9"}, "'21:9' is not one Imagen takes"),
    ({"name": "gemini-2.5-flash-image"}, {"image_size": "4K"}, "'4K' is not one gemini-2.5-flash-image takes"),
    ({"name": "midjourney-v7"}, {"quality": "high"}, "client.quality is not an option of the midjourney API"),
    ({"name": "dall-e-2"}, {"operation": "edit"}, "dall-e-2 edits one square PNG"),
    ({"name": "gpt-image-2"}, {"background": "transparent"}, "gpt-image-2 has no transparent backgrounds"),
    ({"name": "gpt-image-2"}, {"operation": "edit", "input_fidelity": "high"}, "gpt-image-2 takes no input_fidelity"),
    ({"name": "gpt-image-1"}, {"input_fidelity": "high"}, "input_fidelity applies to edits"),
    ({"name": "gpt-image-1"}, {"partial_images": 1}, "partial_images needs stream = true"),
    ({"name": "gpt-image-1"}, {"output_compression": 50}, "below 100 needs output_format"),
    ({"name": "gpt-image-1"}, {"output_format": "jpeg", "background": "transparent"}, "JPEG has no alpha"),
    ({"name": "gpt-image-1"}, {"edit": {"photos": 2}}, "it needs operation = \"edit\""),
    ({"name": "gpt-image-1"}, {"operation": "edit", "edit": {"images": 17}}, "client.edit.images must be"),
    ({"name": "gpt-image-1"}, {"operation": "edit", "edit": {"size": "10x10"}}, "sides from 64 to 4096"),
    ({"name": "gpt-image-1"}, {"size": "1792x1024"}, "'1792x1024' is not a size of gpt-image-1"),
    ({"name": "https://api.example/v1", "api": "openai", "model": "dall-e-3"}, {"quality": "medium"},
     "'medium' is not a quality of dall-e-3"),
])
def test_a_request_option_the_target_does_not_take_is_refused(target: dict, client: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(target=target, client=client)
    assert message in str(err.value)


def test_a_url_target_of_an_unknown_model_is_checked_only_by_its_api() -> None:
    s = scenario(target={"name": "https://gw.example/v1", "api": "openai", "model": "house-images"},
                 client={"quality": "ultra", "stream": True})
    assert s.client.quality == "ultra"


def test_changing_the_target_on_the_command_line_rechecks_the_options_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario("stream_preview", Overrides(target="imagen-4"))
    text = str(err.value)
    assert "client.stream is not an option of the vertex API (the suite sends it to openai) (after --target)" in text
    assert "client.quality is not an option of the vertex API" in text
    assert load_scenario("catalog_edit", Overrides(target="gpt-image-1.5")).target.model == "gpt-image-1.5"
