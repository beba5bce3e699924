"""Reading a user's TOML table field by field, collecting every mistake instead of stopping at the first.

A scenario with three typos gets three lines, at load time, before any process starts (k6's
`Validate() []error`). Each reader records what is wrong with a field and hands back the
default, so the rest of the file is still checked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ScenarioError(ValueError):
    """One or more mistakes in a scenario or in the options given for it; str() lists them all."""

    def __init__(self, problems: Iterable[str] | str, source: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            return head + self.problems[0]
        return f"{head}{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)


class Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.messages:   # one mistake found by two checks is still one line
            self.messages.append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def raise_if_any(self, source: str = "") -> None:
        if self.messages:
            raise ScenarioError(self.messages, source)


_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|h|m|s)")


def parse_duration(text: str | int | float) -> float:
    """ "10s", "1m30s", "250ms", "4h", "1.5s", "90" (plain seconds) or a number -> seconds."""
    if isinstance(text, bool):
        raise ValueError(f"a duration must be a number of seconds or a string like \"30s\", got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        s = text.strip()
        if not s:
            raise ValueError("a duration must not be empty (e.g. \"30s\", \"1m30s\", \"250ms\")")
        if s.startswith("-"):
            raise ValueError(f"a duration cannot be negative, got {text!r}")
        try:
            value = float(s)
        except ValueError:
            value, pos = 0.0, 0
            for m in _DURATION_PART.finditer(s):
                if m.start() != pos:
                    break
                value += float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
                pos = m.end()
            if pos != len(s) or pos == 0:
                raise ValueError(f"not a duration: {text!r} (use e.g. \"30s\", \"1m30s\", \"250ms\", \"4h\" "
                                 f"or a number of seconds)") from None
    else:
        raise ValueError(f"a duration must be a number of seconds or a string like \"30s\", got {text!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a duration must be a finite, non-negative number of seconds, got {text!r}")
    return value


class Table:
    """A TOML table at a dotted place in the file (`where`), read with type checks into `problems`."""

    def __init__(self, raw: Any, where: str, problems: Problems) -> None:
        self.where = where
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.add(f"{where} must be a table, got {_kind(raw)}")
            raw = {}
        self.raw: Mapping[str, Any] = raw

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str) -> None:
        self.problems.add(f"{self.at(key)} {message}")

    def only(self, allowed: Iterable[str], hint: str = "") -> None:
        allowed = set(allowed)
        unknown = sorted(set(self.raw) - allowed)
        if unknown:
            where = f"{self.where}: unknown key(s)" if self.where else "unknown top-level key(s)"
            self.problems.add(f"{where} {', '.join(unknown)} (known: {', '.join(sorted(allowed))})"
                              + (f"; {hint}" if hint else ""))

    def _get(self, key: str, default: T, check: Callable[[Any], T | None], wanted: str) -> T:
        if key not in self.raw:
            return default
        value = self.raw[key]
        out = check(value)
        if out is None:
            self.fail(key, f"must be {wanted}, got {_show(value)}")
            return default
        return out

    def table(self, key: str) -> Table:
        return Table(self.raw.get(key), self.at(key), self.problems)

    def required(self, key: str, example: str) -> bool:
        if key not in self.raw:
            self.fail(key, f"is required (e.g. {example})")
            return False
        return True

    def integer(self, key: str, default: int, *, lo: int | None = None, hi: int | None = None) -> int:
        def check(v: Any) -> int | None:
            if isinstance(v, bool) or not isinstance(v, int):
                return None
            return v if (lo is None or v >= lo) and (hi is None or v <= hi) else None
        return self._get(key, default, check, _range_words("a whole number", lo, hi))

    def number(self, key: str, default: float, *, lo: float | None = None, hi: float | None = None,
            above: float | None = None) -> float:
        def check(v: Any) -> float | None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                return None
            if (lo is not None and v < lo) or (hi is not None and v > hi) or (above is not None and v <= above):
                return None
            return float(v)
        words = _range_words("a number", lo, hi) if above is None else f"a number above {above:g}"
        return self._get(key, default, check, words)

    def boolean(self, key: str, default: bool) -> bool:
        return self._get(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def string(self, key: str, default: str) -> str:
        return self._get(key, default, lambda v: v if isinstance(v, str) else None, "a string")

    def choice(self, key: str, default: str, allowed: Iterable[str]) -> str:
        options = tuple(allowed)
        words = "one of " + ", ".join(f'"{o}"' for o in options)
        return self._get(key, default, lambda v: v if isinstance(v, str) and v in options else None, words)

    def duration(self, key: str, default: float, *, positive: bool = False) -> float:
        if key not in self.raw:
            return default
        try:
            value = parse_duration(self.raw[key])
        except (TypeError, ValueError) as exc:
            self.problems.add(f"{self.at(key)}: {exc}")
            return default
        if positive and value <= 0:
            self.fail(key, f"must be longer than 0 s, got {_show(self.raw[key])}")
            return default
        return value

    def str_list(self, key: str, *, example: str) -> list[str]:
        value = self.raw.get(key, [])
        if isinstance(value, str):
            self.fail(key, f"must be a list of strings, e.g. {example}; got the single string {value!r}")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"must be a list of strings, e.g. {example}; got {_show(value)}")
            return []
        return list(value)


def _range_words(kind: str, lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{kind} from {lo:g} to {hi:g}"
    if lo is not None:
        return f"{kind} >= {lo:g}"
    if hi is not None:
        return f"{kind} <= {hi:g}"
    return kind


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
