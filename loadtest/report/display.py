"""How numbers, times and verdicts read on screen: one place, shared by report.html, compare.html and the
live SLA view, so each figure is rounded once, where it is shown (summary.json keeps microseconds).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ..thresholds import format_limit

__all__ = ["seconds", "window", "limit_value", "limit_text", "when", "duration", "VERDICTS", "verdict_word",
           "threshold_name", "ms_unit"]

# Verdict of one threshold -> (word, colour). "collecting" is a live threshold short of samples;
# "inconclusive" one whose interval straddles its limit.
VERDICTS: dict[str, tuple[str, str]] = {
    "pass": ("PASS", "#1e7e34"),
    "fail": ("FAIL", "#b02a37"),
    "inconclusive": ("INCONCLUSIVE", "#a15c00"),
    "insufficient": ("INSUFFICIENT", "#a15c00"),
    "collecting": ("COLLECTING", "#1f5fa8"),
    "invalid": ("INVALID", "#a15c00"),     # live: a breach the generator's, the provider side held
}


def verdict_word(verdict: str) -> str:
    return VERDICTS.get(verdict, (verdict.upper() or "—", ""))[0]


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def seconds(x: Any) -> str:
    """A point in a run: "15 s", "6.4 s", "1,234 s" (a tenth of a second is as fine as a stage is cut)."""
    v = _finite(x)
    if v is None:
        return "—"
    if abs(v - round(v)) < 0.05 or abs(v) >= 1000:
        return f"{round(v):,} s"
    return f"{v:,.1f} s"


def window(start: Any, end: Any) -> str:
    """A stage's window: "0–6.4 s"."""
    a, b = seconds(start), seconds(end)
    return f"{a.removesuffix(' s')}–{b}" if a != "—" else "—"


def limit_value(metric: str, aggregation: str, value: float) -> str:
    """A threshold's limit as a person reads it: rates as percentages without trailing zeros ("99.95 %")."""
    return format_limit(metric, aggregation, value)


def limit_text(metric: str, aggregation: str, op: str, value: float) -> str:
    return f"{op} {limit_value(metric, aggregation, value)}"


def when(iso: Any) -> str:
    """An ISO timestamp as "2026-12-01 07:32:27 UTC" (to the second; no microseconds, no offset digits)."""
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso or "—")
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(x: Any) -> str:
    """A length of time: "42 s", "2 min 10 s", "15 min", "4 h", "4 h 5 min" (a zero remainder left out)."""
    v = _finite(x)
    if v is None:
        return "—"
    s = round(v)
    if s < 120:
        return f"{s} s"
    if s < 3 * 3600:
        return f"{s // 60} min" + (f" {s % 60} s" if s % 60 else "")
    return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 // 60 else "")


def threshold_name(t: Any) -> str:
    """A threshold (its summary.json form) as a person reads it, the limit a percentage where it is a rate:
    "success rate >= 99.95 %", "latency p(99) < 600 ms". The stage it is filtered to is said apart."""
    metric, agg, op = str(t["metric"]), str(t["aggregation"]), str(t["op"])
    head = str(t["label"]).split(" [", 1)[0]
    if f" {op} " in head:
        stat = head.split(f" {op} ", 1)[0]
    else:   # a label in another form: the statistic from the expression ("p(99)<600")
        stat = f"{metric} {str(t.get('expression') or agg).split(op, 1)[0].strip()}"
    return f"{stat} {limit_text(metric, agg, op, float(t['limit']))}"


def ms_unit(values: Any) -> tuple[float, str]:
    """(divisor, unit) to show a group of latencies side by side in one unit: seconds once any reaches 10 s."""
    finite = [v for v in (_finite(x) for x in values) if v is not None]
    return (1000.0, "s") if finite and max(finite) >= 10_000 else (1.0, "ms")
