"""summary.md: the verdict and its evidence for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..thresholds import format_value

__all__ = ["render", "HEADLINE", "verdict_line"]

HEADLINE = {
    "pass": ("✅", "SLA held"),
    "fail": ("❌", "SLA breached"),
    "invalid": ("⚠️", "run proves nothing"),
}
_VERDICT_CELL = {"pass": "✅ pass", "fail": "❌ fail", "insufficient": "⚠️ insufficient"}


def verdict_line(summary: Mapping[str, Any]) -> str:
    icon, words = HEADLINE.get(summary.get("verdict", ""), ("⚠️", "unknown verdict"))
    target = (summary.get("target") or {}).get("name") or "?"
    return f"{icon} **{words}** — `{summary.get('scenario', '')}` against `{target}` (exit {summary.get('exit_code')})"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |",
           "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _ms(x: Any) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def render(summary: Mapping[str, Any]) -> str:
    lines = [verdict_line(summary), ""]
    target = summary.get("target") or {}
    desc = summary.get("description")
    if desc:
        lines += [f"_{desc}_", ""]
    for reason in summary.get("reasons") or []:
        lines.append(f"- {reason}")
    if summary.get("reasons"):
        lines.append("")

    lines += ["### Thresholds", ""]
    rows = []
    for r in summary.get("thresholds") or []:
        observed = format_value(r.get("metric", ""), _aggregation(r), r.get("observed"))
        limit = f"{r.get('op', '')} {format_value(r.get('metric', ''), _aggregation(r), r.get('limit'))}"
        verdict = _VERDICT_CELL.get(r.get("verdict"), r.get("verdict"))
        rows.append((r.get("label"), observed, limit, verdict, r.get("detail")))
    if rows:
        lines += _table(("Threshold", "Observed", "Limit", "Verdict", "Detail"), rows)
    else:
        lines.append("No thresholds were defined.")
    lines.append("")

    lat = summary.get("latency_ms") or {}
    lines += ["### Latency (ms)", ""]
    keys = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean")
    lines += _table(keys, [[_ms(lat.get(k)) for k in keys]])
    lines.append("")
    rate = summary.get("success_rate")
    lines += [f"Target `{target.get('name')}` ({target.get('api')}, model `{target.get('model')}`): "
              f"{summary.get('requests', 0):,} requests, {summary.get('rps') or 0:,.1f} req/s, "
              f"success {'n/a' if rate is None else f'{rate * 100:.3f} %'}, "
              f"{summary.get('dropped', 0):,} dropped, {summary.get('retries', 0):,} retries, "
              f"peak {summary.get('peak_users', 0):,} users.", ""]

    stages = summary.get("stages") or []
    if stages:
        lines += ["### Stages", ""]
        lines += _table(("Stage", "Window (s)", "Requests", "Failures", "req/s", "p50", "p99", "max"), [
            (s["name"], f"{s['start_s']:g}–{s['end_s']:g}", f"{s['requests']:,}", f"{s['failures']:,}",
             f"{s.get('rps') or 0:,.1f}", _ms(s["latency_ms"].get("p50")), _ms(s["latency_ms"].get("p99")),
             _ms(s["latency_ms"].get("max"))) for s in stages])
        lines.append("")

    codes = summary.get("status_codes") or {}
    if codes:
        total = sum(codes.values()) or 1
        lines += ["### Status codes", ""]
        lines += _table(("Status", "Count", "Share"),
                        [(k, f"{v:,}", f"{v / total * 100:.2f} %") for k, v in codes.items()])
        lines.append("")

    cost = summary.get("cost") or {}
    if cost.get("usd"):
        per = cost.get("per_image_usd")
        lines += [f"Cost: ${cost['usd']:,.2f} for {cost.get('images', 0):,} images"
                  + (f" (${per:.4f} per image)" if per is not None else "") + ".", ""]
    if (summary.get("generator") or {}).get("saturated"):
        lines += [f"Load generator saturated: {summary['generator'].get('detail') or 'yes'}.", ""]

    files = summary.get("files") or {}
    if files:
        lines.append("Files: " + ", ".join(f"[{name}]({_link(path)})" for name, path in files.items()))
        lines.append("")
    return "\n".join(lines)


def _aggregation(r: Mapping[str, Any]) -> str:
    if r.get("aggregation"):
        return str(r["aggregation"])
    return "p" if str(r.get("expression", "")).startswith("p(") else ""


def _link(path: Any) -> str:
    return str(path).replace(" ", "%20").replace(")", "%29")
