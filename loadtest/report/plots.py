"""The run's figures as PNGs: latency over time, the latency distribution, status codes, relay vs direct.

Each function takes the run's summary document (as written to summary.json), writes
one PNG and returns its path. Figures are drawn on a bare Agg canvas, never through
pyplot, so rendering touches no global state and needs no display.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

LATENCY_METRICS = {"latency", "latency_ms", "http_req_duration", "response_time", "duration"}
PCT_COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#7b3fa0"}
SLA_COLOR = "#c0392b"
CODE_GROUPS = (("2xx", "#2e9e44"), ("429", "#f0a500"), ("5xx", "#d62728"), ("timeout", "#6a3d9a"),
               ("other", "#8c8c8c"), ("dropped", "#1b1b1b"))
STAGE_SHADES = ("#f2f2f2", "#ffffff")
DPI = 100
_EXPR = re.compile(r"^\s*(?:p\(\s*(?P<p>[\d.]+)\s*\)|(?P<agg>med|avg|max))\s*(?P<op><=|<)\s*(?P<v>[\d.]+)\s*$")


# --- reading the summary -----------------------------------------------------------


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def sla_lines(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Latency limits from the thresholds: [{label, ms, stage (None: the whole run), verdict}]."""
    out = []
    for t in summary.get("thresholds") or []:
        if str(t.get("metric", "")).split("{")[0] not in LATENCY_METRICS:
            continue
        m = _EXPR.match(str(t.get("expression", "")))
        if not m:
            continue
        filters = t.get("filters") or {}
        if set(filters) - {"stage"}:
            continue     # a limit on one request name or target is not the run's line
        stat = f"P{float(m['p']):g}" if m["p"] else {"med": "P50", "avg": "mean", "max": "max"}[m["agg"]]
        out.append({"label": f"SLA {stat} {m['op']} {float(m['v']):g} ms", "stat": stat, "ms": float(m["v"]),
                    "stage": filters.get("stage"), "verdict": t.get("verdict")})
    return out


def stage_windows(summary: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    out = []
    for s in summary.get("stages") or []:
        start, end = _f(s.get("start_s")), _f(s.get("end_s"))
        if not (math.isnan(start) or math.isnan(end)) and end > start:
            out.append((str(s.get("name", "")), start, end))
    return out


def _time_scale(max_s: float) -> tuple[float, str]:
    if max_s > 3 * 3600:
        return 3600.0, "hours"
    if max_s > 900:
        return 60.0, "minutes"
    return 1.0, "s"


def _title(summary: Mapping[str, Any], what: str) -> str:
    target = summary.get("target") or {}
    who = target.get("name") or "?"
    if target.get("model") and target.get("model") != who:
        who += f" ({target['model']})"
    return f"{(summary.get('scenario') or {}).get('name', 'run')} on {who}: {what}"


# --- drawing helpers ------------------------------------------------------------------


def _figure(w: float = 10.0, h: float = 6.0) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png", dpi=DPI)
    return p


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=13, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def _shade_stages(ax: Any, windows: Sequence[tuple[str, float, float]], k: float, label: bool) -> None:
    for i, (name, a, b) in enumerate(windows):
        ax.axvspan(a / k, b / k, color=STAGE_SHADES[i % 2], zorder=0, lw=0)
        if i:
            ax.axvline(a / k, color="#9a9a9a", lw=0.8, ls=":", zorder=1)
        if label:
            ax.text((a + b) / 2 / k, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=9, color="#444444", clip_on=False)


def latency_unit(top_ms: float) -> tuple[float, str]:
    """(divisor, unit) for a latency axis reaching top_ms: seconds once its ticks would pass 2,000 ms.

    One unit per axis, named in its label; the ticks are bare numbers in that unit."""
    return (1000.0, "s") if top_ms > 2000 else (1.0, "ms")


def _latency_axis(axis: Any, top_ms: float) -> str:
    k, unit = latency_unit(top_ms)
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v / k:,.6g}"))
    return unit


