"""A workload as declared in a scenario file: target, load, client behaviour, SLA.

Loading checks everything up front and reports every mistake at once, so a typo in a
scenario file is a clear list before any process starts, not a crash minutes into a run.
Options given on the command line are checked apart and blamed on the command line.

The built-in scenarios ship with the package (`scenarios/*.toml`); a path to a TOML file
works from anywhere.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mockprovider.apis import APIS, MOCK_PREFIX
from mockprovider.profile import Profile, ProfileError, load_profiles
from mockprovider.settings import Settings, SettingsError, parse_set_option

from . import apioptions
from .baseline import Baseline, Regression, parse_regressions, with_baseline
from .confidence import INCONCLUSIVE_POLICIES, ConfidenceOptions
from .fields import Problems, ScenarioError, Table, parse_duration
from .loadmodel import LoadModel, OpenLoad, parse_load
from .prompts import USE_CASES
from .sut import Sut, parse_sut
from .thresholds import GATEWAY_METRICS, Threshold, ThresholdError, parse_thresholds

__all__ = ["Scenario", "ScenarioError", "Target", "Client", "EditInputs", "Retry", "Action", "MockOptions",
           "GateOptions", "Overrides", "load_scenario", "parse_scenario", "scenario_names", "builtin_scenarios"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 5
    base_s: float = 1.0
    max_backoff_s: float = 30.0
    on: tuple[int, ...] = (429, 503)
    honour_retry_after: bool = True


@dataclass(frozen=True)
class EditInputs:
    """The product photos an edit uploads: drawn once per process (loadtest/clients/uploads.py)."""
    photos: int = 6                  # distinct catalog photos, used in turn
    images: int = 1                  # photos sent in one edit (OpenAI's image[] takes up to 16)
    width: int = 1024
    height: int = 1024
    format: str = "jpeg"             # jpeg, png or webp, as a catalog keeps them
    mask: bool = True                # an RGBA PNG whose transparent part (the background) is what to edit


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
    # What each request asks for, in the API's own terms (None: not sent; the API's default). Which API
    # takes which is loadtest/apioptions.py's; README's "Request options" says what each does.
    operation: str = "generate"      # generate, or edit (OpenAI /images/edits; Gemini with the photo inline)
    stream: bool = False             # OpenAI: stream = true, the events read as they arrive
    partial_images: int | None = None
    quality: str | None = None
    size: str | None = None          # OpenAI's size ("1536x1024", "auto"); else width x height
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    moderation: str | None = None
    input_fidelity: str | None = None
    aspect_ratio: str | None = None  # Vertex Imagen, Gemini
    image_size: str | None = None    # Gemini's imageSize ("1K", "2K", ...)
    edit: EditInputs = field(default_factory=EditInputs)
    batch_mode: str = "semaphore"    # semaphore: one request per image; native: the provider's own batching

    @property
    def size_text(self) -> str:
        return self.size or f"{self.width}x{self.height}"

    def request_options(self) -> dict[str, Any]:
        """The request options this scenario sets (what apioptions.check judges against the target)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in REQUEST_OPTIONS if getattr(self, name) is not None}
        if self.stream:
            out["stream"] = True
        if self.operation != "generate":
            out["operation"] = self.operation
            e = self.edit
            out["edit"] = {"images": e.images, "width": e.width, "height": e.height, "format": e.format,
                           "mask": e.mask}
        return out


# What an edit asks for when the scenario names no use cases: a catalog's two edits.
EDIT_USE_CASES_DEFAULT = (("background_replacement", 0.7), ("product_placement", 0.3))
REQUEST_OPTIONS = ("partial_images", "quality", "size", "output_format", "output_compression", "background",
                   "moderation", "input_fidelity", "aspect_ratio", "image_size")


