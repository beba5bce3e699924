"""A provider's live settings: what the admin API and `--set` change while it runs.

They start from the profile; behaviours read them on every call, so a change is
seen by the next request. Every value is checked against its range: in limits.py, or for the
image settings and the toxics' in BYTE_PATH below.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from dataclasses import field as dc_field
from typing import Any

from .limits import SETTING_RANGES, WHOLE_SETTINGS
from .profile import AUTH_MODES, Profile
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
    auth: str = "required"           # required | optional | none (see profile.AUTH_MODES)
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
            auth=profile.auth,
            kb_per_megapixel=profile.image.kb_per_megapixel,
            url_ttl_s=profile.image.url_ttl_s,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("toxics"))
        return out

    def checked(self, changes: dict[str, Any], *, text: bool = False) -> dict[str, Any]:
        """Validate a change set (flat, or nested as rate_limit/capacity) without applying it.

        `text`: the values come from `--set NAME.key=value`, so "true"/"on"/"yes" and "2.5" are read
        as what they spell; over the admin API values must be JSON booleans and numbers.
        """
        flat: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("rate_limit", "capacity", *BYTE_PATH_TABLES) and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        known = {f.name for f in fields(self) if f.name != "toxics"} | set(BYTE_PATH)
        out: dict[str, Any] = {}
        for key, value in flat.items():
            if key not in known:
                raise SettingsError(_unknown(key, known))
            if key in BYTE_PATH:
                out[key] = byte_path_value(key, value, text=text)
            else:
                out[key] = _from_text(key, value) if text else _checked(key, value)
        return out

    def update(self, changes: dict[str, Any], *, text: bool = False) -> dict[str, Any]:
        clean = self.checked(changes, text=text)
        for key, value in clean.items():
            if key in self.toxics:
                self.toxics[key] = value
            else:
                setattr(self, key, value)
        return clean


def _unknown(key: str, known: set[str]) -> str:
    """An unknown name's error: the closest names, then the behaviours' settings by name and the rest by
    kind (the toxics alone are a few dozen names)."""
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    behaviours = sorted(n for n in known if n not in BYTE_PATH)
    return (f"unknown setting {_shown(key)}; {hint}known: {', '.join(behaviours)}, the image settings "
            "(kb_per_megapixel, url_ttl_s) and the toxics' (GET /admin/providers/NAME lists every one)")


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


def byte_path_value(key: str, value: Any, *, text: bool = False) -> float:
    lo, hi, integer = BYTE_PATH[key]
    if text and isinstance(value, str):   # from --set NAME.key=value
        try:
            value = float(value.strip())
        except ValueError:
            raise SettingsError(f"{key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{key} must be a number, got {_shown(value)}")
    # Compared before any conversion: a 400-digit integer is out of range, and NaN fails both comparisons.
    if not lo <= value <= hi:
        raise SettingsError(f"{key} must be between {lo:g} and {hi:g}, got {_shown(value)}")
    if integer and value != int(value):
        raise SettingsError(f"{key} must be a whole number, got {value!r}")
    return float(value)
