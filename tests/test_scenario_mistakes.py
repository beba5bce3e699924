"""Scenario mistakes, as a table: each one a clear error at load time, naming the field, all at once.

Every row is one mistake a person makes in a scenario file (or on the command line) and a
piece of the message that must name it. The base scenario is valid; each row changes one
thing. A file with many mistakes gets every one of them in one error; and no value of any
type at any key makes the loader fail in any other way than with that error (Hypothesis).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtest.scenario import Overrides, ScenarioError, load_scenario, parse_scenario

BASE: dict[str, Any] = {
    "name": "base",
    "target": {"name": "relay", "model": "midjourney-v7"},
    "client": {"timeout": "30s", "keys": 8},
    "load": {"model": "closed", "stages": [{"name": "warm", "duration": "10s", "users": 4},
                                           {"name": "surge", "duration": "20s", "users": 8}]},
    "thresholds": {"latency": ["p(99)<600"], "success": ["rate>=0.9995"]},
    "gate": {"min_samples": 100},
}
OPEN = {"model": "open", "max_vus": 10, "stages": [{"name": "hold", "duration": "10s", "rate": 5}]}
DROP = object()    # a key to remove from the base


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get("__replace__"):
            out[key] = merged(out[key], value)
        else:
            value = copy.deepcopy(value, {id(DROP): DROP})
            out[key] = {k: v for k, v in value.items() if k != "__replace__"} if isinstance(value, dict) else value
    return out


def replaced(value: dict[str, Any]) -> dict[str, Any]:
    return {"__replace__": True, **value}


def stage(**fields: Any) -> dict[str, Any]:
    return {"load": {"stages": [{"name": "warm", "duration": "10s", "users": 4, **fields}]}}


def action(**fields: Any) -> dict[str, Any]:
    return {"actions": [{"at": "5s", "provider": "midjourney-v7", "set": {"outage": True}, **fields}]}


def threshold(key: str, *entries: Any) -> dict[str, Any]:
    return {"thresholds": replaced({key: list(entries)})}


MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    # -- the top level
    ("unknown top-level key", {"surprise": 1}, "unknown top-level key(s) surprise"),
    ("a key in the wrong case", {"Name": "x"}, "unknown top-level key(s) Name"),
    ("a name that climbs out of reports/", {"name": "../../../tmp/x"}, "name must be a plain name"),
    ("an empty name", {"name": ""}, "name must be a plain name"),
    ("a name with a space", {"name": "my sale"}, "name must be a plain name"),
    ("a name that is not a string", {"name": 5}, "name must be a string"),
    ("a description that is a list", {"description": ["x"]}, "description must be a string"),
    ("no [load] at all", {"load": DROP}, "[load] is required"),
    ("[load] as a string", {"load": "fast"}, "load must be a table"),
    ("target as a string", {"target": "relay"}, "target must be a table"),
    ("thresholds as a list", {"thresholds": ["p(99)<600"]}, "[thresholds] must be a table"),
    ("an empty [thresholds] table", {"thresholds": replaced({})}, "[thresholds] is empty"),
    ("[actions] as one table, not [[actions]]", {"actions": {"at": "5s"}}, "actions must be an array of tables"),
    ("gate as a number", {"gate": 5}, "gate must be a table"),
    ("client as a string", {"client": "fast"}, "client must be a table"),
    ("mock as a list", {"mock": []}, "mock must be a table"),
    # -- [target]
    ("a provider the mock does not have", {"target": {"name": "dall-e-9"}}, "neither a base URL nor a provider"),
    ("a key typo in [target]", {"target": {"modle": "x"}}, "target: unknown key(s) modle"),
    ("a model that is a number", {"target": {"model": 4}}, "target.model must be a string"),
    ("an empty model", {"target": {"model": ""}}, "target.model must not be empty"),
    ("a direct provider asked for another model", {"target": {"name": "dall-e-4", "model": "imagen-4"}},
     "serves only 'dall-e-4'"),
    ("a model the relay does not serve", {"target": {"model": "gpt-image-9"}}, "not served by relay"),
    ("an unknown API for a URL", {"target": {"name": "https://x.example/v1", "api": "soap"}},
     "target.api must be one of"),
    ("a Vertex URL with no model", {"target": replaced({"name": "https://x.example/v1", "api": "vertex"})},
     "a Vertex target needs a model"),
    ("the wrong API for a mock provider", {"target": {"api": "openai"}}, "'relay' speaks relay, not openai"),
    ("a URL of another scheme", {"target": {"name": "ftp://x.example/v1"}}, "neither a base URL nor a provider"),
    ("a URL with no host", {"target": {"name": "http:///v1"}}, "names no host"),
    ("a URL with a bad port", {"target": {"name": "http://x.example:99999/v1"}}, "not a usable base URL"),
    ("a URL with a space", {"target": {"name": "https://x.example/v 1"}}, "white space"),
    ("a target name that is a number", {"target": {"name": 5}}, "target.name must be a string"),
    # -- [mock]
    ("profiles as one string", {"mock": {"profiles": "mine.toml"}}, "mock.profiles must be a list of strings"),
    ("a profile file that is not there", {"mock": {"profiles": ["no-such-profiles.toml"]}}, "mock profiles:"),
    ("a profile file that is a folder", {"mock": {"profiles": [""]}}, "is a folder, not a TOML file"),
    ("set as one string", {"mock": {"set": "relay.error_rate=0.05"}}, "mock.set must be a list of strings"),
    ("a mistyped setting in mock.set", {"mock": {"set": ["relay.outge=true"]}}, "unknown setting 'outge'"),
    ("a provider mock.set does not know", {"mock": {"set": ["nobody.outage=true"]}}, "no provider 'nobody'"),
    ("mock.set without a value", {"mock": {"set": ["relay.error_rate"]}}, "NAME.setting=value"),
    ("mock.set out of range", {"mock": {"set": ["relay.error_rate=2"]}}, "error_rate must be between"),
    ("a negative seed", {"mock": {"seed": -1}}, "mock.seed must be a whole number >= 0"),
    ("a seed as a string", {"mock": {"seed": "42"}}, "mock.seed must be a whole number"),
    ("a negative latency scale", {"mock": {"latency_scale": -1}}, "mock.latency_scale must be a number >= 0"),
    ("a latency scale of nan", {"mock": {"latency_scale": float("nan")}}, "mock.latency_scale must be a number"),
    ("a key typo in [mock]", {"mock": {"sed": 1}}, "mock: unknown key(s) sed"),
    # -- [client]
    ("a timeout of 0s", {"client": {"timeout": "0s"}}, "client.timeout must be longer than 0 s"),
    ("a timeout of 0", {"client": {"timeout": 0}}, "client.timeout must be longer than 0 s"),
    ("a timeout in words", {"client": {"timeout": "30 seconds"}}, "client.timeout: not a duration"),
    ("a timeout of true", {"client": {"timeout": True}}, "client.timeout: a duration must be"),
    ("a negative timeout", {"client": {"timeout": "-5s"}}, "client.timeout: a duration cannot be negative"),
    ("no keys", {"client": {"keys": 0}}, "client.keys must be a whole number from 1"),
    ("keys as a fraction", {"client": {"keys": 2.5}}, "client.keys must be a whole number"),
    ("ten million keys", {"client": {"keys": 10_000_000}}, "client.keys must be a whole number from 1 to"),
    ("retry as a word", {"client": {"retry": "yes"}}, "client.retry must be true, false or a table"),
    ("no attempts at all", {"client": {"retry": {"max_attempts": 0}}}, "client.retry.max_attempts"),
    ("honour_retry_after as a word", {"client": {"retry": {"honour_retry_after": "no"}}},
     "client.retry.honour_retry_after must be true or false"),
    ("retry on a success", {"client": {"retry": {"on": [200]}}}, "client.retry.on must be a non-empty list"),
    ("retry on a string", {"client": {"retry": {"on": "429"}}}, "client.retry.on must be a non-empty list"),
    ("retry on nothing", {"client": {"retry": {"on": []}}}, "client.retry.on must be a non-empty list"),
    ("a backoff ceiling below its base", {"client": {"retry": {"base": "2s", "max_backoff": "1s"}}},
     "client.retry.max_backoff (1 s) is below client.retry.base (2 s)"),
    ("a key typo in retry", {"client": {"retry": {"maxattempts": 3}}}, "client.retry: unknown key(s) maxattempts"),
    ("a backoff in words", {"client": {"retry": {"base": "soon"}}}, "client.retry.base: not a duration"),
    ("a batch of 0", {"client": {"batch": {"size": 0}}}, "client.batch.size"),
    ("a batch concurrency above its size", {"client": {"batch": {"size": 10, "concurrency": 20}}},
     "client.batch.concurrency (20) cannot exceed client.batch.size (10)"),
    ("a key typo in batch", {"client": {"batch": {"sise": 10}}}, "client.batch: unknown key(s) sise"),
    ("an unknown use case", {"client": {"use_cases": {"weddings": 1}}}, "client.use_cases: unknown key(s) weddings"),
    ("use cases all zero", {"client": {"use_cases": {"product_mockup": 0}}}, "weights must not all be zero"),
    ("a negative use-case weight", {"client": {"use_cases": {"product_mockup": -1}}},
     "client.use_cases.product_mockup must be a number >= 0"),
    ("no use cases", {"client": {"use_cases": {}}}, "client.use_cases must be a table of use case = weight"),
    ("a weight as a string", {"client": {"use_cases": {"product_mockup": "1"}}},
     "client.use_cases.product_mockup must be a number"),
    ("a width of 0", {"client": {"width": 0}}, "client.width"),
    ("a height too large", {"client": {"height": 99_999}}, "client.height"),
    ("a poll interval of 0s", {"client": {"poll_interval": "0s"}}, "client.poll_interval must be longer than 0 s"),
    ("a job timeout of 0s", {"client": {"job_timeout": "0s"}}, "client.job_timeout must be longer than 0 s"),
    ("a key typo in [client]", {"client": {"timout": "30s"}}, "client: unknown key(s) timout"),
    # -- [load]
    ("no stages", {"load": {"stages": []}}, "load.stages must be a non-empty list"),
    ("stages as a string", {"load": {"stages": "fast"}}, "load.stages must be a non-empty list"),
    ("a stage that is not a table", {"load": {"stages": ["warm"]}}, "load.stages[0] must be a table"),
    ("an unknown model", {"load": {"model": "sideways"}}, "load.model must be one of"),
    ("a key typo in [load]", {"load": {"stage": []}}, "load: unknown key(s) stage"),
    ("a stage without users", {"load": {"stages": [{"duration": "1s"}]}}, "load.stages[0].users is required"),
    ("a stage without a duration", {"load": {"stages": [{"users": 1}]}}, "load.stages[0].duration is required"),
    ("a negative duration", stage(duration="-1s"), "load.stages[0].duration: a duration cannot be negative"),
    ("a duration of 0s", stage(duration="0s"), "load.stages[0].duration must be longer than 0 s"),
    ("an open key in a closed stage", stage(rate=3), "load.stages[0]: unknown key(s) rate"),
    ("negative users", stage(users=-1), "load.stages[0].users must be a whole number"),
    ("users as a fraction", stage(users=1.5), "load.stages[0].users must be a whole number"),
    ("a billion users", stage(users=10**9), "load.stages[0].users must be a whole number from 0 to"),
    ("a negative spawn rate", stage(spawn_rate=-1), "load.stages[0].spawn_rate must be a number"),
    ("a stage name a filter cannot name", stage(name="warm,up"), "load.stages[0].name must be a name without"),
    ("an empty stage name", stage(name=""), "load.stages[0].name must be a name without"),
    ("a stage name that is a number", stage(name=5), "load.stages[0].name must be a string"),
    ("two stages of one name", {"load": {"stages": [{"name": "a", "duration": "1s", "users": 1},
                                                    {"name": "a", "duration": "1s", "users": 1}]}},
     "load.stages need unique names"),
    ("no users in any stage", stage(users=0), "load.stages ask for no users at all"),
    ("think time of one value in a list", {"load": {"think_time": ["1s"]}}, "load.think_time must be a duration"),
    ("think time backwards", {"load": {"think_time": ["2s", "1s"]}}, "load.think_time has its max below its min"),
    ("an open key in a closed model", {"load": {"max_vus": 10}}, "load.max_vus is for an open model"),
    ("an open model without max_vus", {"load": replaced({k: v for k, v in OPEN.items() if k != "max_vus"})},
     "load.max_vus is required"),
    ("an open model with 0 VUs", {"load": replaced({**OPEN, "max_vus": 0})}, "load.max_vus must be a whole number"),
    ("a closed key in an open model", {"load": replaced({**OPEN, "think_time": "1s"})},
     "load.think_time is for a closed model"),
    ("a negative arrival rate", {"load": replaced({**OPEN, "stages": [{"duration": "1s", "rate": -5}]})},
     "load.stages[0].rate must be a number"),
    ("no arrivals at all", {"load": replaced({**OPEN, "stages": [{"duration": "1s", "rate": 0}]})},
     "have no arrivals at all"),
    ("a closed key in an open stage", {"load": replaced({**OPEN, "stages": [{"duration": "1s", "rate": 1,
                                                                             "users": 3}]})},
     "load.stages[0]: unknown key(s) users"),
    # -- [thresholds]
    ("a doubled operator", threshold("latency", "p(99)<<600"), "thresholds.latency: 'p(99)<<600'"),
    ("an unknown metric", threshold("speed", "p(99)<600"), "unknown metric 'speed'"),
    ("a unit after the limit", threshold("latency", "p(99)<600ms"), "units are implied"),
    ("a rate as a percentage", threshold("success", "rate>=99.95"), "a rate is a fraction between 0 and 1"),
    ("a percentile above 100", threshold("latency", "p(101)<600"), "the percentile must be above 0"),
    ("no limit", threshold("latency", "avg<"), "thresholds.latency: 'avg<'"),
    ("an aggregation the metric has not", threshold("latency", "rate<0.5"), "'rate' is not an aggregation of latency"),
    ("an unknown filter tag", threshold("latency{stag:surge}", "p(99)<600"), "unknown filter tag 'stag'"),
    ("a stage-filter typo", threshold("latency{stage:surg}", "p(99)<600"), "no stage named 'surg'"),
    ("a target filter the run will not have", threshold("latency{target:dalle}", "p(99)<600"),
     "the target is 'relay', not 'dalle'"),
    ("a request name filter the run will not have", threshold("latency{name:foo}", "p(99)<600"),
     "requests are named"),
    ("an empty filter", threshold("latency{}", "p(99)<600"), "empty filter"),
    ("a gateway metric without a gateway", threshold("gateway_overhead", "p(99)<50"),
     "gateway_overhead is a gateway's figure, measured from both ends of a [sut] gateway; this scenario declares "
     "none"),
    ("a gateway metric filtered by target", threshold("upstream_calls_per_request{target:relay}", "avg<1.2"),
     "unknown filter tag 'target' (known: stage) (a gateway figure is the run's or a stage's)"),
    ("orphaned calls filtered by stage", threshold("orphaned_upstream_calls{stage:warm}", "count==0"),
     "orphaned calls arrive after every stage"),
    ("a gateway metric that would abort", threshold("silent_success", {"threshold": "count==0",
                                                                       "abort_on_fail": True}),
     "abort_on_fail cannot apply: silent_success is judged once the run has ended"),
    ("an aggregation a gateway metric has not", threshold("upstream_calls_per_request", "p(99)<3"),
     "'p(99)' is not an aggregation of upstream_calls_per_request (use avg, max)"),
    ("a filter without a value", threshold("latency{stage}", "p(99)<600"), "malformed filter"),
    ("expected_response of maybe", threshold("latency{expected_response:maybe}", "p(99)<600"),
     "expected_response must be true or false"),
    ("no expressions", {"thresholds": replaced({"latency": []})}, "expected a list of expressions"),
    ("an expression that is a number", threshold("latency", 600), "an expression must be a string"),
    ("abort_on_fail as a word", threshold("latency", {"threshold": "p(99)<600", "abort_on_fail": "yes"}),
     "abort_on_fail must be true or false"),
    ("an option typo", threshold("latency", {"threshold": "p(99)<600", "abortonfail": True}), "unknown option"),
    ("a table entry without its threshold", threshold("latency", {"abort_on_fail": True}),
     "a table entry needs threshold"),
    ("a delay in words", threshold("latency", {"threshold": "p(99)<600", "abort_on_fail": True,
                                               "delay_abort_eval": "soon"}), "delay_abort_eval: not a duration"),
    ("a delay past the end of the run", threshold("latency", {"threshold": "p(99)<600", "abort_on_fail": True,
                                                              "delay_abort_eval": "5m"}),
     "delay_abort_eval (300 s) is not before the run ends (30 s)"),
    # -- [gate]
    ("min_sample for min_samples", {"gate": {"min_sample": 100}}, "gate: unknown key(s) min_sample"),
    ("min_samples of 0", {"gate": {"min_samples": 0}}, "gate.min_samples must be a whole number >= 1"),
    ("min_samples as a string", {"gate": {"min_samples": "100"}}, "gate.min_samples must be a whole number"),
    # -- [[actions]]
    ("an action after the end", action(at="99s"), "actions[0].at (99 s) falls after the run ends"),
    ("an action without set", action(set=DROP), "actions[0].set must be a table of admin settings"),
    ("an action with an empty set", action(set={}), "actions[0].set must be a table of admin settings"),
    ("an action for a provider typo", action(provider="midjurney-v7"), "names no provider of the mock"),
    ("an action with a setting typo", action(set={"outge": True}), "unknown setting 'outge'"),
    ("a string where a boolean belongs", action(set={"outage": "yes"}),
     "actions[0].set.outage must be true or false, got 'yes'"),
    ("a number where a boolean belongs", action(set={"outage": 1}), "actions[0].set.outage must be true or false"),
    ("a string where a number belongs", action(set={"requests_per_minute": "60"}),
     "actions[0].set.requests_per_minute must be a number"),
    ("a nested string where a number belongs", action(set={"rate_limit": {"burst": "5"}}),
     "actions[0].set.rate_limit.burst must be a whole number"),
    ("an error rate out of range", action(set={"error_rate": 2}), "error_rate must be between"),
    ("slots as a fraction", action(set={"slots": 1.5}), "slots must be a whole number"),
    ("an unknown auth mode", action(set={"auth": "maybe"}), "auth must be one of"),
    ("an action without at", action(at=DROP), "actions[0].at is required"),
    ("an action at a negative time", action(at="-1s"), "actions[0].at: a duration cannot be negative"),
    ("a key typo in an action", action(when="1s"), "actions[0]: unknown key(s) when"),
    ("an action without a provider", action(provider=DROP), "actions[0].provider is required"),
    ("an action that is not a table", {"actions": ["outage"]}, "actions[0] must be a table"),
]


def _with_actions(over: dict[str, Any]) -> dict[str, Any]:
    raw = merged(BASE, over)
    for entry in raw.get("actions", []) if isinstance(raw.get("actions"), list) else []:
        if isinstance(entry, dict):
            for key in [k for k, v in entry.items() if v is DROP]:
                del entry[key]
    return raw


@pytest.mark.parametrize("over, message", [(o, m) for _, o, m in MISTAKES], ids=[w for w, _, _ in MISTAKES])
def test_each_mistake_is_a_clear_error_naming_its_field(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_with_actions(over))
    assert message in str(err.value)


def test_the_table_has_the_kinds_of_mistake_people_make() -> None:
    assert len(MISTAKES) >= 86
    assert len({w for w, _, _ in MISTAKES}) == len(MISTAKES)


def test_the_base_scenario_is_valid() -> None:
    s = parse_scenario(BASE)
    assert s.duration_s == 30 and len(s.thresholds) == 2


def test_a_file_with_many_mistakes_gets_all_of_them_in_one_error(tmp_path: Path) -> None:
    path = tmp_path / "typos.toml"
    path.write_text("""