@dataclass(frozen=True)
class Target:
    name: str                     # a provider of the embedded mock, or a base URL
    api: str
    model: str
    base_url: str | None = None   # None: on the embedded mock (filled in when it starts)
    family: str = ""              # an OpenAI profile's model family on the mock (whose request rules apply)
    record_url: str | None = None  # admin base of a mock whose provider-side record this run reads

    @property
    def on_mock(self) -> bool:
        return not is_url(self.name)

    def url_on(self, mock_url: str) -> str:
        return mock_url.rstrip("/") + MOCK_PREFIX[self.api]

    @property
    def request_name(self) -> str:
        """How the suite's users name this target's requests in Locust and in the recorder."""
        return f"{self.api} {self.model}"


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
class GateOptions:
    min_samples: int = 100
    confidence: ConfidenceOptions = ConfidenceOptions()
    stop_on_saturation: bool = False    # end the run early once the target is over-saturated (capacity steps)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    target: Target
    load: LoadModel
    client: Client
    thresholds: tuple[Threshold, ...]
    gate: GateOptions
    mock: MockOptions
    actions: tuple[Action, ...] = ()
    source: str = ""
    raw_target: Mapping[str, Any] = field(default_factory=dict)
    regressions: tuple[Regression, ...] = ()    # [regressions]: judged against a --baseline
    baseline: Baseline | None = None            # the --baseline summary, once given
    sut: Sut | None = None                      # [sut]: the gateway Locust drives, in front of the mock

    @property
    def duration_s(self) -> float:
        return self.load.duration_s

    @property
    def min_samples(self) -> int:
        return self.gate.min_samples

    def scaled_to(self, duration_s: float) -> Scenario:
        """Every stage and action stretched in proportion, so the total is duration_s (DURATION=)."""
        k = duration_s / self.duration_s
        actions = tuple(replace(a, at_s=a.at_s * k) for a in self.actions)
        thresholds = tuple(replace(t, delay_abort_eval_s=t.delay_abort_eval_s * k) for t in self.thresholds)
        return replace(self, load=self.load.scaled(k), actions=actions, thresholds=thresholds)


@dataclass(frozen=True)
class Overrides:
    """What the command line changes; each mistake in it is blamed on its option."""
    target: str | None = None
    api: str | None = None
    model: str | None = None
    duration: str | None = None
    profiles: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    baseline: str | None = None     # a previous run's summary.json: deltas, and [regressions] judged against it
    inconclusive: str | None = None  # [gate] inconclusive for this run (e.g. "observed" for a shortened smoke run)


def is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


# --- finding and loading -------------------------------------------------------------


def builtin_scenarios() -> dict[str, Path]:
    root = resources.files("scenarios")
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".toml")}


def scenario_names() -> list[str]:
    return sorted(builtin_scenarios())


def scenario_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or "/" in name_or_path or p.is_file():
        return p
    builtin = builtin_scenarios().get(name_or_path)
    # A bare name that is also a folder here (a report folder named after its scenario, say) still
    # names the built-in: a folder is never a scenario file.
    if builtin is None and p.exists():
        return p
    if builtin is None:
        raise ScenarioError(f"no scenario {name_or_path!r}; built-in: {', '.join(scenario_names())} "
                            f"(or give the path of a .toml file)")
    return builtin


def read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")   # an editor's byte-order mark is not a mistake
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path} is a directory, not a scenario file") from None
    except PermissionError:
        raise ScenarioError(f"{path}: cannot read it (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {exc.start}); a scenario file is TOML, "
                            f"which is UTF-8") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None


def load_scenario(name_or_path: str, overrides: Overrides | None = None) -> Scenario:
    path = scenario_path(name_or_path)
    raw = read_toml(path)
    o = overrides or Overrides()
    scenario = parse_scenario(raw, source=str(path), default_name=path.stem, extra_profiles=o.profiles)
    return apply_overrides(scenario, o)


