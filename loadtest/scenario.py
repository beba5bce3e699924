"""A workload as declared in scenarios/<name>.toml: target, load, client behaviour, SLA.

Loading validates everything up front, so a typo in a scenario file is one clear
error before any process starts, not a crash minutes into a run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mockprovider.apis import APIS, MOCK_PREFIX
from mockprovider.profile import load_profiles
from mockprovider.settings import parse_set_option

from .thresholds import Threshold, ThresholdError, parse_duration, parse_thresholds

ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = ROOT / "scenarios"
USE_CASES = ("product_mockup", "lifestyle", "abandoned_cart")


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Stage:
    name: str
    duration_s: float
    users: int = 0              # closed model: users at the end of the stage
    spawn_rate: float = 0.0     # closed model: users started (or stopped) per second
    rate: float = 0.0           # open model: arrivals per second at the end of the stage


@dataclass(frozen=True)
class Load:
    model: str                  # "closed" | "open"
    stages: tuple[Stage, ...]
    think_time_s: tuple[float, float] = (0.0, 0.0)
    max_vus: int = 0            # open model: VUs ready to start requests
    start_rate: float | None = None   # open model: rate at t=0 (default: the first stage's rate)

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    def windows(self) -> list[tuple[str, float, float]]:
        out, t = [], 0.0
        for s in self.stages:
            out.append((s.name, t, t + s.duration_s))
            t += s.duration_s
        return out

    @property
    def peak_users(self) -> int:
        return self.max_vus if self.model == "open" else max(s.users for s in self.stages)


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 5
    base_s: float = 1.0
    max_backoff_s: float = 30.0
    on: tuple[int, ...] = (429, 503)
    honour_retry_after: bool = True


@dataclass(frozen=True)
class Client:
    timeout_s: float = 30.0
    keys: int = 64
    retry: Retry | None = None
    batch_size: int = 1
    batch_concurrency: int = 1
    use_cases: tuple[tuple[str, float], ...] = (("product_mockup", 0.5), ("lifestyle", 0.3), ("abandoned_cart", 0.2))
    width: int = 1024
    height: int = 1024
    poll_interval_s: float = 0.5     # Midjourney job polling
    job_timeout_s: float = 300.0     # Midjourney: how long a job may take (the proxy's own limit is 5 min)


@dataclass(frozen=True)
class Target:
    name: str                   # a provider of the embedded mock, or a base URL
    api: str
    model: str
    base_url: str | None = None   # None: on the embedded mock (filled in when it starts)

    @property
    def on_mock(self) -> bool:
        return not self.name.startswith(("http://", "https://"))

    def url_on(self, mock_url: str) -> str:
        return mock_url.rstrip("/") + MOCK_PREFIX[self.api]


@dataclass(frozen=True)
class Action:
    at_s: float
    provider: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class MockOptions:
    seed: int = 0
    latency_scale: float = 1.0
    sets: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    target: Target
    load: Load
    client: Client
    thresholds: tuple[Threshold, ...]
    min_samples: int
    mock: MockOptions
    actions: tuple[Action, ...] = ()
    source: str = ""
    raw_target: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.load.duration_s

    def scaled_to(self, duration_s: float) -> Scenario:
        """Every stage and action stretched in proportion, so the total is duration_s (DURATION=)."""
        if duration_s <= 0:
            raise ScenarioError("a duration must be positive")
        k = duration_s / self.duration_s
        stages = tuple(replace(s, duration_s=s.duration_s * k) for s in self.load.stages)
        actions = tuple(replace(a, at_s=a.at_s * k) for a in self.actions)
        thresholds = tuple(replace(t, delay_abort_eval_s=t.delay_abort_eval_s * k) for t in self.thresholds)
        return replace(self, load=replace(self.load, stages=stages), actions=actions, thresholds=thresholds)

    def with_target(self, name: str, *, api: str | None = None, model: str | None = None,
                    profiles: Sequence[str] = ()) -> Scenario:
        table = dict(self.raw_target)
        table["name"] = name
        if api:
            table["api"] = api
        if model:
            table["model"] = model
        elif name != self.target.name and not name.startswith(("http://", "https://")):
            table.pop("model", None)   # a direct provider serves its own model
        return replace(self, target=_target(table, profiles or self.mock.profiles), raw_target=table)

    def with_mock_sets(self, sets: Sequence[str]) -> Scenario:
        for text in sets:
            parse_set_option(text)    # a malformed --set is an error now, not when the mock starts
        return replace(self, mock=replace(self.mock, sets=self.mock.sets + tuple(sets)))

    def with_profiles(self, profiles: Sequence[str]) -> Scenario:
        mock = replace(self.mock, profiles=tuple(profiles))
        return replace(self, mock=mock, target=_target(self.raw_target, mock.profiles))


# --- loading -----------------------------------------------------------------------


def scenario_names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def scenario_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    candidate = SCENARIO_DIR / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    raise ScenarioError(f"no scenario {name_or_path!r}; known: {', '.join(scenario_names())}")


def load_scenario(name_or_path: str, *, target: str | None = None, duration: str | None = None,
                  api: str | None = None, model: str | None = None, profiles: Sequence[str] = ()) -> Scenario:
    path = scenario_path(name_or_path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    try:
        scenario = parse_scenario(raw, source=str(path), default_name=path.stem, profiles=profiles)
        if target or api or model:
            scenario = scenario.with_target(target or scenario.target.name, api=api, model=model)
        if duration:
            scenario = scenario.scaled_to(parse_duration(duration))
    except (ThresholdError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return scenario


_TOP = {"name", "description", "target", "mock", "client", "load", "actions", "thresholds", "gate"}


def parse_scenario(raw: Mapping[str, Any], *, source: str = "", default_name: str = "scenario",
                   profiles: Sequence[str] = ()) -> Scenario:
    unknown = set(raw) - _TOP
    if unknown:
        raise ScenarioError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    mock = _mock(raw.get("mock", {}), profiles)
    target_table = dict(raw.get("target", {"name": "relay"}))
    target = _target(target_table, mock.profiles)
    load = _load(_table(raw, "load"))
    client = _client(raw.get("client", {}))
    thresholds = tuple(parse_thresholds(raw.get("thresholds", {})))
    gate = raw.get("gate", {})
    min_samples = _int(gate, "min_samples", 100, lo=1, where="gate")
    actions = tuple(_action(a, i) for i, a in enumerate(raw.get("actions", [])))
    for a in actions:
        if a.at_s > load.duration_s:
            raise ScenarioError(f"actions: an action at {a.at_s:g}s falls after the run ends "
                                f"({load.duration_s:g}s)")
    return Scenario(name=str(raw.get("name", default_name)), description=str(raw.get("description", "")),
                    target=target, load=load, client=client, thresholds=thresholds, min_samples=min_samples,
                    mock=mock, actions=actions, source=source, raw_target=target_table)


def _table(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise ScenarioError(f"[{key}] is required and must be a table")
    return value


def _int(t: Mapping[str, Any], key: str, default: int, *, lo: int = 0, where: str) -> int:
    v = t.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ScenarioError(f"{where}.{key} must be a whole number >= {lo}, got {v!r}")
    return v


def _num(t: Mapping[str, Any], key: str, default: float, *, lo: float = 0.0, where: str) -> float:
    v = t.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise ScenarioError(f"{where}.{key} must be a number >= {lo:g}, got {v!r}")
    return float(v)


def _dur(t: Mapping[str, Any], key: str, default: float | None, *, where: str) -> float:
    if key not in t:
        if default is None:
            raise ScenarioError(f"{where}.{key} is required (e.g. \"30s\")")
        return default
    try:
        return parse_duration(t[key])
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{where}.{key}: {exc}") from None


def _target(t: Mapping[str, Any], profiles: Sequence[str]) -> Target:
    unknown = set(t) - {"name", "api", "model"}
    if unknown:
        raise ScenarioError(f"target: unknown key(s) {', '.join(sorted(unknown))}")
    name = str(t.get("name", "relay"))
    model = t.get("model")
    if name.startswith(("http://", "https://")):
        api = str(t.get("api", "relay"))
        if api not in APIS:
            raise ScenarioError(f"target.api must be one of {', '.join(APIS)}, got {api!r}")
        if api == "vertex" and not model:
            raise ScenarioError("a Vertex target needs target.model (the model id in the predict path)")
        return Target(name=name.rstrip("/"), api=api, model=str(model or "midjourney-v7"), base_url=name.rstrip("/"))
    known = load_profiles(profiles)
    profile = known.get(name)
    if profile is None:
        raise ScenarioError(f"target {name!r} is neither a base URL nor a provider of the mock; "
                            f"providers: {', '.join(sorted(known))}")
    if profile.relay is not None:
        model = str(model or "midjourney-v7")
        if model not in profile.relay.models:
            raise ScenarioError(f"target.model {model!r} is not served by {name}; it serves "
                                f"{', '.join(profile.relay.models)}")
    else:
        if model and model != name:
            raise ScenarioError(f"target {name!r} is a direct provider: it serves only {name!r}, not {model!r}")
        model = name
    api = str(t.get("api", profile.api))
    if api != profile.api:
        raise ScenarioError(f"target {name!r} speaks {profile.api}, not {api}")
    return Target(name=name, api=api, model=str(model))


def _mock(t: Mapping[str, Any], profiles: Sequence[str]) -> MockOptions:
    unknown = set(t) - {"seed", "latency_scale", "set", "profiles"}
    if unknown:
        raise ScenarioError(f"mock: unknown key(s) {', '.join(sorted(unknown))}")
    sets = t.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise ScenarioError("mock.set must be a list of \"NAME.setting=value\" strings")
    files = list(t.get("profiles", [])) + list(profiles)
    return MockOptions(seed=_int(t, "seed", 0, where="mock"),
                       latency_scale=_num(t, "latency_scale", 1.0, where="mock"),
                       sets=tuple(sets), profiles=tuple(str(f) for f in files))


def _load(t: Mapping[str, Any]) -> Load:
    unknown = set(t) - {"model", "stages", "think_time", "max_vus", "start_rate"}
    if unknown:
        raise ScenarioError(f"load: unknown key(s) {', '.join(sorted(unknown))}")
    model = t.get("model", "closed")
    if model not in ("closed", "open"):
        raise ScenarioError(f"load.model must be \"closed\" (users with think time) or \"open\" (arrival rate), "
                            f"got {model!r}")
    raw_stages = t.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ScenarioError("load.stages must be a non-empty list of stages")
    stages = []
    for i, s in enumerate(raw_stages):
        where = f"load.stages[{i}]"
        if not isinstance(s, Mapping):
            raise ScenarioError(f"{where} must be a table")
        allowed = {"name", "duration", "users", "spawn_rate"} if model == "closed" else {"name", "duration", "rate"}
        unknown = set(s) - allowed
        if unknown:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a {model} model "
                                f"(allowed: {', '.join(sorted(allowed))})")
        duration = _dur(s, "duration", None, where=where)
        if duration <= 0:
            raise ScenarioError(f"{where}.duration must be positive")
        name = str(s.get("name", f"stage{i + 1}"))
        if model == "closed":
            if "users" not in s:
                raise ScenarioError(f"{where}.users is required")
            stages.append(Stage(name, duration, users=_int(s, "users", 0, where=where),
                                spawn_rate=_num(s, "spawn_rate", 0.0, where=where)))
        else:
            if "rate" not in s:
                raise ScenarioError(f"{where}.rate (arrivals per second) is required")
            stages.append(Stage(name, duration, rate=_num(s, "rate", 0.0, where=where)))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ScenarioError(f"load.stages: stage names must be unique, got {names}")
    think = t.get("think_time", [0, 0])
    if isinstance(think, (int, float, str)):
        think = [think, think]
    if not isinstance(think, list) or len(think) != 2:
        raise ScenarioError("load.think_time must be a duration or [min, max]")
    try:
        lo, hi = (parse_duration(x) for x in think)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"load.think_time: {exc}") from None
    if hi < lo:
        raise ScenarioError("load.think_time: max is below min")
    max_vus = _int(t, "max_vus", 0, where="load")
    if model == "open":
        if max_vus < 1:
            raise ScenarioError("load.max_vus (how many requests may be in flight at once) is required for an "
                                "open model")
    start_rate = _num(t, "start_rate", 0.0, where="load") if "start_rate" in t else None
    return Load(model=model, stages=tuple(stages), think_time_s=(lo, hi), max_vus=max_vus, start_rate=start_rate)


def _client(t: Mapping[str, Any]) -> Client:
    unknown = set(t) - {"timeout", "keys", "retry", "batch", "use_cases", "width", "height", "poll_interval",
                        "job_timeout"}
    if unknown:
        raise ScenarioError(f"client: unknown key(s) {', '.join(sorted(unknown))}")
    retry_t = t.get("retry", False)
    retry = None
    if retry_t is True:
        retry = Retry()
    elif isinstance(retry_t, Mapping):
        unknown = set(retry_t) - {"max_attempts", "base", "max_backoff", "on", "honour_retry_after"}
        if unknown:
            raise ScenarioError(f"client.retry: unknown key(s) {', '.join(sorted(unknown))}")
        on = retry_t.get("on", [429, 503])
        if not isinstance(on, list) or not all(isinstance(c, int) and 400 <= c <= 599 for c in on):
            raise ScenarioError("client.retry.on must be a list of HTTP status codes (4xx/5xx)")
        retry = Retry(max_attempts=_int(retry_t, "max_attempts", 5, lo=1, where="client.retry"),
                      base_s=_dur(retry_t, "base", 1.0, where="client.retry"),
                      max_backoff_s=_dur(retry_t, "max_backoff", 30.0, where="client.retry"),
                      on=tuple(on), honour_retry_after=bool(retry_t.get("honour_retry_after", True)))
    elif retry_t is not False:
        raise ScenarioError("client.retry must be true, false or a table")
    batch = t.get("batch", {})
    if not isinstance(batch, Mapping):
        raise ScenarioError("client.batch must be a table {size, concurrency}")
    size = _int(batch, "size", 1, lo=1, where="client.batch")
    concurrency = _int(batch, "concurrency", size, lo=1, where="client.batch")
    uc = t.get("use_cases", dict(Client.use_cases))
    if not isinstance(uc, Mapping) or not uc:
        raise ScenarioError("client.use_cases must be a table of use case = weight")
    for k, v in uc.items():
        if k not in USE_CASES:
            raise ScenarioError(f"client.use_cases: unknown use case {k!r}; known: {', '.join(USE_CASES)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ScenarioError(f"client.use_cases.{k} must be a weight >= 0")
    if sum(uc.values()) <= 0:
        raise ScenarioError("client.use_cases: weights must not all be zero")
    return Client(timeout_s=_dur(t, "timeout", 30.0, where="client"),
                  keys=_int(t, "keys", 64, lo=1, where="client"), retry=retry, batch_size=size,
                  batch_concurrency=concurrency, use_cases=tuple((k, float(v)) for k, v in uc.items()),
                  width=_int(t, "width", 1024, lo=1, where="client"), height=_int(t, "height", 1024, lo=1,
                                                                                 where="client"),
                  poll_interval_s=_dur(t, "poll_interval", 0.5, where="client"),
                  job_timeout_s=_dur(t, "job_timeout", 300.0, where="client"))


def _action(a: Any, i: int) -> Action:
    where = f"actions[{i}]"
    if not isinstance(a, Mapping):
        raise ScenarioError(f"{where} must be a table {{at, provider, set}}")
    unknown = set(a) - {"at", "provider", "set"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    settings = a.get("set")
    if not isinstance(settings, Mapping) or not settings:
        raise ScenarioError(f"{where}.set must be a table of admin settings, e.g. {{ outage = true }}")
    provider = a.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ScenarioError(f"{where}.provider is required")
    return Action(at_s=_dur(a, "at", None, where=where), provider=provider, settings=dict(settings))
