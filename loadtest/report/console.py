"""The terminal table printed at the end of a run: the verdict first and last, evidence between."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..thresholds import format_value

__all__ = ["render"]

_WORDS = {"pass": "SLA held", "fail": "SLA breached", "invalid": "run proves nothing"}
_TAGS = {"pass": "PASS", "fail": "FAIL", "invalid": "INVALID", "insufficient": "INSUFFICIENT"}
_COLORS = {"pass": "32", "fail": "31", "invalid": "33", "insufficient": "33"}


def _paint(text: str, verdict: str, color: bool) -> str:
    if not color or verdict not in _COLORS:
        return text
    return f"\x1b[1;{_COLORS[verdict]}m{text}\x1b[0m"


def _verdict_line(summary: Mapping[str, Any], color: bool) -> str:
    v = summary.get("verdict", "")
    target = (summary.get("target") or {}).get("name") or "?"
    tag = _paint(f"{_TAGS.get(v, v.upper()):<7}", v, color)
    return f"{tag} {_WORDS.get(v, 'unknown verdict')}: {summary.get('scenario', '')} against {target} " \
           f"(exit {summary.get('exit_code')})"


def _ms(x: Any) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def _margin(detail: str, verdict: str) -> str:
    # "observed 712.4 ms, limit < 600 ms: over by 112.4 ms (18.7 %)" -> "over by 112.4 ms (18.7 %)"
    head, sep, tail = detail.partition(": ")
    if sep and head.startswith("observed "):
        return tail
    # "only 40 requests, at least 100 needed to judge (observed ...)": the observed value has its own column
    return detail.partition(" (")[0] if verdict == "insufficient" else detail


def render(summary: Mapping[str, Any], color: bool = False) -> str:
    width = 78
    rule = "─" * width
    lines = [_verdict_line(summary, color), rule]

    results = summary.get("thresholds") or []
    if results:
        label_w = min(48, max(len(str(r.get("label", ""))) for r in results))
        lines.append("Thresholds")
        for r in results:
            v = r.get("verdict", "")
            tag = _paint(f"{_TAGS.get(v, v.upper()):<12}", v, color)
            observed = format_value(r.get("metric", ""), r.get("aggregation", ""), r.get("observed"))
            label = str(r.get("label", ""))
            if len(label) > label_w:
                label = label[:label_w - 1] + "…"
            lines.append(f"  {tag} {label:<{label_w}}  {observed:>14}  {_margin(str(r.get('detail', '')), v)}")
    else:
        lines.append("Thresholds    none defined")
    lines.append(rule)

    rate = summary.get("success_rate")
    lines += [
        f"{'Requests':<14}{summary.get('requests', 0):>12,}   failures {summary.get('failures', 0):,}, "
        f"dropped {summary.get('dropped', 0):,}, retries {summary.get('retries', 0):,}, "
        f"failovers {summary.get('failovers', 0):,}",
        f"{'Throughput':<14}{summary.get('rps') or 0:>12,.1f}   req/s over {summary.get('duration_s') or 0:,.1f} s, "
        f"peak {summary.get('peak_users', 0):,} users",
        f"{'Success rate':<14}{'n/a' if rate is None else f'{rate * 100:.3f} %':>12}",
    ]
    lat = summary.get("latency_ms") or {}
    keys = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean")
    lines.append(f"{'Latency ms':<14}" + "".join(f"{k:>9}" for k in keys))
    lines.append(" " * 14 + "".join(f"{_ms(lat.get(k)):>9}" for k in keys))
    codes = summary.get("status_codes") or {}
    if codes:
        total = sum(codes.values()) or 1
        lines.append(f"{'Status codes':<14}" + ", ".join(f"{k}: {v:,} ({v / total * 100:.2f} %)"
                                                         for k, v in codes.items()))
    cost = summary.get("cost") or {}
    if cost.get("usd"):
        per = cost.get("per_image_usd")
        lines.append(f"{'Cost':<14}${cost['usd']:,.2f} for {cost.get('images', 0):,} images"
                     + (f" (${per:.4f} per image)" if per is not None else ""))
    gen = summary.get("generator") or {}
    if gen.get("saturated"):
        lines.append(f"{'Generator':<14}saturated: {gen.get('detail') or 'yes'}")
    files = summary.get("files") or {}
    if files:
        where = summary.get("report_dir")
        lines.append(f"{'Reports':<14}" + ", ".join(str(p) for p in files.values()) + (f" in {where}" if where else ""))
    reasons = summary.get("reasons") or []
    if reasons:
        lines.append(rule)
        lines += [f"  - {r}" for r in reasons]
    lines += [rule, _verdict_line(summary, color)]
    return "\n".join(lines) + "\n"