def apply_overrides(scenario: Scenario, o: Overrides) -> Scenario:
    problems = Problems()
    for option, value in (("--target", o.target), ("--api", o.api), ("--model", o.model)):
        if value is not None and not value.strip():
            problems.add(f"{option} must not be empty (leave it out to keep the scenario's own)")
    problems.raise_if_any()
    if o.target or o.api or o.model:
        table = dict(scenario.raw_target)
        name = o.target or scenario.target.name
        table["name"] = name
        if o.api:
            table["api"] = o.api
        if o.model:
            table["model"] = o.model
        if name != scenario.target.name and not is_url(name):
            # A provider of the mock speaks its own API and, if direct, serves its own model.
            if not o.model:
                table.pop("model", None)
            if not o.api:
                table.pop("api", None)
        changed = "--target" if o.target else ("--api" if o.api else "--model")
        blame = {"name": "--target", "api": "--api" if o.api else changed, "model": "--model" if o.model else changed}
        target = _target(Table(table, "", problems), scenario.mock.profiles, problems, cli=blame)
        scenario = replace(scenario, target=target, raw_target=table)
        if not problems:
            _check_request_options(scenario, problems, after=f"after {changed}")
    if o.duration is not None:
        try:
            total = parse_duration(o.duration)
            if total <= 0:
                raise ValueError(f"it must be longer than 0 s, got {o.duration!r}")
            scenario = scenario.scaled_to(total)
        except (TypeError, ValueError) as exc:
            problems.add(f"--duration: {exc}")
    if o.inconclusive is not None:
        if o.inconclusive not in INCONCLUSIVE_POLICIES:
            problems.add(f"--inconclusive must be one of {', '.join(INCONCLUSIVE_POLICIES)}, got {o.inconclusive!r}")
        else:
            gate = scenario.gate
            scenario = replace(scenario, gate=replace(gate, confidence=replace(gate.confidence,
                                                                               inconclusive=o.inconclusive)))
    if o.sets:
        known = _providers(scenario.mock.profiles, problems)
        for text in o.sets:
            _check_set(text, known, problems, where=f"--set {text}")
        scenario = replace(scenario, mock=replace(scenario.mock, sets=scenario.mock.sets + tuple(o.sets)))
    if o.baseline:
        thresholds, baseline = with_baseline(scenario.thresholds, scenario.regressions, o.baseline, problems)
        scenario = replace(scenario, thresholds=thresholds, baseline=baseline)
    problems.raise_if_any()
    _check_filters(scenario, problems, cli=True)
    problems.raise_if_any()
    return scenario


# --- parsing ------------------------------------------------------------------------------


def parse_scenario(raw: Mapping[str, Any], *, source: str = "", default_name: str = "scenario",
                   extra_profiles: Sequence[str] = ()) -> Scenario:
    problems = Problems()
    top = Table(raw, "", problems)
    top.only({"name", "description", "target", "mock", "client", "load", "actions", "thresholds", "gate",
              "regressions", "sut"})
    name = top.string("name", default_name)
    if not _NAME.match(name):
        top.fail("name", f"must be a plain name of letters, digits, '_', '-' and '.' (it names the report "
                         f"folder), got {name!r}")
        name = default_name if _NAME.match(default_name) else "scenario"
    description = top.string("description", "")
    base = Path(source).parent if source else Path.cwd()
    mock = _mock(top.table("mock"), base, extra_profiles, problems)
    target_table = dict(raw.get("target", {"name": "relay"})) if isinstance(raw.get("target", {}), Mapping) else {}
    if not isinstance(raw.get("target", {}), Mapping):
        problems.add("target must be a table {name, api, model}")
    target = _target(Table(target_table, "target", problems), mock.profiles, problems)
    load = parse_load(raw.get("load"), problems, base=base)
    if isinstance(load, OpenLoad) and load.seed is None:
        load = replace(load, seed=mock.seed)     # random arrivals are reproducible from the scenario's seed
    client = _client(top.table("client"))
    thresholds = _thresholds(raw["thresholds"], problems) if "thresholds" in raw else []
    regressions = parse_regressions(raw.get("regressions"), problems)
    gate = _gate(top.table("gate"))
    _check_abort_delays(thresholds, load, problems)
    actions = _actions(raw.get("actions", []), load, mock.profiles, problems)
    sut = parse_sut(raw.get("sut"), problems)
    if sut is None and "sut" not in raw:
        for t in thresholds:
            if t.metric in GATEWAY_METRICS:
                problems.add(f"thresholds.{t.key}: {t.metric} is a gateway's figure, measured from both ends of "
                             f"a [sut] gateway; this scenario declares none (add [sut], or drop the threshold)")
    if sut is not None and not target.on_mock:
        problems.add(f"target.name {target.name!r}: with [sut], the target names the mock provider the gateway is "
                     f"asked for (its API and model), not a URL: Locust drives the gateway")
    scenario = Scenario(name=name, description=description, target=target, load=load, client=client,
                        thresholds=tuple(thresholds), gate=gate, mock=mock, actions=actions, source=source,
                        raw_target=target_table, regressions=tuple(regressions), sut=sut)
    _check_filters(scenario, problems)
    _check_request_options(scenario, problems)
    problems.raise_if_any(source)
    return scenario


