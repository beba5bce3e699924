"""A provider's live settings: what the admin API and `--set` change while it runs.

They start from the profile; behaviours read them on every call, so a change is
seen by the next request.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from dataclasses import field as dc_field
from typing import Any

from .profile import Profile
from .toxics import default_values, toxic_settings


class SettingsError(ValueError):
    pass


@dataclass
class Settings:
    limits: bool = True              # False: latency only (like --no-limits for this provider)
    outage: bool = False
    error_rate: float = 0.0
    latency_multiplier: float = 1.0
    requests_per_minute: float = 60.0
    burst: int = 10
    slots: int = 1
    queue: int = 0
    per_key_slots: int = 0
    per_key_queue: int = 0
    # --- The byte path and the toxics (see the block at the end of this file) ---
    kb_per_megapixel: float = 1800.0
    url_ttl_s: float = 3600.0
    toxics: dict[str, float] = dc_field(default_factory=default_values)   # shown and set flat, by name

    @classmethod
    def from_profile(cls, profile: Profile, *, limits: bool = True) -> Settings:
        return cls(
            limits=limits,
            error_rate=profile.faults.error_rate,
            requests_per_minute=profile.rate_limit.requests_per_minute,
            burst=profile.rate_limit.burst,
            slots=profile.capacity.slots,
            queue=profile.capacity.queue,
            per_key_slots=profile.capacity.per_key_slots,
            per_key_queue=profile.capacity.per_key_queue,
            kb_per_megapixel=profile.image.kb_per_megapixel,
            url_ttl_s=profile.image.url_ttl_s,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("toxics"))
        return out

    def checked(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate a change set (flat, or nested as rate_limit/capacity) without applying it."""
        flat: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("rate_limit", "capacity", *BYTE_PATH_TABLES) and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        known = {f.name: f.type for f in fields(self) if f.name != "toxics"} | dict.fromkeys(BYTE_PATH)
        out: dict[str, Any] = {}
        for key, value in flat.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            out[key] = byte_path_value(key, value) if key in BYTE_PATH else _coerce(key, value)
        return out

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        clean = self.checked(changes)
        for key, value in clean.items():
            if key in self.toxics:
                self.toxics[key] = value
            else:
                setattr(self, key, value)
        return clean


_BOOLS = {"limits", "outage"}
_INTS = {"burst": 1, "slots": 1, "queue": 0, "per_key_slots": 0, "per_key_queue": 0}
_FLOATS = {"error_rate": (0.0, 1.0), "latency_multiplier": (0.0, 1000.0), "requests_per_minute": (0.001, 1e9)}


def _coerce(key: str, value: Any) -> Any:
    if isinstance(value, str):  # from --set NAME.key=value
        text = value.strip().lower()
        if key in _BOOLS:
            if text in ("true", "on", "1", "yes"):
                return True
            if text in ("false", "off", "0", "no"):
                return False
            raise SettingsError(f"{key} must be true or false, got {value!r}")
        try:
            value = float(text)
        except ValueError:
            raise SettingsError(f"{key} must be a number, got {value!r}") from None
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise SettingsError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingsError(f"{key} must be a finite number, got {value!r}")
    if key in _INTS:
        if int(value) != value or value < _INTS[key]:
            raise SettingsError(f"{key} must be a whole number >= {_INTS[key]}, got {value!r}")
        return int(value)
    lo, hi = _FLOATS[key]
    if not lo <= value <= hi:
        raise SettingsError(f"{key} must be between {lo} and {hi}, got {value!r}")
    return float(value)


def parse_set_option(text: str) -> tuple[str, str, str]:
    """`NAME.key=value` from the command line -> (name, key, value)."""
    target, sep, value = text.partition("=")
    name, dot, key = target.rpartition(".")
    if not sep or not dot or not name or not key:
        raise SettingsError(f"--set wants NAME.setting=value (e.g. relay.error_rate=0.05), got {text!r}")
    return name.strip(), key.strip(), value.strip()


# --- The byte path and the toxics ---------------------------------------------------
# Kept apart from the settings above, as data: the image settings here, and each toxic's own
# (its toxicity, named as the toxic, and its attributes) as toxics.py declares them.
# name -> (lowest, highest, whole numbers only)
BYTE_PATH: dict[str, tuple[float, float, bool]] = {
    "kb_per_megapixel": (1.0, 3000.0, False),   # a PNG's size; 3 bytes a pixel (2,930 KB/MP) is its ceiling
    "url_ttl_s": (0.0, 7 * 86400.0, False),     # 0: a URL has expired by the time it is fetched
    **{name: (a.lo, a.hi, a.integer) for name, a in toxic_settings().items()},
}
BYTE_PATH_TABLES = ("image", "toxics")          # nested forms a PATCH may use, as for rate_limit/capacity


def byte_path_value(key: str, value: Any) -> float:
    lo, hi, integer = BYTE_PATH[key]
    if isinstance(value, str):   # from --set NAME.key=value
        try:
            value = float(value.strip())
        except ValueError:
            raise SettingsError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise SettingsError(f"{key} must be a finite number, got {value!r}")
    if not lo <= value <= hi:   # before any conversion: a 400-digit integer is just out of range
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:20]}... ({len(repr(value))} characters)"
        raise SettingsError(f"{key} must be between {lo:g} and {hi:g}, got {shown}")
    if integer and value != int(value):
        raise SettingsError(f"{key} must be a whole number, got {value!r}")
    return float(value)