def run_marks(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What happened to the run at a point in time: [{kind, t_s, text}] for actions, an abort, a stop.

    kind is "action", "abort" or "stop"; t_s is on the schedule's clock, as the timeline is."""
    marks: list[dict[str, Any]] = []
    for a in summary.get("actions") or []:
        t = _f(a.get("at_s"))
        if math.isnan(t):
            continue
        settings = ", ".join(f"{k}={_setting(v)}" for k, v in (a.get("settings") or {}).items())
        text = f"{a.get('provider', '')}: {settings}" + ("" if a.get("ok", True) else " (failed)")
        marks.append({"kind": "action", "t_s": t, "text": text})
    run = summary.get("run") or {}
    if run.get("aborted_by") or run.get("generator_abort"):
        t = _f(run.get("aborted_at_s"))
        if math.isnan(t):
            t = _f(run.get("elapsed_s"))
        text = (f"aborted: {run['aborted_by']}" if run.get("aborted_by") else
                f"stopped, the generator's breach: {run['generator_abort']}")
        if not math.isnan(t):
            marks.append({"kind": "abort", "t_s": t, "text": text})
    elif run.get("end") in ("stopped", "interrupted"):
        t = _f(run.get("elapsed_s"))
        if not math.isnan(t):
            marks.append({"kind": "stop", "t_s": t,
                          "text": "stopped by hand" if run["end"] == "stopped" else "interrupted"})
    return marks


def _setting(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


MARK_STYLE = {"action": {"color": "#1f4e99", "ls": "-.", "lw": 1.4, "legend": "admin action"},
              "abort": {"color": "#b02a37", "ls": "-", "lw": 2.2, "legend": "aborted (abort_on_fail)"},
              "stop": {"color": "#444444", "ls": "-", "lw": 2.0, "legend": "run stopped before its end"}}


def _draw_marks(ax: Any, marks: Sequence[Mapping[str, Any]], k: float, *, text: bool) -> None:
    """Vertical lines at each mark (gid = its kind); with `text`, the mark's words and a legend entry per kind."""
    seen: set[str] = set()
    for m in marks:
        style = MARK_STYLE[m["kind"]]
        x = m["t_s"] / k
        ax.axvline(x, color=style["color"], ls=style["ls"], lw=style["lw"], zorder=6, gid=m["kind"],
                   label=None if m["kind"] in seen or not text else style["legend"])
        seen.add(m["kind"])
        if text:
            ax.text(x, 0.97, " " + m["text"], transform=ax.get_xaxis_transform(), rotation=90, ha="right",
                    va="top", fontsize=8, color=style["color"], zorder=7,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75})


# --- figures -------------------------------------------------------------------------


def latency_over_time(summary: Mapping[str, Any], path: str | Path) -> Path:
    """P50/P95/P99 per second against the SLA, over users and requests/s; stages shaded, actions,
    an abort or a stop marked."""
    return _save(latency_over_time_figure(summary), path)


def latency_over_time_figure(summary: Mapping[str, Any]) -> Figure:
    timeline = [r for r in (summary.get("timeline") or []) if not math.isnan(_f(r.get("t_s")))]
    fig = _figure(12, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    fig.suptitle(_title(summary, "latency over time"), fontsize=13)
    if not timeline:
        _empty(top, "no per-second timeline was recorded")
        _empty(bottom, "")
        return fig
    ts = [_f(r.get("t_s")) for r in timeline]
    windows = stage_windows(summary)
    marks = run_marks(summary)
    k, unit = _time_scale(max(ts + [w[2] for w in windows] + [m["t_s"] for m in marks] + [1.0]))
    x = [t / k for t in ts]
    _shade_stages(top, windows, k, label=True)
    _shade_stages(bottom, windows, k, label=False)
    plotted: list[float] = []
    for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        y = [_f(r.get(key)) for r in timeline]
        plotted += [v for v in y if not math.isnan(v)]
        top.plot(x, y, color=PCT_COLORS[name], lw=1.6, label=name.upper(), marker="o" if len(x) < 3 else None)
    if not plotted:
        top.text(0.5, 0.5, "no latency recorded in any second (did every request fail?)", ha="center",
                 va="center", transform=top.transAxes, fontsize=12, color="#b02a37")
    # One row per second: a row at t covers [t, t+1), and the stages may run past the last row.
    x0 = min(x + [a / k for _, a, _ in windows])
    x1 = max([v + 1 / k for v in x] + [b / k for _, _, b in windows] + [m["t_s"] / k for m in marks])
    top.set_xlim(x0 - 0.01 * (x1 - x0), x1 + 0.005 * (x1 - x0))
    lines = sla_lines(summary)
    whole = {(ln["stat"], ln["ms"]) for ln in lines if not ln["stage"]}
    for line in lines:
        if line["stage"] and (line["stat"], line["ms"]) in whole:
            continue     # the same limit over one stage would hide under the whole-run line
        span = next(((a / k, b / k) for n, a, b in windows if n == line["stage"]), None) if line["stage"] else None
        if line["stage"] and span is None:
            continue
        style = {"colors": SLA_COLOR, "linestyles": "--" if line["stat"] == "P99" else ":", "lw": 1.8, "zorder": 5}
        if span is None:
            top.axhline(line["ms"], color=SLA_COLOR, ls=style["linestyles"], lw=1.8, zorder=5, label=line["label"])
        else:
            top.hlines(line["ms"], *span, label=f"{line['label']} ({line['stage']})", **style)
        plotted.append(line["ms"])
    # Headroom above the highest line keeps the legend off the SLA line and the data.
    if plotted and min(plotted) > 0 and max(plotted) / min(plotted) > 30:
        top.set_yscale("log")
        top.set_ylim(min(plotted) / 1.5, max(plotted) * 4)
    elif plotted:
        top.set_ylim(0, max(plotted) * 1.35)
    y_unit = _latency_axis(top.yaxis, top.get_ylim()[1])
    top.set_ylabel(f"each second's percentile ({y_unit})")
    _draw_marks(top, marks, k, text=True)
    _draw_marks(bottom, marks, k, text=False)
    top.grid(True, alpha=0.3)
    # Beside the panel, not on it: the marks' words run down from its top edge.
    top.legend(loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=9, framealpha=0.9)

    rps = [_f(r.get("rps", r.get("requests"))) for r in timeline]
    fails = [_f(r.get("failures")) for r in timeline]
    dots = "o" if len(x) < 3 else None
    bottom.plot(x, rps, color="#2e9e44", lw=1.4, label="requests/s", marker=dots)
    if any(v > 0 for v in fails if not math.isnan(v)):
        bottom.plot(x, fails, color=SLA_COLOR, lw=1.2, label="failures/s", marker=dots)
    bottom.set_ylabel("requests per second")
    bottom.set_ylim(bottom=0)
    bottom.grid(True, alpha=0.3)
    users_ax = bottom.twinx()
    users_ax.step(x, [_f(r.get("users")) for r in timeline], where="post", color="#555555", lw=1.2, ls="--",
                  label="users", marker=dots)
    users_ax.set_ylabel("users")
    users_ax.set_ylim(bottom=0)
    h1, l1 = bottom.get_legend_handles_labels()
    h2, l2 = users_ax.get_legend_handles_labels()
    bottom.legend(h1 + h2, l1 + l2, loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=9, framealpha=0.9)
    bottom.set_xlabel(f"time since start ({unit})")
    return fig


def gateway_over_time(summary: Mapping[str, Any], path: str | Path) -> Path:
    """A [sut] run from both ends per second: the client's P50/P99 against the providers' behind the gateway,
    and the upstream calls each client request cost; stages shaded, actions marked."""
    return _save(gateway_over_time_figure(summary), path)


def gateway_over_time_figure(summary: Mapping[str, Any]) -> Figure:
    gateway = summary.get("gateway") or {}
    rows = [r for r in (gateway.get("timeline") or []) if not math.isnan(_f(r.get("t_s")))]
    fig = _figure(12, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    fig.suptitle(_title(summary, "both ends of the gateway over time"), fontsize=13)
    if not rows:
        _empty(top, "no per-second figures of the gateway were recorded")
        _empty(bottom, "")
        return fig
    ts = [_f(r.get("t_s")) for r in rows]
    windows = stage_windows(summary)
    marks = run_marks(summary)
    k, unit = _time_scale(max(ts + [w[2] for w in windows] + [m["t_s"] for m in marks] + [1.0]))
    x = [t / k for t in ts]
    dots = "o" if len(x) < 3 else None
    for ax, label in ((top, True), (bottom, False)):
        _shade_stages(ax, windows, k, label=label)
    plotted: list[float] = []
    for key, name, colour, ls in (("client_p50_ms", "client P50", PCT_COLORS["p50"], "-"),
                                  ("client_p99_ms", "client P99", PCT_COLORS["p99"], "-"),
                                  ("provider_p50_ms", "provider P50", PCT_COLORS["p50"], "--"),
                                  ("provider_p99_ms", "provider P99", PCT_COLORS["p99"], "--")):
        y = [_f(r.get(key)) for r in rows]
        plotted += [v for v in y if not math.isnan(v)]
        top.plot(x, y, color=colour, ls=ls, lw=1.6, label=name, marker=dots)
    if plotted:
        top.set_ylim(0, max(plotted) * 1.25)
    y_unit = _latency_axis(top.yaxis, top.get_ylim()[1])
    top.set_ylabel(f"each second's percentile ({y_unit})")
    top.grid(True, alpha=0.3)
    _draw_marks(top, marks, k, text=True)
    _draw_marks(bottom, marks, k, text=False)
    top.legend(loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=9, framealpha=0.9)
    calls = [_f(r.get("calls_per_request")) for r in rows]
    bottom.plot(x, calls, color="#b35900", lw=1.5, label="upstream calls per request", marker=dots)
    bottom.axhline(1.0, color="#777777", lw=0.9, ls=":", label="one call each")
    finite = [v for v in calls if not math.isnan(v)]
    bottom.set_ylim(0, max(finite + [1.0]) * 1.3)
    bottom.set_ylabel("calls per request")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=9, framealpha=0.9)
    bottom.set_xlabel(f"time since start ({unit})")
    x0 = min(x + [a / k for _, a, _ in windows])
    x1 = max([v + 1 / k for v in x] + [b / k for _, _, b in windows] + [m["t_s"] / k for m in marks])
    top.set_xlim(x0 - 0.01 * (x1 - x0), x1 + 0.005 * (x1 - x0))
    return fig


def _expected_quantiles(exp: Mapping[str, Any], ps: Sequence[float]) -> list[float]:
    scale = _f(exp.get("latency_scale", 1.0))
    scale = 1.0 if math.isnan(scale) else scale
    p50 = _f(exp.get("p50_ms"))
    sigma = _f(exp.get("sigma"))
    if math.isnan(sigma):
        sigma = math.log(_f(exp.get("p99_ms")) / p50) / NormalDist().inv_cdf(0.99)
    lo, hi = _f(exp.get("min_ms")), _f(exp.get("max_ms"))
    out = []
    for p in ps:
        v = p50 * math.exp(sigma * NormalDist().inv_cdf(p))
        if not math.isnan(lo):
            v = max(v, lo)
        if not math.isnan(hi):
            v = min(v, hi)
        out.append(v * scale)
    return out


def _measured_points(summary: Mapping[str, Any]) -> tuple[list[tuple[float, float]], float | None, float | None]:
    """(percentile points strictly between 0 and 100 as (fraction, ms), the minimum, the maximum)."""
    pts: list[tuple[float, float]] = []
    lo = hi = None
    for row in summary.get("latency_distribution") or []:
        try:
            p, ms = float(row[0]), float(row[1])
        except (TypeError, ValueError, IndexError):
            continue
        if not (math.isfinite(ms) and ms > 0):
            continue
        if p <= 0:
            lo = ms
        elif p >= 100:
            hi = ms
        else:
            pts.append((p / 100.0, ms))
    lat = summary.get("latency_ms") or {}
    if not pts:   # fall back to the summary's own percentiles
        for key, p in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999)):
            v = _f(lat.get(key))
            if v > 0:
                pts.append((p, v))
    if lo is None and _f(lat.get("min")) > 0:
        lo = _f(lat.get("min"))
    if hi is None and _f(lat.get("max")) > 0:
        hi = _f(lat.get("max"))
    return sorted(pts), lo, hi