def _check_request_options(s: Scenario, problems: Problems, after: str = "") -> None:
    """The client's request options against what the target's API and model take."""
    apioptions.check(s.client.request_options(), s.target.api, s.target.model, family=s.target.family or None,
                     add=problems.add, after=after)


def _gate(t: Table) -> GateOptions:
    t.only({"min_samples", "confidence", "inconclusive", "stop_on_saturation"})
    level = t.number("confidence", 0.95, lo=0.5, hi=0.9999)
    policy = t.string("inconclusive", "invalid")
    if policy not in INCONCLUSIVE_POLICIES:
        t.fail("inconclusive", f"must be one of {', '.join(repr(p) for p in INCONCLUSIVE_POLICIES)} (invalid: the "
                               f"run proves nothing, exit 2; fail: counts as a breach; observed: judged on the "
                               f"observed value alone), got {policy!r}")
        policy = "invalid"
    return GateOptions(min_samples=t.integer("min_samples", 100, lo=1),
                       confidence=ConfidenceOptions(level=level, inconclusive=policy),
                       stop_on_saturation=t.boolean("stop_on_saturation", False))


def _providers(profiles: Sequence[str], problems: Problems) -> dict[str, Profile]:
    try:
        return load_profiles(profiles)
    except ProfileError as exc:
        problems.add(f"mock profiles: {exc}")
        return load_profiles()


