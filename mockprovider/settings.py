"""A provider's live settings: what the admin API and `--set` change while it runs.

They start from the profile; behaviours read them on every call, so a change is
seen by the next request. Every value is checked against its range in limits.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .limits import SETTING_RANGES, WHOLE_SETTINGS
from .profile import AUTH_MODES, Profile


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
    auth: str = "required"           # required | optional | none (see profile.AUTH_MODES)

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
            auth=profile.auth,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def checked(self, changes: dict[str, Any], *, text: bool = False) -> dict[str, Any]:
        """Validate a change set (flat, or nested as rate_limit/capacity) without applying it.

        `text`: the values come from `--set NAME.key=value`, so "true"/"on"/"yes" and "2.5" are read
        as what they spell; over the admin API values must be JSON booleans and numbers.
        """
        flat: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("rate_limit", "capacity") and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        known = {f.name for f in fields(self)}
        out: dict[str, Any] = {}
        for key, value in flat.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            out[key] = _from_text(key, value) if text else _checked(key, value)
        return out

    def update(self, changes: dict[str, Any], *, text: bool = False) -> dict[str, Any]:
        clean = self.checked(changes, text=text)
        for key, value in clean.items():
            setattr(self, key, value)
        return clean


_BOOLS = {"limits", "outage"}


_CHOICES = {"auth": AUTH_MODES}


def _from_text(key: str, value: Any) -> Any:
    if key in _CHOICES:
        return _checked(key, value.strip() if isinstance(value, str) else value)
    if not isinstance(value, str):
        return _checked(key, value)
    text = value.strip().lower()
    if key in _BOOLS:
        if text in ("true", "on", "1", "yes"):
            return True
        if text in ("false", "off", "0", "no"):
            return False
        raise SettingsError(f"{key} must be true or false, got {value!r}")
    try:
        number = float(text)
    except ValueError:
        raise SettingsError(f"{key} must be a number, got {value!r}") from None
    return _checked(key, int(number) if key in WHOLE_SETTINGS and number.is_integer() else number)


def _checked(key: str, value: Any) -> Any:
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise SettingsError(f"{key} must be one of {', '.join(_CHOICES[key])}, got {_shown(value)}")
        return value
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise SettingsError(f"{key} must be true or false (a JSON boolean), got {value!r}")
        return value
    lo, hi = SETTING_RANGES[key]
    whole = key in WHOLE_SETTINGS
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{key} must be a number, got {_shown(value)}")
    # Compared before any conversion: a 400-digit integer is out of range, not an OverflowError,
    # and NaN fails both comparisons.
    if not lo <= value <= hi:
        raise SettingsError(f"{key} must be {_range(lo, hi, whole)}, got {_shown(value)}")
    if whole:
        if isinstance(value, float) and not value.is_integer():
            raise SettingsError(f"{key} must be a whole number {_range(lo, hi, whole)}, got {value!r}")
        return int(value)
    return float(value)


def _range(lo: float, hi: float, whole: bool) -> str:
    if whole:
        return f"{int(lo)}..{int(hi)}"
    return f"between {lo:g} and {hi:g}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def parse_set_option(text: str) -> tuple[str, str, str]:
    """`NAME.key=value` from the command line -> (name, key, value)."""
    target, sep, value = text.partition("=")
    name, dot, key = target.rpartition(".")
    if not sep or not dot or not name or not key:
        raise SettingsError(f"--set wants NAME.setting=value (e.g. relay.error_rate=0.05), got {text!r}")
    return name.strip(), key.strip(), value.strip()
