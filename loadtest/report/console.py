"""The terminal report printed at the end of a run: the evidence, then the verdict, once, last."""

from __future__ import annotations

from ..exitcodes import ExitCode
from ..summary import GatewayDoc, Summary, delta_words
from ..thresholds import format_value
from . import gatewayview, sides

__all__ = ["render", "verdict_line"]

_WORDS = {"pass": "SLA held", "fail": "SLA breached", "invalid": "run proves nothing"}
_TAGS = {"pass": "PASS", "fail": "FAIL", "invalid": "INVALID", "insufficient": "INSUFFICIENT",
         "inconclusive": "INCONCLUSIVE"}
_COLORS = {"pass": "32", "fail": "31", "invalid": "33", "insufficient": "33", "inconclusive": "33"}


def _paint(text: str, verdict: str, color: bool) -> str:
    if not color or verdict not in _COLORS:
        return text
    return f"\x1b[1;{_COLORS[verdict]}m{text}\x1b[0m"


def verdict_line(summary: Summary, *, color: bool = False, report: str = "") -> str:
    """The last line a person reads: "verdict: FAIL: the SLA was breached (exit 1); report: ..."."""
    code = ExitCode.of(summary.exit_code)
    words = _paint(code.words, summary.verdict, color)
    where = f"; report: {report}" if report else ""
    return f"verdict: {words} — {summary.scenario.name} against {summary.target.name} (exit {int(code)}){where}"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def _baseline(summary: Summary) -> list[str]:
    """This run beside the baseline's: the figures, then each threshold both have."""
    b = summary.baseline
    assert b is not None
    lines = [f"{'Baseline':<14}{b.path} ({b.scenario} against {b.target}, {b.started_at}, {b.verdict})",
             f"{'':<14}{'':<34}{'baseline':>13}{'this run':>13}  change"]
    for d in [*b.figures, *b.thresholds]:
        base, now, change = delta_words(d)
        name = d.name if len(d.name) <= 34 else d.name[:33] + "…"
        lines.append(f"{'':<14}{name:<34}{base:>13}{now:>13}  {change}")
    lines += [f"{'':<14}not compared: {u}" for u in b.unmatched]
    return lines


def _sides(summary: Summary) -> list[str]:
    side = summary.provider_side
    assert side is not None
    lines = [f"{'Both ends':<14}{sides.caption(side)}"]
    if side.side_by_side:
        lines.append(f"{'':<14}" + f"{'ms':<12}" + "".join(f"{h:>13}" for h in sides.HEADER[1:]))
        lines += [f"{'':<14}{r[0]:<12}" + "".join(f"{c:>13}" for c in r[1:]) for r in sides.rows(side)]
    return lines