def _target(t: Table, profiles: Sequence[str], problems: Problems, cli: str | Mapping[str, str] = "") -> Target:
    def where(key: str) -> str:
        if isinstance(cli, Mapping):
            return cli.get(key, t.at(key))
        return cli if cli else t.at(key)
    t.only({"name", "api", "model", "record_url"})
    name = t.string("name", "relay")
    record_url = t.raw.get("record_url")
    if record_url is not None and (not isinstance(record_url, str) or not is_url(record_url)
                                   or url_problem(record_url) is not None):
        why = url_problem(record_url) if isinstance(record_url, str) and is_url(record_url) else "not a base URL"
        problems.add(f"{where('record_url')} {record_url!r} is not a usable base URL of a mock: {why}")
        record_url = None
    model = t.raw.get("model")
    if model is not None and not isinstance(model, str):
        problems.add(f"{where('model')} must be a string, got {model!r}")
        model = None
    elif model is not None and not model.strip():
        problems.add(f"{where('model')} must not be empty")
        model = None
    if is_url(name):
        if (why := url_problem(name)) is not None:
            problems.add(f"{where('name')} {name!r} is not a usable base URL: {why}")
        api = t.string("api", "relay")
        if api not in APIS:
            problems.add(f"{where('api')} must be one of {', '.join(APIS)}, got {api!r}")
            api = "relay"
        if api == "vertex" and not model:
            problems.add(f"{where('model')}: a Vertex target needs a model (the model id in the predict path)")
        return Target(name=name.rstrip("/"), api=api, model=str(model or "midjourney-v7"),
                      base_url=name.rstrip("/"), record_url=record_url.rstrip("/") if record_url else None)
    known = _providers(profiles, problems)
    profile = known.get(name)
    if profile is None:
        problems.add(f"{where('name')} {name!r} is neither a base URL nor a provider of the mock (a base URL "
                     f"starts with http:// or https://); providers: {', '.join(sorted(known))}")
        return Target(name=name, api="relay", model="midjourney-v7")
    if profile.relay is not None:
        model = str(model or "midjourney-v7")
        if model not in profile.relay.models:
            problems.add(f"{where('model')} {model!r} is not served by {name}; it serves "
                         f"{', '.join(profile.relay.models)}")
    else:
        if model and model != name:
            problems.add(f"{where('model')}: {name!r} is a direct provider: it serves only {name!r}, "
                         f"not {model!r}")
        model = name
    api = t.string("api", profile.api)
    if api != profile.api:
        problems.add(f"{where('api')}: {name!r} speaks {profile.api}, not {api}")
        api = profile.api
    family = (profile.family or apioptions.DEFAULT_FAMILY) if api == "openai" else ""
    return Target(name=name, api=api, model=str(model), family=family,
                  record_url=record_url.rstrip("/") if record_url else None)


def url_problem(url: str) -> str | None:
    """Why a base URL cannot be used, or None."""
    if any(c.isspace() for c in url):
        return "it has white space in it"
    try:
        parts = urlsplit(url)
        parts.port   # noqa: B018 - raises on a port out of range or not a number
    except ValueError as exc:
        return str(exc)
    if not parts.hostname:
        return "it names no host (e.g. https://relay.example.com/v1)"
    return None


def _check_set(text: str, known: Mapping[str, Profile], problems: Problems, where: str) -> None:
    try:
        name, key, value = parse_set_option(text)
    except SettingsError as exc:
        problems.add(f"{where}: {exc}")
        return
    if name not in known:
        problems.add(f"{where}: no provider {name!r}; known: {', '.join(sorted(known))}")
        return
    try:
        Settings.from_profile(known[name]).checked({key: value}, text=True)
    except SettingsError as exc:
        problems.add(f"{where}: {exc}")


def _mock(t: Table, base: Path, extra_profiles: Sequence[str], problems: Problems) -> MockOptions:
    t.only({"seed", "latency_scale", "set", "profiles"})
    files = [str(_relative_to(base, f)) for f in t.str_list("profiles", example='["team.toml"]')]
    files += list(extra_profiles)
    known = _providers(files, problems)
    sets = t.str_list("set", example='["relay.error_rate=0.05"]')
    for text in sets:
        _check_set(text, known, problems, where=f"mock.set {text!r}")
    return MockOptions(seed=t.integer("seed", 0, lo=0), latency_scale=t.number("latency_scale", 1.0, lo=0.0),
                       sets=tuple(sets), profiles=tuple(files))


def _relative_to(base: Path, path: str) -> Path:
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    beside = base / p
    return beside if beside.exists() else p