def latency_distribution(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Measured latency percentiles against the profile's log-normal, on a scale that shows the tail."""
    return _save(latency_distribution_figure(summary), path)


def latency_distribution_figure(summary: Mapping[str, Any]) -> Figure:
    """The whole measured range: the axis runs from the fastest request to the slowest (both marked), and
    the percentile scale reaches the highest percentile measured, so timeouts at the top stay in view."""
    fig = _figure(10, 6)
    ax = fig.subplots()
    fig.suptitle(_title(summary, "latency distribution"), fontsize=13)
    pts, lo, hi = _measured_points(summary)
    exp = summary.get("expected_latency")
    if exp and not _f(exp.get("p50_ms")) > 0:
        exp = None      # nothing to draw the configured curve from
    if not pts and not exp:
        _empty(ax, "no latencies were recorded (no request completed)")
        return fig
    xs: list[float] = []
    if pts:
        ax.plot([ms for _, ms in pts], [p for p, _ in pts], color="#1f77b4", lw=2.2,
                marker="." if len(pts) < 40 else None,
                label=f"measured ({int(summary.get('requests') or 0):,} requests)", zorder=4)
        xs += [ms for _, ms in pts]
    if exp:
        grid = [0.001 + i * 0.998 / 400 for i in range(401)]
        q = _expected_quantiles(exp, grid)
        scale = _f(exp.get("latency_scale", 1.0))
        note = f", latency-scale {scale:g}" if not math.isnan(scale) and scale != 1 else ""
        ax.plot(q, grid, color="#888888", lw=1.8, ls="--",
                label=f"profile: log-normal P50 {_f(exp.get('p50_ms')):g} ms, P99 {_f(exp.get('p99_ms')):g} ms{note}",
                zorder=3)
        xs += q
    ax.set_yscale("logit")
    top_p = max([p for p, _ in pts] + [0.999])
    bottom_p = min([p for p, _ in pts] + [0.01])
    y_top = 1 - (1 - top_p) / 2.5
    y_bottom = bottom_p / 2
    ticks = [t for t in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999) if y_bottom <= t <= y_top]
    ax.set_yticks(ticks, [f"{t * 100:g}%" for t in ticks])
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.set_ylim(y_bottom, y_top)
    for line in sla_lines(summary):
        if line["stage"]:
            continue
        ax.axvline(line["ms"], color=SLA_COLOR, ls="--" if line["stat"] == "P99" else ":", lw=1.6, label=line["label"])
        xs.append(line["ms"])
        if line["stat"].startswith("P") and line["stat"][1:].replace(".", "").isdigit():
            p = float(line["stat"][1:]) / 100
            if 0 < p < 1:
                seen = any(lb.startswith("SLA point") for lb in ax.get_legend_handles_labels()[1])
                ax.plot([line["ms"]], [p], marker="x", color=SLA_COLOR, ms=10, mew=2, ls="none", zorder=5,
                        label=None if seen else "SLA point: the curve must pass left of it")
    # The extremes sit at 0 % and 100 %, off a logit scale: marked on its bottom and top edges instead.
    for value, y, words, marker, gid in ((lo, y_bottom, "fastest", "v", "min"), (hi, y_top, "slowest", "^", "max")):
        if value is None:
            continue
        ax.plot([value], [y], marker=marker, color="#1f77b4", ms=9, ls="none", zorder=6, clip_on=False, gid=gid)
        ax.annotate(f"{words}: {_ms_text(value)}", (value, y), textcoords="offset points",
                    xytext=(-8, -12) if gid == "max" else (8, 4), ha="right" if gid == "max" else "left",
                    fontsize=9, color="#1f4e79")
        xs.append(value)
    xs = [v for v in xs if v > 0 and not math.isnan(v)]
    if xs:
        left, right = min(xs), max(xs)
        if right / left > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
            ax.set_xlim(left / 1.25, right * 1.25)
        else:
            pad = 0.05 * (right - left or right)
            ax.set_xlim(max(0.0, left - pad), right + pad)
    x_unit = _latency_axis(ax.xaxis, ax.get_xlim()[1])
    ax.set_xlabel(f"latency ({x_unit}{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_ylabel("share of requests at or below (percentile)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    return fig


def _ms_text(ms: float) -> str:
    return f"{ms / 1000:,.2f} s" if ms >= 10_000 else f"{ms:,.0f} ms" if ms >= 100 else f"{ms:,.1f} ms"


def code_group(code: str) -> str:
    c = str(code).strip().lower()
    if c.isdigit():
        n = int(c)
        if 200 <= n < 300:
            return "2xx"
        if n == 429:
            return "429"
        if 500 <= n < 600:
            return "5xx"
        return "other"
    return "timeout" if "timeout" in c else "other"


def _binned_codes(timeline: Sequence[Mapping[str, Any]],
                  max_bins: int) -> tuple[list[float], float, dict[str, list[float]]]:
    ts = [_f(r.get("t_s")) for r in timeline]
    t0 = min(ts)
    span = max(ts) - t0 + 1
    width = max(1.0, math.ceil(span / max_bins))
    n = int(math.ceil(span / width))
    groups = {g: [0.0] * n for g, _ in CODE_GROUPS}
    for t, r in zip(ts, timeline):
        i = min(n - 1, int((t - t0) // width))
        for code, count in (r.get("codes") or {}).items():
            groups[code_group(code)][i] += _f(count) or 0.0
        groups["dropped"][i] += _f(r.get("dropped")) or 0.0
    lefts = [t0 + i * width for i in range(n)]
    return lefts, width, {g: [v / width for v in vals] for g, vals in groups.items()}


def status_codes_over_time(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Responses per second by outcome, stacked; below, everything but 2xx, on its own scale."""
    return _save(status_codes_figure(summary), path)


def status_codes_figure(summary: Mapping[str, Any]) -> Figure:
    timeline = [r for r in (summary.get("timeline") or []) if not math.isnan(_f(r.get("t_s")))]
    fig = _figure(12, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    fig.suptitle(_title(summary, "responses by status"), fontsize=13)
    if not timeline:
        _empty(top, "no per-second timeline was recorded")
        _empty(bottom, "")
        return fig
    lefts, width, groups = _binned_codes(timeline, 240)
    windows = stage_windows(summary)
    marks = run_marks(summary)
    k, unit = _time_scale(max([lefts[-1] + width] + [w[2] for w in windows] + [m["t_s"] for m in marks]))
    x = [v / k for v in lefts]
    _shade_stages(top, windows, k, label=True)
    _shade_stages(bottom, windows, k, label=False)
    _draw_marks(top, marks, k, text=True)
    _draw_marks(bottom, marks, k, text=False)
    colors = dict(CODE_GROUPS)
    for ax, names in ((top, [g for g, _ in CODE_GROUPS]), (bottom, [g for g, _ in CODE_GROUPS if g != "2xx"])):
        base = [0.0] * len(x)
        for g in names:
            vals = groups[g]
            if not any(vals):
                continue
            ax.bar(x, vals, width=width / k, bottom=base, align="edge", color=colors[g], lw=0,
                   label=f"{g}" + (" (no free user)" if g == "dropped" else ""))
            base = [a + b for a, b in zip(base, vals)]
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylim(bottom=0)
    top.set_ylabel("responses per second")
    bins = "" if width == 1 else f", averaged over {width:g} s"
    bottom.set_ylabel("non-2xx per second")
    if top.get_legend_handles_labels()[0]:
        top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, framealpha=0.9)
    if any(g != "2xx" and any(v) for g, v in groups.items()):
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, framealpha=0.9)
        bottom.set_title("failures only, on their own scale", fontsize=10, loc="left")
    else:
        bottom.text(0.5, 0.5, "no 429, 5xx, timeouts or other failures", ha="center", va="center",
                    transform=bottom.transAxes, color="#2e9e44", fontsize=12)
    bottom.set_xlabel(f"time since start ({unit}{bins})")
    return fig


def relay_vs_direct(compare_cells: Iterable[Mapping[str, Any]], path: str | Path,
                    sla_ms: float | None = None, sla_label: str = "") -> Path:
    """Measured bars against published markers, grouped by workload, one panel per unit; the SLA's
    latency limit (sla_ms) as a line across the milliseconds panel."""
    cells = [c for c in compare_cells if c.get("published") is not None or c.get("measured") is not None]
    units = list(dict.fromkeys(str(c.get("unit", "")) for c in cells)) or [""]
    targets = list(dict.fromkeys(str(c["target"]) for c in cells))
    palette = ("#1f77b4", "#ff7f0e", "#2e9e44", "#7b3fa0", "#8c564b", "#17becf")
    tcolor = {t: palette[i % len(palette)] for i, t in enumerate(targets)}
    widths = [max(1, len({_row_key(c) for c in cells if str(c.get("unit", "")) == u})) + 0.6 for u in units]
    fig = _figure(12, 6.5)
    axes = fig.subplots(1, len(units), squeeze=False, width_ratios=widths)[0]
    fig.suptitle("Relay vs direct providers: measured (bars) against the published figures (◆)", fontsize=13)
    if not cells:
        _empty(axes[0], "no comparison cells")
        return _save(fig, path)
    bar_w = 0.8 / max(1, len(targets))
    handles: dict[str, Any] = {}
    for ax, unit in zip(axes, units):
        mine = [c for c in cells if str(c.get("unit", "")) == unit]
        rows = list(dict.fromkeys(_row_key(c) for c in mine))
        by = {(_row_key(c), str(c["target"])): c for c in mine}
        values = [v for c in mine for v in (_f(c.get("measured")), _f(c.get("published"))) if v > 0]
        floor = min(values) / 2 if values else 1.0
        for i, row in enumerate(rows):
            for j, t in enumerate(targets):
                c = by.get((row, t))
                if c is None:
                    continue
                x = i - 0.4 + bar_w * (j + 0.5)
                m, p = _f(c.get("measured")), _f(c.get("published"))
                if m > 0:
                    handles[t] = ax.bar(x, m, width=bar_w * 0.92, color=tcolor[t], bottom=0)
                else:
                    ax.text(x, floor * 1.15, "not\nmeasured", ha="center", va="bottom", fontsize=7, color="#666666")
                if p > 0:
                    handles["published"] = ax.plot([x], [p], marker="D", color="black", ms=6, ls="none")[0]
                if m > 0 and p > 0:
                    ax.text(x, max(m, p) * 1.12, f"{100 * (m - p) / p:+.0f}%", ha="center", va="bottom",
                            fontsize=7, color="#333333")
        ax.set_xticks(range(len(rows)), [r.replace(", ", ",\n", 1) for r in rows], fontsize=9)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        if values:
            ax.set_yscale("log")
            ax.set_ylim(floor, max(values) * 3)
        if unit == "ms" and sla_ms:
            handles["sla"] = ax.axhline(sla_ms, color=SLA_COLOR, ls="--", lw=1.6, zorder=5, gid="sla")
            if values:
                ax.set_ylim(min(floor, sla_ms / 2), max(max(values) * 3, sla_ms * 2))
        if unit == "ms":
            shown = _latency_axis(ax.yaxis, ax.get_ylim()[1])
            ax.set_ylabel(f"latency ({shown}, log scale)")
        else:
            ax.set_ylabel(f"{unit}, log scale" if unit else "log scale")
        ax.grid(True, axis="y", which="major", alpha=0.3)
    order = [t for t in targets if t in handles] + [k for k in ("published", "sla") if k in handles]
    names = {"published": "published (seed)", "sla": sla_label or f"SLA: {sla_ms or 0:g} ms"}
    fig.legend([handles[k] for k in order], [names.get(k, k) for k in order],
               loc="outside lower center", ncols=len(order), fontsize=10)
    return _save(fig, path)


def _row_key(c: Mapping[str, Any]) -> str:
    return str(c.get("label") or f"{c.get('workload', '')} {c.get('metric', '')}".strip())


# --- capacity ----------------------------------------------------------------------------------------

OUTCOME_COLORS = {"holds": "#2e9e44", "breaks": "#d62728", "generator": "#6a3d9a", "machine": "#6a3d9a",
                  "inconclusive": "#f0a500", "invalid": "#8c8c8c"}


def capacity_knee(doc: Mapping[str, Any], path: str | Path) -> Path:
    """The knee: each step's P50/P99 and its success and goodput against the offered rate, the SLA's lines,
    and the bracket (holds at / breaks at) shaded; markers coloured by what each step came to."""
    steps = sorted(doc.get("steps") or [], key=lambda s: _f(s.get("rate_rps")))
    fig = _figure(10, 7)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    fig.suptitle(f"{doc.get('scenario', 'scenario')} on {doc.get('target', '?')}: capacity", fontsize=13)
    if not steps:
        _empty(top, "no step ran")
        _empty(bottom, "")
        return _save(fig, path)
    x = [_f(s.get("rate_rps")) for s in steps]
    colors = [OUTCOME_COLORS.get(str(s.get("outcome")), "#8c8c8c") for s in steps]
    plotted: list[float] = []
    for key, name, style in (("p50_ms", "P50", "-"), ("p99_ms", "P99", "--")):
        y = [_f(s.get(key)) for s in steps]
        plotted += [v for v in y if not math.isnan(v)]
        top.plot(x, y, ls=style, color=PCT_COLORS[name.lower()], lw=1.5, label=name, zorder=3)
        top.scatter(x, y, c=colors, s=36, zorder=4, edgecolors="white", linewidths=0.6)
    for line in doc.get("sla") or []:
        if line.get("metric") == "latency":
            top.axhline(_f(line.get("limit")), color=SLA_COLOR, ls=":", lw=1.6, label=f"SLA: {line.get('label')}")
            plotted.append(_f(line.get("limit")))
    positive = [v for v in plotted if v > 0]
    if positive and max(positive) / min(positive) > 30:
        top.set_yscale("log")
    unit = _latency_axis(top.yaxis, max(positive, default=0.0))
    top.set_ylabel(f"latency in the step ({unit})")
    top.grid(True, alpha=0.3)

    for key, name, color in (("success_rate", "success", "#1f77b4"), ("goodput_rate", "goodput", "#2e9e44")):
        y = [_f(s.get(key)) * 100 for s in steps]
        if any(not math.isnan(v) for v in y):
            bottom.plot(x, y, color=color, lw=1.5, marker="o", ms=4, label=f"{name} %")
    for line in doc.get("sla") or []:
        if line.get("aggregation") == "rate" and line.get("metric") in ("success", "goodput"):
            bottom.axhline(_f(line.get("limit")) * 100, color=SLA_COLOR, ls=":", lw=1.4,
                           label=f"SLA: {line.get('label')}")
    bottom.set_ylabel("share of starts (%)")
    bottom.set_xlabel("offered rate (requests/s)")
    bottom.grid(True, alpha=0.3)

    holds, breaks = _f(doc.get("holds_rps")), _f(doc.get("breaks_rps"))
    for ax in (top, bottom):
        if not math.isnan(holds) and not math.isnan(breaks):
            ax.axvspan(holds, breaks, color="#f0a500", alpha=0.15, lw=0, zorder=0)
        if not math.isnan(holds):
            ax.axvline(holds, color="#2e9e44", lw=1.2)
        if not math.isnan(breaks):
            ax.axvline(breaks, color="#d62728", lw=1.2)
    if not math.isnan(holds):
        top.text(holds, 1.0, f" holds {holds:,.4g} req/s", transform=top.get_xaxis_transform(), ha="right",
                 va="bottom", fontsize=9, color="#2e9e44")
    if not math.isnan(breaks):
        bound = str(doc.get("bound", ""))
        top.text(breaks, 1.0, f" breaks {breaks:,.4g} req/s ({bound})", transform=top.get_xaxis_transform(),
                 ha="left", va="bottom", fontsize=9, color="#d62728")
    handles, labels = top.get_legend_handles_labels()
    from matplotlib.lines import Line2D
    seen = sorted({str(s.get("outcome")) for s in steps})
    handles += [Line2D([], [], ls="", marker="o", color=OUTCOME_COLORS.get(o, "#8c8c8c")) for o in seen]
    labels += [f"step {o}" for o in seen]
    top.legend(handles, labels, loc="upper left", fontsize=8, ncols=2, framealpha=0.9)
    bottom.legend(loc="lower left", fontsize=8, framealpha=0.9)
    return _save(fig, path)