def render(summary: Summary, color: bool = False) -> str:
    """Everything but the verdict line (the caller prints that last)."""
    width = 78
    rule = "─" * width
    t = summary.target
    lines = [f"{summary.scenario.name} against {t.name} ({t.api}, model {t.model})", rule]

    if summary.thresholds:
        label_w = min(48, max(len(r.label) for r in summary.thresholds))
        interval_w = max(len(r.interval_words(False)) for r in summary.thresholds)
        level = f"{summary.scenario.confidence * 100:g} %"
        lines.append(f"Thresholds    (each estimate with its {level} interval)" if interval_w else "Thresholds")
        for r in summary.thresholds:
            tag = _paint(f"{_TAGS.get(r.verdict, r.verdict.upper()):<12}", r.verdict, color)
            observed = format_value(r.metric, r.aggregation, r.observed)
            label = r.label if len(r.label) <= label_w else r.label[:label_w - 1] + "…"
            if r.verdict == "insufficient":
                why = f"{r.samples:,} of the {r.needed_samples:,} samples needed" if r.needed_samples else r.detail
            elif r.verdict == "inconclusive":
                why = r.undecided_words()
            else:
                why = r.margin.words if r.margin else r.detail
            shown = r.interval_words(False)
            interval = (f"  [{shown}]" if shown else "").ljust(interval_w + 4) if interval_w else ""
            lines.append(f"  {tag} {label:<{label_w}}  {observed:>14}{interval}  {why}")
            if r.provider_side is not None:
                lines.append(f"  {'':<12} {'provider side':<{label_w}}  {sides.threshold_words(r.provider_side)}")
    else:
        lines.append("Thresholds    none defined")
    lines.append(rule)

    rate = summary.success_rate
    lines += [
        f"{'Requests':<14}{summary.requests:>12,}   failures {summary.failures:,}, dropped {summary.dropped:,}, "
        f"retries {summary.retries:,}, failovers {summary.failovers:,}",
        f"{'Throughput':<14}{summary.rps or 0:>12,.1f}   req/s over {summary.duration_s:,.1f} s, "
        f"peak {summary.peak_users:,} users",
        f"{'Success rate':<14}{'n/a' if rate is None else f'{rate * 100:.3f} %':>12}",
    ]
    lat = summary.latency_ms.model_dump(by_alias=True)
    keys = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean")
    if summary.goodput is not None:
        g = summary.goodput
        share = "n/a" if g.rate is None else f"{g.rate * 100:.3f} %"
        lines.append(f"{'Goodput':<14}{share:>12}   {g.requests:,} succeeded within {g.slo_ms:g} ms"
                     + (f", {g.rps:,.1f} req/s" if g.rps is not None else "") + f" ({g.basis})")
    lines.append(f"{'Latency ms':<14}" + "".join(f"{k:>9}" for k in keys))
    lines.append(" " * 14 + "".join(f"{_ms(lat.get(k)):>9}" for k in keys))
    if summary.first_image is not None:
        first = summary.first_image.ms.model_dump(by_alias=True)
        lines.append(f"{'First image':<14}" + "".join(f"{_ms(first.get(k)):>9}" for k in keys)
                     + f"   ms to the first image, {summary.first_image.samples:,} streams")
    if summary.provider_side is not None:
        lines += _sides(summary)
    if summary.baseline is not None:
        lines += _baseline(summary)
    if summary.status_codes:
        total = sum(summary.status_codes.values()) or 1
        lines.append(f"{'Status codes':<14}" + ", ".join(f"{k}: {v:,} ({v / total * 100:.2f} %)"
                                                         for k, v in summary.status_codes.items()))
    cost = summary.cost
    if cost.usd:
        per = cost.per_image_usd
        lines.append(f"{'Cost':<14}${cost.usd:,.2f} for {cost.images:,} images"
                     + (f" (${per:.4f} per image)" if per is not None else ""))
    if summary.gateway is not None:
        lines += gateway_lines(summary.gateway)
    if summary.generator.saturated:
        lines.append(f"{'Generator':<14}saturated: {'; '.join(summary.generator.reasons) or 'yes'}")
    if summary.files:
        where = summary.report_dir
        lines.append(f"{'Reports':<14}" + ", ".join(summary.files.values()) + (f" in {where}" if where else ""))
    if summary.reasons:
        lines.append(rule)
        lines += [f"  - {r.text}" for r in summary.reasons]
    lines.append(rule)
    return "\n".join(lines) + "\n"


def gateway_lines(g: GatewayDoc) -> list[str]:
    """The [sut] gateway, from both ends: what it added, what each request cost upstream, where it went."""
    o, calls = g.overhead_ms, g.upstream_calls_per_request
    mean = "n/a" if calls.mean is None else f"{calls.mean:.3f}"
    mix = ", ".join(f"{k}: {v:,}" for k, v in calls.status_mix.items()) or "none"
    cost = "n/a" if g.upstream_cost_usd is None else f"${g.upstream_cost_usd:,.2f}"
    first = "" if g.first_time_cost_usd is None else f" (${g.first_time_cost_usd:,.2f} had each succeeded first time)"
    served = ", ".join(f"{k}: {v:,}" for k, v in g.served_by.items()) or "none"
    return [
        f"{'Gateway':<14}{g.kind} at {g.url}, primary {g.primary}",
        f"{'  overhead ms':<14}p50 {_ms(o.p50)}, p90 {_ms(o.p90)}, p99 {_ms(o.p99)} "
        f"(client minus provider, {o.method.replace('_', ' ')}"
        + (f", {o.matched_requests:,} matched by id)" if o.method == "by_request" else ")"),
        f"{'  upstream':<14}{mean} calls per request ({calls.upstream_requests:,} for {calls.client_requests:,}"
        + (f", at most {calls.max}" if calls.max is not None else "") + f"); status {mix}",
        f"{'  served by':<14}{served}; failovers {g.failovers:,}; silent 200s {g.silent_success:,}",
        f"{'  cost':<14}{cost} upstream{first}",
    ] + ([f"{'  drift':<14}{g.capability_drift:,} answers of another size or format than "
          f"{gatewayview.asked_shape(g)}"]
         if g.capability_drift else []) + (
        [f"{'  orphaned':<14}{gatewayview.orphaned_text(g)}"] if g.orphaned_upstream_calls else [])