def _client(t: Table) -> Client:
    t.only({"timeout", "keys", "retry", "batch", "use_cases", "width", "height", "poll_interval", "job_timeout",
            "operation", "stream", "edit", *REQUEST_OPTIONS})
    retry: Retry | None = None
    raw_retry = t.raw.get("retry", False)
    if raw_retry is True:
        retry = Retry()
    elif isinstance(raw_retry, Mapping):
        r = t.table("retry")
        r.only({"max_attempts", "base", "max_backoff", "on", "honour_retry_after"})
        on = r.raw.get("on", [429, 503])
        if not isinstance(on, list) or not on or not all(
                isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 599 for c in on):
            r.fail("on", f"must be a non-empty list of HTTP status codes (4xx/5xx), e.g. [429, 503]; got {on!r} "
                         "(retry = false retries nothing)")
            on = [429, 503]
        base_s, max_backoff_s = r.duration("base", 1.0), r.duration("max_backoff", 30.0)
        if max_backoff_s < base_s:
            r.fail("max_backoff", f"({max_backoff_s:g} s) is below client.retry.base ({base_s:g} s)")
        retry = Retry(max_attempts=r.integer("max_attempts", 5, lo=1, hi=100), base_s=base_s,
                      max_backoff_s=max_backoff_s, on=tuple(on),
                      honour_retry_after=r.boolean("honour_retry_after", True))
    elif raw_retry is not False:
        t.fail("retry", f"must be true, false or a table {{max_attempts, base, on, ...}}, got {raw_retry!r}")
    batch = t.table("batch")
    batch.only({"size", "concurrency", "mode"})
    size = batch.integer("size", 1, lo=1, hi=1000)
    concurrency = batch.integer("concurrency", size, lo=1, hi=1000)
    if concurrency > size:
        batch.fail("concurrency", f"({concurrency}) cannot exceed client.batch.size ({size}): a batch sends at most "
                                  "its own images at once")
        concurrency = size
    batch_mode = batch.choice("mode", "semaphore", ("semaphore", "native"))
    uc = t.raw.get("use_cases", dict(Client.use_cases))
    weights: list[tuple[str, float]] = []
    if "use_cases" not in t:
        weights = list(EDIT_USE_CASES_DEFAULT if t.raw.get("operation") == "edit" else Client.use_cases)
    elif not isinstance(uc, Mapping) or not uc:
        t.fail("use_cases", f"must be a table of use case = weight; use cases: {', '.join(USE_CASES)}")
    else:
        w = t.table("use_cases")
        w.only(USE_CASES)
        weights = [(k, w.number(k, 0.0, lo=0.0)) for k in uc if k in USE_CASES]
        if weights and sum(v for _, v in weights) <= 0:
            t.fail("use_cases", "weights must not all be zero")
    return Client(timeout_s=t.duration("timeout", 30.0, positive=True), keys=t.integer("keys", 64, lo=1, hi=1_000_000),
                  retry=retry, batch_size=size, batch_concurrency=concurrency,
                  use_cases=tuple(weights) or Client.use_cases,
                  width=t.integer("width", 1024, lo=1, hi=16384), height=t.integer("height", 1024, lo=1, hi=16384),
                  poll_interval_s=t.duration("poll_interval", 0.5, positive=True),
                  job_timeout_s=t.duration("job_timeout", 300.0, positive=True), batch_mode=batch_mode,
                  **_request_options(t, batch_size=size))


