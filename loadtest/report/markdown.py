"""summary.md: the verdict and its evidence for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY).

A job summary is shown apart from the files, so it links nothing relative: it names the
report's files and the artefact a CI job keeps them in (`LOADTEST_ARTIFACT`, default
"sla-report", as the example workflow uploads them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..cost import run_cost, run_cost_markdown
from ..summary import Summary, delta_words
from ..thresholds import format_value
from . import gatewayview, sides
from .display import limit_text, window

__all__ = ["render", "HEADLINE", "verdict_line"]

HEADLINE = {
    "pass": ("✅", "SLA held"),
    "fail": ("❌", "SLA breached"),
    "invalid": ("⚠️", "run proves nothing"),
}
_VERDICT_CELL = {"pass": "✅ pass", "fail": "❌ fail", "insufficient": "⚠️ insufficient",
                 "inconclusive": "⚠️ inconclusive"}


def verdict_line(summary: Summary) -> str:
    icon, words = HEADLINE.get(summary.verdict, ("⚠️", "unknown verdict"))
    return (f"{icon} **{words}** — `{summary.scenario.name}` against `{summary.target.name}` "
            f"(exit {summary.exit_code})")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |",
           "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def render(summary: Summary) -> str:
    lines = [verdict_line(summary), ""]
    target = summary.target
    if summary.scenario.description:
        lines += [f"_{summary.scenario.description}_", ""]
    for reason in summary.reasons:
        lines.append(f"- {reason.text}")
    if summary.reasons:
        lines.append("")

    lines += ["### Thresholds", ""]
    rows = []
    # With the provider side read, each latency threshold's figure as the providers saw it, and whose a breach is.
    both = any(r.provider_side is not None for r in summary.thresholds)
    for r in summary.thresholds:
        observed = format_value(r.metric, r.aggregation, r.observed)
        limit = limit_text(r.metric, r.aggregation, r.op, r.limit)
        row = [r.label, observed, r.interval_words(False) or "—", limit, _VERDICT_CELL.get(r.verdict, r.verdict),
               r.detail]
        if both:
            row.insert(2, sides.threshold_words(r.provider_side) or "—")
        rows.append(row)
    if rows:
        level = f"{summary.scenario.confidence * 100:g} %"
        header = ["Threshold", "Observed", f"{level} interval", "Limit", "Verdict", "Detail"]
        if both:
            header.insert(2, "Provider side")
        lines += _table(header, rows)
    else:
        lines.append("No thresholds were defined.")
    lines.append("")

    lat = summary.latency_ms.model_dump(by_alias=True)
    lines += ["### Latency (ms)", ""]
    keys = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean")
    lines += _table(keys, [[_ms(lat.get(k)) for k in keys]])
    lines.append("")
    if summary.first_image is not None:
        first = summary.first_image.ms.model_dump(by_alias=True)
        lines += [f"### Time to first image (ms, {summary.first_image.samples:,} streamed generations)", ""]
        lines += _table(keys, [[_ms(first.get(k)) for k in keys]])
        lines.append("")
    rate = summary.success_rate
    if summary.goodput is not None:
        g = summary.goodput
        lines += [f"**Goodput**: {g.requests:,} requests succeeded within {g.slo_ms:g} ms "
                  f"({'n/a' if g.rate is None else f'{g.rate * 100:.3f} %'} of scheduled starts"
                  + (f", {g.rps:,.1f} req/s" if g.rps is not None else "") + f"; objective: {g.basis}).", ""]
    lines += [f"Target `{target.name}` ({target.api}, model `{target.model}`): "
              f"{summary.requests:,} requests, {summary.rps or 0:,.1f} req/s, "
              f"success {'n/a' if rate is None else f'{rate * 100:.3f} %'}, "
              f"{summary.dropped:,} dropped, {summary.retries:,} retries, "
              f"peak {summary.peak_users:,} users.", ""]

    if summary.baseline is not None:
        b = summary.baseline
        lines += ["### Against the baseline", "",
                  f"`{b.path}`: `{b.scenario}` against `{b.target}`, {b.started_at} ({b.verdict}).", ""]
        lines += _table(("Figure", "Baseline", "This run", "Change"),
                        [(d.name, *delta_words(d)) for d in [*b.figures, *b.thresholds]])
        if b.regressions:
            lines += ["", "Regression thresholds judged: " + "; ".join(f"`{r}`" for r in b.regressions) + "."]
        if b.unmatched:
            lines += ["", "Not compared (the baseline has no such value): " + "; ".join(b.unmatched) + "."]
        lines.append("")

    if summary.stages:
        lines += ["### Stages", ""]
        lines += _table(("Stage", "Window", "Requests", "Failures", "req/s", "p50 (ms)", "p99 (ms)", "max (ms)"), [
            (s.name, window(s.start_s, s.end_s), f"{s.requests:,}", f"{s.failures:,}",
             "n/a" if s.rps is None else f"{s.rps:,.1f}", _ms(s.latency_ms.p50), _ms(s.latency_ms.p99),
             _ms(s.latency_ms.max))
            for s in summary.stages])
        lines.append("")

    if summary.provider_side is not None:
        lines += ["### Both ends: client and provider side", "", sides.caption(summary.provider_side) + ".", ""]
        if summary.provider_side.side_by_side:
            lines += _table(tuple(f"{h} (ms)" if i else h for i, h in enumerate(sides.HEADER)),
                            sides.rows(summary.provider_side))
            lines.append("")

    if summary.gateway is not None:
        gw = summary.gateway
        lines += ["### Gateway: both ends", ""]
        lines += _table(("Figure", "Value"), gatewayview.figure_rows(gw))
        lines.append("")
        if gw.stages:
            lines += ["Per stage (upstream calls by the stage they arrived in):", ""]
            lines += _table(gatewayview.STAGE_HEADER, gatewayview.stage_rows(gw))
            lines.append("")

    if summary.status_codes:
        total = sum(summary.status_codes.values()) or 1
        lines += ["### Status codes", ""]
        lines += _table(("Status", "Count", "Share"),
                        [(k, f"{v:,}", f"{v / total * 100:.2f} %") for k, v in summary.status_codes.items()])
        lines.append("")

    if summary.cost.usd:
        lines += ["### Cost, had it been real", "", run_cost_markdown(run_cost(summary.json_dict())), ""]
    if summary.generator.saturated:
        lines += [f"Load generator saturated: {'; '.join(summary.generator.reasons) or 'yes'}.", ""]

    if summary.files:
        artefact = os.environ.get("LOADTEST_ARTIFACT", "sla-report")
        names = ", ".join(f"`{name}`" for name in summary.files.values())
        lines.append(f"Files in the report folder (kept by CI as the artefact `{artefact}`): {names}.")
        lines.append("")
    return "\n".join(lines)
