"""Provider profiles: the figures a simulated model behaves by, loaded from TOML.

A profile is plain data. `load_profiles` reads the built-in file, then any user
files on top (a table with an existing name overrides fields of it, a new name
adds a provider), resolves `base = "..."` inheritance and validates every field,
so a typo in a user's file is a clear error at start rather than a crash later.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .apis import APIS
from .limits import SETTING_RANGES

# z of the 99th percentile of the standard normal distribution.
Z99 = 2.3263478740408408

FAULT_KINDS = ("server_error", "overloaded", "content_policy", "timeout")
# How strictly a provider checks credentials: a gateway that cannot carry them to a custom base URL
# (LiteLLM's Vertex `api_base`) needs "optional" (absent is served, a malformed one is still refused)
# or "none" (nothing is checked).
AUTH_MODES = ("required", "optional", "none")


class ProfileError(ValueError):
    """A profile file or setting that cannot be used, with the field it concerns."""


@dataclass(frozen=True)
class LatencySpec:
    p50_ms: float
    p99_ms: float
    min_ms: float = 0.0
    max_ms: float = 120_000.0
    per_extra_image: float = 0.0
    # Work per image beyond the reference request (one image, 1024x1024, the profile's reference
    # quality): the draw is multiplied by quality_factors[quality] and (pixels / 1024**2) ** size_exponent.
    quality_factors: dict[str, float] = field(default_factory=dict)
    size_exponent: float = 0.0

    @property
    def mu(self) -> float:
        return math.log(self.p50_ms)

    @property
    def sigma(self) -> float:
        return math.log(self.p99_ms / self.p50_ms) / Z99

    @property
    def mean_ms(self) -> float:
        """Mean of the unclipped log-normal (clipping moves it by well under 1 %)."""
        return self.p50_ms * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True)
class CapacitySpec:
    slots: int
    queue: int
    per_key_slots: int = 0  # 0: no per-key limit
    per_key_queue: int = 0


@dataclass(frozen=True)
class RateLimitSpec:
    requests_per_minute: float
    burst: int
    counts: str = "requests"   # "images": a request for n images spends n (an images-per-minute limit)


@dataclass(frozen=True)
class FaultSpec:
    error_rate: float
    mix: dict[str, float]
    hang_ms: float = 35_000.0


@dataclass(frozen=True)
class ImageSpec:
    """The images a provider hands out: how big (a real PNG's bytes per megapixel) and how long a URL lives."""
    kb_per_megapixel: float = 1800.0   # about 1.8 MiB for 1024x1024, inside real PNGs' 1.5-3 MB
    url_ttl_s: float = 3600.0          # OpenAI's image URLs live an hour


@dataclass(frozen=True)
class RelaySpec:
    models: tuple[str, ...]
    prices: dict[str, float]
    failover: dict[str, tuple[str, ...]]
    failover_penalty_ms: float = 0.0


@dataclass(frozen=True)
class Profile:
    name: str
    api: str
    price_usd: float
    uptime: float
    max_size: int
    latency: LatencySpec
    capacity: CapacitySpec
    rate_limit: RateLimitSpec
    faults: FaultSpec
    seed_consistency: str = ""
    relay: RelaySpec | None = None
    aliases: tuple[str, ...] = ()   # other model ids served by this profile (a real API's ids)
    auth: str = "required"
    family: str = ""   # the real model whose request rules the wire format applies ("" = the API's default)
    image: ImageSpec = ImageSpec()

    @property
    def saturation_rps(self) -> float:
        """Throughput once every slot is busy (Little's law)."""
        return self.capacity.slots / (self.latency.mean_ms / 1000.0)

    def price_for(self, model: str) -> float:
        if self.relay is not None:
            return self.relay.prices.get(model, self.price_usd)
        return self.price_usd

    def with_changes(self, **changes: Any) -> Profile:
        return replace(self, **changes)


# --- loading -----------------------------------------------------------------


def builtin_path() -> Path:
    return Path(str(resources.files("mockprovider") / "profiles" / "builtin.toml"))


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ProfileError(f"profile file not found: {p}") from None
    except IsADirectoryError:
        raise ProfileError(f"profile file {str(path)!r} is a folder, not a TOML file") from None
    except OSError as exc:
        raise ProfileError(f"profile file {p} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{p}: not valid TOML: {exc}") from None


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profiles(extra_files: Iterable[str | Path] = ()) -> dict[str, Profile]:
    raw = read_toml(builtin_path())
    for path in extra_files:
        user = read_toml(path)
        for name, table in user.items():
            if not isinstance(table, dict):
                raise ProfileError(f"{path}: [{name}] must be a table of fields")
            raw[name] = deep_merge(raw.get(name, {}), table)
    resolved = {name: _resolve(name, raw, ()) for name in raw}
    profiles = {name: parse_profile(name, table) for name, table in resolved.items()}
    _check_aliases(profiles)
    for name, p in profiles.items():
        if p.relay is not None:
            _check_relay(p, profiles)
            # A model the relay publishes no price for costs what it costs direct.
            direct = {m: profiles[m].price_usd for m in p.relay.models if m not in p.relay.prices}
            if direct:
                profiles[name] = replace(p, relay=replace(p.relay, prices={**p.relay.prices, **direct}))
    return profiles


def _resolve(name: str, raw: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if name in seen:
        raise ProfileError(f"[{name}]: `base` inheritance loops: {' -> '.join(seen + (name,))}")
    table = raw[name]
    base = table.get("base")
    if base is None:
        return dict(table)
    if not isinstance(base, str):
        raise ProfileError(f"[{name}]: base must be the name of another profile, got {base!r}")
    if base not in raw:
        raise ProfileError(f"[{name}]: base = {base!r} names no profile")
    parent = _resolve(base, raw, seen + (name,))
    merged = deep_merge(parent, {k: v for k, v in table.items() if k != "base"})
    if "relay" in parent and "relay" not in table:
        merged.pop("relay", None)  # a relay's model list does not carry over to a copy
    if "aliases" not in table:
        merged.pop("aliases", None)  # an id names one model: a copy answers to its own name only
    return merged


# --- validation ----------------------------------------------------------------


def _setting(where: str, table: dict[str, Any], key: str, *, default: Any = None, integer: bool = False) -> Any:
    """A figure a live setting starts from, in that setting's range (limits.py)."""
    lo, hi = SETTING_RANGES[key]
    return _num(where, table, key, lo=lo, hi=hi, default=default, integer=integer)


def _num(where: str, table: dict[str, Any], key: str, *, lo: float | None = None,
         hi: float | None = None, default: Any = None, integer: bool = False) -> Any:
    if key not in table:
        if default is None:
            raise ProfileError(f"{where}.{key} is required")
        return default
    value = table[key]
    # isfinite only for floats: a 400-digit TOML integer is out of range, not an OverflowError.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float)
                                                                           and not math.isfinite(value)):
        raise ProfileError(f"{where}.{key} must be a finite number, got {value!r}")
    if integer and int(value) != value:
        raise ProfileError(f"{where}.{key} must be a whole number, got {value!r}")
    if lo is not None and value < lo:
        raise ProfileError(f"{where}.{key} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ProfileError(f"{where}.{key} must be <= {hi}, got {value!r}")
    return int(value) if integer else float(value)


_SUBFIELDS = {
    "latency": {"p50_ms", "p99_ms", "min_ms", "max_ms", "per_extra_image", "quality_factors", "size_exponent"},
    "capacity": {"slots", "queue", "per_key_slots", "per_key_queue"},
    "rate_limit": {"requests_per_minute", "burst", "counts"},
    "faults": {"error_rate", "mix", "hang_ms"},
    "relay": {"models", "prices", "failover", "failover_penalty_ms"},
    "image": {"kb_per_megapixel", "url_ttl_s"},
}


def _table(where: str, table: dict[str, Any], key: str) -> dict[str, Any]:
    value = table.get(key)
    if not isinstance(value, dict):
        raise ProfileError(f"{where}.{key} must be a table")
    unknown = set(value) - _SUBFIELDS.get(key, set(value))
    if unknown:   # a misspelt field would otherwise be silently ignored
        raise ProfileError(f"{where}.{key}: unknown field(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(_SUBFIELDS[key]))}")
    return value


KNOWN_FIELDS = {"api", "price_usd", "uptime", "max_size", "seed_consistency", "latency",
                "capacity", "rate_limit", "faults", "relay", "base", "aliases", "auth", "family", "image"}


def parse_latency(where: str, t: dict[str, Any]) -> LatencySpec:
    lat = LatencySpec(
        p50_ms=_num(where, t, "p50_ms", lo=0.001),
        p99_ms=_num(where, t, "p99_ms", lo=0.001),
        min_ms=_num(where, t, "min_ms", lo=0, default=0.0),
        max_ms=_num(where, t, "max_ms", lo=0.001, default=120_000.0),
        per_extra_image=_num(where, t, "per_extra_image", lo=0, default=0.0),
        quality_factors=_factors(f"{where}.quality_factors", t.get("quality_factors", {})),
        size_exponent=_num(where, t, "size_exponent", lo=0, hi=4, default=0.0),
    )
    if lat.p99_ms < lat.p50_ms:
        raise ProfileError(f"{where}: p99_ms ({lat.p99_ms}) is below p50_ms ({lat.p50_ms})")
    if not lat.min_ms <= lat.p50_ms <= lat.max_ms:
        raise ProfileError(f"{where}: p50_ms must lie between min_ms and max_ms")
    return lat


def _factors(where: str, raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must be a table of quality = factor")
    return {str(k): _num(where, raw, k, lo=0.001) for k in raw}


def parse_capacity(where: str, t: dict[str, Any]) -> CapacitySpec:
    return CapacitySpec(
        slots=_setting(where, t, "slots", integer=True),
        queue=_setting(where, t, "queue", integer=True),
        per_key_slots=_setting(where, t, "per_key_slots", default=0, integer=True),
        per_key_queue=_setting(where, t, "per_key_queue", default=0, integer=True),
    )


def parse_rate_limit(where: str, t: dict[str, Any]) -> RateLimitSpec:
    return RateLimitSpec(
        requests_per_minute=_setting(where, t, "requests_per_minute"),
        burst=_setting(where, t, "burst", integer=True),
        counts=_choice(where, t, "counts", ("requests", "images")),
    )


def _choice(where: str, t: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = t.get(key, allowed[0])
    if value not in allowed:
        raise ProfileError(f"{where}.{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def parse_faults(where: str, t: dict[str, Any]) -> FaultSpec:
    mix_raw = t.get("mix", {"server_error": 1.0})
    if not isinstance(mix_raw, dict) or not mix_raw:
        raise ProfileError(f"{where}.mix must be a table of fault kind = weight")
    mix: dict[str, float] = {}
    for kind, _weight in mix_raw.items():
        if kind not in FAULT_KINDS:
            raise ProfileError(f"{where}.mix: unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        mix[kind] = _num(f"{where}.mix", mix_raw, kind, lo=0)
    if sum(mix.values()) <= 0:
        raise ProfileError(f"{where}.mix: weights must not all be zero")
    return FaultSpec(
        error_rate=_num(where, t, "error_rate", lo=0, hi=1),
        mix=mix,
        hang_ms=_num(where, t, "hang_ms", lo=0, default=35_000.0),
    )


def parse_image(where: str, t: dict[str, Any]) -> ImageSpec:
    default = ImageSpec()
    return ImageSpec(
        kb_per_megapixel=_num(where, t, "kb_per_megapixel", lo=1, hi=3000, default=default.kb_per_megapixel),
        url_ttl_s=_num(where, t, "url_ttl_s", lo=0, hi=7 * 86400, default=default.url_ttl_s),
    )


def parse_profile(name: str, t: dict[str, Any]) -> Profile:
    where = f"[{name}]"
    unknown = set(t) - KNOWN_FIELDS
    if unknown:
        raise ProfileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    api = t.get("api")
    if api not in APIS:
        raise ProfileError(f"{where}.api must be one of {', '.join(APIS)}, got {api!r}")
    relay = None
    if api == "relay":
        r = _table(where, t, "relay")
        models = r.get("models")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models) or not models:
            raise ProfileError(f"{where}.relay.models must be a non-empty list of model names")
        prices_raw = r.get("prices", {})
        if not isinstance(prices_raw, dict):
            raise ProfileError(f"{where}.relay.prices must be a table of model = price")
        prices = {m: _num(f"{where}.relay.prices", prices_raw, m, lo=0) for m in prices_raw}
        failover_raw = r.get("failover", {})
        if not isinstance(failover_raw, dict):
            raise ProfileError(f"{where}.relay.failover must be a table of model = [fallback models]")
        failover = {}
        for m, fallbacks in failover_raw.items():
            if isinstance(fallbacks, str):
                fallbacks = [fallbacks]
            if not isinstance(fallbacks, list) or not all(isinstance(f, str) for f in fallbacks):
                raise ProfileError(f"{where}.relay.failover.{m} must be a list of model names")
            failover[m] = tuple(fallbacks)
        relay = RelaySpec(tuple(models), prices, failover,
                          _num(f"{where}.relay", r, "failover_penalty_ms", lo=0, default=0.0))
    aliases = t.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ProfileError(f"{where}.aliases must be a list of model ids")
    auth = t.get("auth", "required")
    if auth not in AUTH_MODES:
        raise ProfileError(f"{where}.auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    return Profile(
        name=name,
        api=api,
        price_usd=_num(where, t, "price_usd", lo=0),
        uptime=_num(where, t, "uptime", lo=0, hi=1),
        max_size=_num(where, t, "max_size", lo=64, integer=True),
        seed_consistency=str(t.get("seed_consistency", "")),
        latency=parse_latency(f"{where}.latency", _table(where, t, "latency")),
        capacity=parse_capacity(f"{where}.capacity", _table(where, t, "capacity")),
        rate_limit=parse_rate_limit(f"{where}.rate_limit", _table(where, t, "rate_limit")),
        faults=parse_faults(f"{where}.faults", _table(where, t, "faults")),
        relay=relay,
        aliases=tuple(aliases),
        auth=auth,
        family=_family(where, t.get("family", "")),
        image=parse_image(f"{where}.image", _table(where, t, "image")) if "image" in t else ImageSpec(),
    )


def _check_aliases(profiles: dict[str, Profile]) -> None:
    owner: dict[str, str] = {}
    for name, p in profiles.items():
        for alias in p.aliases:
            if alias in profiles:
                raise ProfileError(f"[{name}].aliases: {alias!r} is already the name of a profile")
            if alias in owner:
                raise ProfileError(f"[{name}].aliases: {alias!r} is already an alias of [{owner[alias]}]")
            owner[alias] = name


def _family(where: str, value: Any) -> str:
    # Which families exist is the wire format's to say (it checks them when the server is built).
    if not isinstance(value, str):
        raise ProfileError(f"{where}.family must be the name of a model, got {value!r}")
    return value


def _check_relay(relay: Profile, profiles: dict[str, Profile]) -> None:
    assert relay.relay is not None
    for model in relay.relay.models:
        if model not in profiles:
            raise ProfileError(f"[{relay.name}].relay.models: {model!r} names no profile")
    for model, fallbacks in relay.relay.failover.items():
        for fb in fallbacks:
            if fb not in relay.relay.models:
                raise ProfileError(f"[{relay.name}].relay.failover.{model}: {fb!r} is not one of its models")


def describe(profile: Profile) -> dict[str, Any]:
    """Derived figures, for --show-profiles and the docs."""
    lat = profile.latency
    return {
        "api": profile.api,
        "p50_ms": lat.p50_ms,
        "p99_ms": lat.p99_ms,
        "sigma": round(lat.sigma, 4),
        "mean_ms": round(lat.mean_ms, 1),
        "slots": profile.capacity.slots,
        "queue": profile.capacity.queue,
        "saturation_rps": round(profile.saturation_rps, 1),
        "rate_limit_rpm": profile.rate_limit.requests_per_minute,
        "error_rate": profile.faults.error_rate,
        "price_usd": profile.price_usd,
        "aliases": list(profile.aliases),
        "auth": profile.auth,
        "image_kb_per_megapixel": profile.image.kb_per_megapixel,
        "image_kb_1024x1024": round(profile.image.kb_per_megapixel * 1024 * 1024 / 1e6),
        "url_ttl_s": profile.image.url_ttl_s,
    }