def _request_options(t: Table, *, batch_size: int) -> dict[str, Any]:
    """[client]'s request options, each checked on its own; apioptions.check then judges them against the
    target's API and model."""
    out: dict[str, Any] = {}
    operation = t.choice("operation", "generate", ("generate", "edit"))
    if operation != "generate":
        out["operation"] = operation
    stream = t.boolean("stream", False)
    if stream:
        out["stream"] = True
        if batch_size > 1:
            t.fail("stream", "streams single generations; leave out batch (or stream = false)")
    if "partial_images" in t:
        out["partial_images"] = t.integer("partial_images", 0, lo=0, hi=apioptions.MAX_PARTIAL_IMAGES)
        if not stream:
            t.fail("partial_images", "needs stream = true (partial images come only in a stream)")
    for name in ("quality", "aspect_ratio", "image_size"):
        if name in t:
            out[name] = t.string(name, "")
    if "size" in t:
        size = t.string("size", "")
        if "width" in t or "height" in t:
            t.fail("size", "and width/height say the same thing; give one of them")
        elif size != "auto" and not _SIZE.match(size):
            t.fail("size", f"must be WIDTHxHEIGHT (e.g. \"1536x1024\") or \"auto\", got {size!r}")
        else:
            out["size"] = size
    for name, allowed in (("output_format", apioptions.OUTPUT_FORMATS), ("background", apioptions.BACKGROUNDS),
                          ("moderation", apioptions.MODERATIONS),
                          ("input_fidelity", apioptions.INPUT_FIDELITIES)):
        if name in t:
            out[name] = t.choice(name, allowed[0], allowed)
    if "output_compression" in t:
        out["output_compression"] = t.integer("output_compression", 100, lo=0, hi=100)
        if out["output_compression"] < 100 and out.get("output_format", "png") == "png":
            t.fail("output_compression", "below 100 needs output_format = \"jpeg\" or \"webp\" (PNG is lossless)")
    if out.get("background") == "transparent" and out.get("output_format") == "jpeg":
        t.fail("background", "\"transparent\" needs output_format = \"png\" or \"webp\" (JPEG has no alpha)")
    if "edit" in t:
        e = t.table("edit")
        e.only({"photos", "images", "size", "format", "mask"})
        width, height = EditInputs.width, EditInputs.height
        if "size" in e:
            text = e.string("size", "")
            m = _SIZE.match(text)
            if m is None or not (64 <= int(m[1]) <= 4096 and 64 <= int(m[2]) <= 4096):
                e.fail("size", f"must be WIDTHxHEIGHT with sides from 64 to 4096 px (e.g. \"1024x1024\"), got {text!r}")
            else:
                width, height = int(m[1]), int(m[2])
        out["edit"] = EditInputs(photos=e.integer("photos", EditInputs.photos, lo=1, hi=64),
                                 images=e.integer("images", EditInputs.images, lo=1, hi=16), width=width,
                                 height=height, format=e.choice("format", "jpeg", ("jpeg", "png", "webp")),
                                 mask=e.boolean("mask", True))
        if operation != "edit":
            t.fail("edit", "describes the photos an edit uploads; it needs operation = \"edit\"")
    return out


def _thresholds(raw: Any, problems: Problems) -> list[Threshold]:
    if not isinstance(raw, Mapping):
        problems.add(f"[thresholds] must be a table of metric = [expressions], got {type(raw).__name__}")
        return []
    if not raw:
        problems.add("[thresholds] is empty: give at least one (e.g. latency = [\"p(99)<600\"]), or leave the "
                     "table out to run without a gate")
    out: list[Threshold] = []
    for key, entries in raw.items():
        # One entry at a time, so every bad expression under a key is reported, not only the first.
        for one in ([[e] for e in entries] if isinstance(entries, list) and entries else [entries]):
            try:
                out += parse_thresholds({key: one})
            except ThresholdError as exc:
                problems.add(str(exc))
    return out


def _check_abort_delays(thresholds: Sequence[Threshold], load: LoadModel, problems: Problems) -> None:
    for t in thresholds:
        if t.abort_on_fail and t.delay_abort_eval_s >= load.duration_s:
            problems.add(f"thresholds.{t.key}: delay_abort_eval ({t.delay_abort_eval_s:g} s) is not before the run "
                         f"ends ({load.duration_s:g} s), so abort_on_fail could never act")