name = "../../../tmp/x"
[target]
name = "relay"
modle = "midjourney-v7"
[mock]
profiles = "mine.toml"
[client]
timeout = "0s"
retry = { honour_retry_after = "no" }
[load]
stages = [{ name = "warm", duration = "10s", users = 4 }, { name = "surge", duration = "20s", users = 8 }]
[thresholds]
latency = ["p(99)<600", "p(50)<abc", "p(95)<<600"]
"latency{stage:surg}" = ["p(99)<600"]
[gate]
min_sample = 100
[[actions]]
at = "5s"
provider = "midjurney-v7"
set = { outge = true }
[[actions]]
at = "6s"
provider = "midjourney-v7"
set = { outage = "yes" }
""")
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    expected = [
        "name must be a plain name",
        "target: unknown key(s) modle",
        "mock.profiles must be a list of strings",
        "client.timeout must be longer than 0 s",
        "client.retry.honour_retry_after must be true or false",
        "'p(50)<abc'",
        "'p(95)<<600'",
        "no stage named 'surg'",
        "gate: unknown key(s) min_sample",
        "actions[0].provider names no provider of the mock: 'midjurney-v7'",
        "actions[1].set.outage must be true or false, got 'yes'",
    ]
    text = str(err.value)
    assert text.startswith(f"{path}: {len(expected)} problems:"), text
    for fragment in expected:
        assert fragment in text, fragment
    assert len(err.value.problems) == len(expected), err.value.problems


# --- files that are not scenarios ------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"name = \"caf\xe9\"\n", "not UTF-8 text (byte 11)"),
    (b"name = [unclosed", "not valid TOML"),
    (b"<html>a web page saved by mistake</html>", "not valid TOML"),
    (b"", "[load] is required"),
    (b"\x00\x01\x02", "not valid TOML"),
])
def test_a_file_that_is_not_a_scenario_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path))
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_a_directory_or_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a directory, not a scenario file"):
        load_scenario(str(tmp_path))
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(str(tmp_path / "missing.toml"))
    with pytest.raises(ScenarioError, match="no scenario 'flash-sale'; built-in: "):
        load_scenario("flash-sale")


def test_a_byte_order_mark_is_not_a_mistake(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + tomli_w.dumps(BASE).encode())
    assert load_scenario(str(path)).name == "base"


# --- the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, message", [
    (Overrides(target="dalle-4"), "--target 'dalle-4' is neither a base URL nor a provider"),
    (Overrides(target=""), "--target must not be empty"),
    (Overrides(target="https://x.example/v1", api="soap"), "--api must be one of"),
    (Overrides(target="https://x.example:0x50/v1"), "--target 'https://x.example:0x50/v1' is not a usable base URL"),
    (Overrides(target="dall-e-4", model="imagen-4"), "--model: 'dall-e-4' is a direct provider"),
    (Overrides(model="gpt-image-9"), "--model 'gpt-image-9' is not served by relay"),
    (Overrides(target="relay", model="gpt-image-9"), "--model 'gpt-image-9' is not served by relay"),
    (Overrides(api="openai"), "--api: 'relay' speaks relay, not openai"),
    (Overrides(duration="soon"), "--duration: not a duration"),
    (Overrides(duration="-5s"), "--duration: a duration cannot be negative"),
    (Overrides(duration="0s"), "--duration: it must be longer than 0 s"),
    (Overrides(sets=("relay.error_rate",)), "NAME.setting=value"),
    (Overrides(sets=("nobody.outage=true",)), "--set nobody.outage=true: no provider 'nobody'"),
    (Overrides(sets=("relay.outge=true",)), "--set relay.outge=true: unknown setting 'outge'"),
    (Overrides(sets=("relay.outage=maybe",)), "outage must be true or false"),
    (Overrides(profiles=("no-such-profiles.toml",)), "mock profiles:"),
    (Overrides(target="https://x.example/v1"), "the target is 'https://x.example/v1', not 'relay' (after --target)"),
])
def test_command_line_mistakes_are_blamed_on_the_option(tmp_path: Path, overrides: Overrides, message: str) -> None:
    path = tmp_path / "s.toml"
    raw = merged(BASE, {"thresholds": {"latency{target:relay}": ["p(99)<600"]}}) if overrides.target and \
        overrides.target.startswith("https://x.example/v1") and not overrides.api else BASE
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(ScenarioError) as err:
        load_scenario(str(path), overrides)
    assert message in str(err.value)


def test_a_new_provider_on_the_command_line_speaks_its_own_api(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(merged(BASE, {"target": {"api": "relay"}})))
    s = load_scenario(str(path), Overrides(target="dall-e-4"))
    assert (s.target.name, s.target.api, s.target.model) == ("dall-e-4", "openai", "dall-e-4")


# --- no value anywhere crashes the loader ------------------------------------------------------------

PLACES = [("name",), ("description",), ("target",), ("target", "name"), ("target", "api"), ("target", "model"),
          ("mock",), ("mock", "seed"), ("mock", "latency_scale"), ("mock", "set"), ("mock", "profiles"),
          ("client",), ("client", "timeout"), ("client", "keys"), ("client", "retry"), ("client", "batch"),
          ("client", "use_cases"), ("client", "width"), ("client", "poll_interval"), ("load",), ("load", "model"),
          ("load", "stages"), ("load", "think_time"), ("load", "max_vus"), ("load", "start_rate"), ("thresholds",),
          ("thresholds", "latency"), ("thresholds", "latency{stage:warm}"), ("gate",), ("gate", "min_samples"),
          ("actions",)]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["30s", "0s", "-1s", "p(99)<600", "relay", "open", "1e999"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["name", "duration", "users", "rate", "at", "provider", "set", "threshold", "outage", "x"]),
    inner, max_size=3), max_leaves=6)


def _put(raw: dict[str, Any], place: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node = out
    for key in place[:-1]:
        node = node.setdefault(key, {})
    node[place[-1]] = value
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(PLACES), value=values)
def test_any_value_anywhere_loads_or_is_a_scenario_error(place: tuple[str, ...], value: Any) -> None:
    raw = _put(BASE, place, value)
    if value is None:       # TOML has no null: a missing key is the nearest thing
        raw = _put(BASE, place, DROP)
        node = raw
        for key in place[:-1]:
            node = node[key]
        node.pop(place[-1])
    try:
        parse_scenario(raw)
    except ScenarioError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_a_folder_named_like_a_built_in_scenario_does_not_hide_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # `loadtest run flash_sale --report-dir flash_sale` makes that folder before the scenario is read.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flash_sale").mkdir()
    assert load_scenario("flash_sale").name == "flash_sale"
    with pytest.raises(ScenarioError, match="is a directory, not a scenario file"):
        load_scenario("flash_sale/")