def _actions(raw: Any, load: LoadModel, profiles: Sequence[str], problems: Problems) -> tuple[Action, ...]:
    if not isinstance(raw, list):
        problems.add("actions must be an array of tables: [[actions]] at = \"20s\", provider = ..., set = {...}")
        return ()
    known = _providers(profiles, problems)
    out = []
    for i, entry in enumerate(raw):
        a = Table(entry, f"actions[{i}]", problems)
        a.only({"at", "provider", "set"})
        a.required("at", 'at = "20s"')
        at = a.duration("at", 0.0)
        provider = a.string("provider", "")
        if a.required("provider", 'provider = "midjourney-v7"') and provider not in known:
            a.fail("provider", f"names no provider of the mock: {provider!r}; known: {', '.join(sorted(known))}")
        settings = a.raw.get("set")
        if not isinstance(settings, Mapping) or not settings:
            a.fail("set", "must be a table of admin settings, e.g. { outage = true }")
            settings = {}
        elif provider in known:
            typed = _typed_settings(settings, a.at("set"), problems)
            try:
                Settings.from_profile(known[provider]).checked(dict(settings))
            except SettingsError as exc:
                if typed:
                    a.fail("set", f"is not a valid change for {provider}: {exc}")
        if at > load.duration_s:
            a.fail("at", f"({at:g} s) falls after the run ends ({load.duration_s:g} s)")
        out.append(Action(at_s=at, provider=provider, settings=dict(settings)))
    return tuple(out)


_SETTING_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}
_TYPE_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string"}


def _typed_settings(settings: Mapping[str, Any], where: str, problems: Problems) -> bool:
    """Each value of the TOML type its setting has: `outage = "yes"` is a string where a boolean belongs
    (the admin API answers it with a 400), not a yes. Unknown settings are left to Settings.checked."""
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    ok = True
    for key, value in settings.items():
        if key in ("rate_limit", "capacity") and isinstance(value, Mapping):
            ok = _typed_settings(value, f"{where}.{key}", problems) and ok
            continue
        kind = kinds.get(key)
        if kind is None:
            continue
        wanted = _SETTING_TYPES.get(kind, ())
        if isinstance(value, bool) and kind != "bool" or not isinstance(value, wanted):
            problems.add(f"{where}.{key} must be {_TYPE_WORDS.get(kind, kind)}, got {value!r} "
                         f"({type(value).__name__} in TOML)")
            ok = False
    return ok


def request_names(s: Scenario) -> set[str]:
    """The names the run's requests are recorded under: the target's, and one per model a trace asks for."""
    names = {s.target.request_name}
    trace = getattr(s.load, "trace", None)
    if trace is not None:
        names |= {f"{s.target.api} {m}" for m in trace.models}
    return names


def _check_trace_models(s: Scenario, problems: Problems, cli: bool) -> None:
    """A trace's model column must name models the target serves (a relay serves several, a provider one)."""
    trace = getattr(s.load, "trace", None)
    if trace is None or not trace.models or not s.target.on_mock:
        return
    profile = _providers(s.mock.profiles, problems).get(s.target.name)
    if profile is None:
        return
    served = set(profile.relay.models) if profile.relay is not None else {s.target.name, *profile.aliases}
    unknown = sorted(set(trace.models) - served)
    if unknown:
        problems.add(f"load.trace: {trace.path} asks for {', '.join(repr(m) for m in unknown)}, which "
                     f"{s.target.name} does not serve{' (after --target)' if cli else ''}; it serves "
                     f"{', '.join(sorted(served))}")


def _check_filters(s: Scenario, problems: Problems, cli: bool = False) -> None:
    """A threshold filtered to a stage, target or request name the run will never have never fires."""
    _check_trace_models(s, problems, cli)
    stages = [st.name for st in s.load.stages]
    names = request_names(s)
    for t in s.thresholds:
        for tag, value in t.filters:
            if tag == "stage" and value not in stages:
                problems.add(f"thresholds.{t.key}: no stage named {value!r} "
                             f"(stages: {', '.join(stages)})")
            elif tag == "target" and value != s.target.name:
                problems.add(f"thresholds.{t.key}: the target is {s.target.name!r}, not {value!r}"
                             + (" (after --target)" if cli else ""))
            elif tag == "name" and value not in names:
                problems.add(f"thresholds.{t.key}: requests are named "
                             f"{', '.join(repr(n) for n in sorted(names))}, not {value!r}")
