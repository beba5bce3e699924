"""report.html: one self-contained page a person can read without knowing the numbers by heart.

The verdict comes first, in colour and in words; then what decided it (the thresholds, with
their limits and headroom), the key numbers, the figures with a caption saying how to read
each, the stages, the scenario's actions, status codes, cost, and links to the run's other
files. Images are embedded as data URIs so the page survives being mailed or attached to a CI
run, and written beside it as PNGs.

Extending it: a threshold column is one entry in THRESHOLD_COLUMNS, a section one entry in
SECTIONS (a title and a function from the summary's JSON form to HTML, or None to leave it out).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..cost import run_cost
from ..summary import GatewayDoc, ProviderSideDoc, Summary
from ..thresholds import format_value
from . import display, gatewayview, plots, sides

VERDICTS = {
    "pass": ("PASS", "#1e7e34", "The run held every threshold: at this load the pipeline meets the SLA."),
    "fail": ("FAIL", "#b02a37", "The SLA was not met: at least one threshold broke (see why below)."),
    "invalid": ("INVALID", "#a15c00", "This run proves nothing either way: it could not measure what the "
                                      "thresholds ask for (see why below). Fix that and run it again."),
}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:0 18px 40px;color:#1d1d1d;line-height:1.45}
h1{font-size:1.5em;margin:18px 0 4px}h2{margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.banner{color:#fff;border-radius:8px;padding:16px 20px;margin:14px 0}
.banner .word{font-size:2.1em;font-weight:700;letter-spacing:.04em;margin-right:14px}
.banner .what{font-size:1.1em}.banner ul{margin:8px 0 0 0}
.meta{color:#555}table{border-collapse:collapse;margin:8px 0;font-size:.95em}
th,td{border:1px solid #d5d5d5;padding:5px 9px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{font-weight:700;white-space:nowrap}.none{color:#777}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}
.card .v{font-size:1.35em;font-weight:600}.card .k{color:#555;font-size:.85em}
figure{margin:18px 0}figure img{max-width:100%;border:1px solid #e3e3e3}
figcaption{color:#333;font-size:.93em;max-width:950px}.small{font-size:.85em;color:#555}
.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:6px;vertical-align:-1px}
.note{border-left:4px solid #a15c00;background:#fff8ec;padding:8px 12px;margin:10px 0}
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_ms(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "—"
    return f"{v / 1000:,.2f} s" if v >= 10_000 else f"{v:,.0f} ms" if v >= 100 else f"{v:,.1f} ms"


def fmt_pct(x: Any, digits: int = 3) -> str:
    v = _num(x)
    return "—" if v is None else f"{100 * v:.{digits}f} %"


def fmt_int(x: Any) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:,.0f}"


def fmt_ms_in(x: Any, k: float, unit: str) -> str:
    """A latency in a unit chosen for its group (display.ms_unit), so figures side by side compare at a glance."""
    v = _num(x)
    if v is None:
        return "—"
    if unit == "s":
        return f"{v / k:,.2f} s"
    return f"{v:,.0f} ms" if v >= 100 else f"{v:,.1f} ms"


def fmt_observed(t: Mapping[str, Any]) -> str:
    """As the gate words it (thresholds.format_value), so the value, its headroom and its detail agree."""
    v = _num(t.get("observed"))
    if v is None:
        return "no data"
    return format_value(str(t.get("metric") or ""), str(t.get("aggregation") or ""), v)


def fmt_limit(t: Mapping[str, Any]) -> str:
    limit = _num(t.get("limit"))
    if limit is None:
        return str(t.get("expression") or "—")
    return display.limit_text(str(t.get("metric") or ""), str(t.get("aggregation") or ""), str(t.get("op") or ""),
                              limit)


def verdict_cell(verdict: str) -> str:
    word, colour = display.VERDICTS.get(verdict, (verdict.upper() or "—", "#555555"))
    return f'<span class="verdict" data-verdict="{esc(verdict)}" style="color:{colour}">{esc(word)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """Cells are HTML already (callers escape what they put in)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(png: Path, alt: str, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f'<figcaption>{caption} <a href="{quote(png.name)}" class="small">({esc(png.name)})</a>'
            f"</figcaption></figure>")


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"   # a page opened from a folder or a web UI asks for no icon
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def href(value: str, outdir: Path) -> str:
    p = Path(value)
    if p.is_absolute():
        try:
            return quote(p.resolve().relative_to(outdir.resolve()).as_posix())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix())


def files_list(files: Mapping[str, Any], outdir: Path) -> str:
    if not files:
        return "<p class=\"none\">No other files were listed for this run.</p>"
    items = []
    for key, value in files.items():
        if not value:
            continue
        items.append(f'<li>{esc(key.replace("_", " "))}: <a href="{esc(href(str(value), outdir))}">'
                     f"{esc(Path(str(value)).name)}</a></li>")
    return "<ul>" + "".join(items) + "</ul>"


# --- the run report -------------------------------------------------------------------


def _banner(summary: Mapping[str, Any]) -> str:
    verdict = str(summary.get("verdict") or ("pass" if summary.get("passed") else "fail")).lower()
    word, colour, what = VERDICTS.get(verdict, (verdict.upper(), "#555555", "Unknown verdict."))
    reasons = [str(r.get("text", "")) for r in summary.get("reasons") or []]
    lat = summary.get("latency_ms") or {}
    k, unit = display.ms_unit([lat.get("p99"), lat.get("p50")])
    line = (f"P99 {fmt_ms_in(lat.get('p99'), k, unit)}, P50 {fmt_ms_in(lat.get('p50'), k, unit)}, "
            f"success {fmt_pct(summary.get('success_rate'))}, "
            f"{fmt_int(summary.get('requests'))} requests at up to {fmt_int(summary.get('peak_users'))} users")
    items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
    return (f'<div class="banner" style="background:{colour}" id="verdict" data-verdict="{esc(verdict)}">'
            f'<span class="word">{esc(word)}</span><span class="what">{esc(what)}</span>'
            f'<div>{esc(line)}. Exit code {esc(summary.get("exit_code", "—"))}.</div>'
            + (f"<ul>{items}</ul>" if items else "") + "</div>")


def _scope(t: Mapping[str, Any]) -> str:
    filters = t.get("filters") or {}
    return ", ".join(f"stage {v}" if k == "stage" else f"{k} {v}" for k, v in filters.items()) or "whole run"


def _headroom(t: Mapping[str, Any]) -> str:
    m = t.get("margin") or {}
    if t.get("observed") is None:
        return "—"
    if t.get("verdict") == "insufficient" and t.get("needed_samples"):
        return f"{fmt_int(t.get('samples'))} of the {fmt_int(t.get('needed_samples'))} samples needed"
    return str(m.get("words") or "—")


# (header, cell as HTML, numeric): a column more (an interval, say) is one entry here.
ThresholdColumn = tuple[str, Callable[[Mapping[str, Any]], str], bool]
THRESHOLD_COLUMNS: list[ThresholdColumn] = [
    ("threshold", lambda t: esc(display.threshold_name(t)) + f'<br><code class="small">{esc(t.get("key"))}: '
                            f'{esc(t.get("expression"))}</code>', False),
    ("scope", lambda t: esc(_scope(t)), False),
    ("observed", lambda t: esc(fmt_observed(t)), True),
    ("limit", lambda t: esc(fmt_limit(t)), True),
    ("headroom", lambda t: esc(_headroom(t)), False),
    ("samples", lambda t: esc(fmt_int(t.get("samples"))), True),
    ("verdict", lambda t: verdict_cell(str(t.get("verdict") or "")), False),
    ("detail", lambda t: esc(t.get("detail") or "") + (" <span class=\"small\">(stops the run when broken)</span>"
                                                        if t.get("abort_on_fail") else ""), False),
]


# With the provider side read, after "observed": each latency threshold's figure as the providers saw it.
PROVIDER_COLUMN: ThresholdColumn = (
    "provider side", lambda t: esc(sides.threshold_words(t.get("provider_side")) or "—"), False)


def _thresholds(summary: Mapping[str, Any]) -> str:
    found = summary.get("thresholds") or []
    columns = list(THRESHOLD_COLUMNS)
    if any(t.get("provider_side") for t in found):
        at = next((i + 1 for i, (h, _, _) in enumerate(columns) if h == "observed"), len(columns))
        columns.insert(at, PROVIDER_COLUMN)
    rows = [[cell(t) for _, cell, _ in columns] for t in found]
    if not rows:
        return "<p class=\"none\">This scenario declares no thresholds.</p>"
    return table([h for h, _, _ in columns], rows, numeric=[i for i, (_, _, num) in enumerate(columns) if num])


def _cards(summary: Mapping[str, Any]) -> str:
    lat = summary.get("latency_ms") or {}
    cost = summary.get("cost") or {}
    usd = _num(cost.get("usd"))
    points = ("p50", "p95", "p99", "p99.9", "max")
    k, unit = display.ms_unit([lat.get(p) for p in points])
    cards = [("requests", fmt_int(summary.get("requests"))), ("success rate", fmt_pct(summary.get("success_rate"))),
             ("failures", fmt_int(summary.get("failures"))),
             ("dropped (no free user)", fmt_int(summary.get("dropped"))),
             *((p.upper() if p != "max" else p, fmt_ms_in(lat.get(p), k, unit)) for p in points),
             ("throughput", f"{_num(summary.get('rps')) or 0:,.0f} req/s"),
             ("peak users", fmt_int(summary.get("peak_users"))),
             ("retries / failovers", f"{fmt_int(summary.get('retries'))} / {fmt_int(summary.get('failovers'))}"),
             ("cost, had it been real", "—" if usd is None else f"${usd:,.2f}")]
    return '<div class="cards">' + "".join(f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}'
                                           "</div></div>" for k, v in cards) + "</div>"


def _first_image(summary: Mapping[str, Any]) -> str:
    """Time to first image, for streamed generations: overall and per stage (nothing when none streamed)."""
    first = summary.get("first_image")
    if not first:
        return ""
    keys = ("p50", "p90", "p95", "p99", "max", "mean")
    rows = [["whole run", esc(fmt_int(first.get("samples")))] + [esc(fmt_ms((first.get("ms") or {}).get(k)))
                                                                 for k in keys]]
    for s in summary.get("stages") or []:
        f = s.get("first_image")
        if f:
            rows.append([esc(s.get("name")), esc(fmt_int(f.get("samples")))]
                        + [esc(fmt_ms((f.get("ms") or {}).get(k))) for k in keys])
    return ('<h3 id="first-image">Time to first image</h3><p class="small">From a streamed generation\'s start '
            "to its first image (a partial image, or the whole one when none was asked for): what a shopper "
            "waiting on a preview sees, as time to first token is for text.</p>"
            + table(["", "streams", *[k.upper() if k.startswith("p") else k for k in keys]], rows,
                    numeric=tuple(range(1, len(keys) + 2))))


def _stages(summary: Mapping[str, Any]) -> str:
    rows = []
    for s in summary.get("stages") or []:
        lat = s.get("latency_ms") or {}
        n, f = _num(s.get("requests")), _num(s.get("failures"))
        rps = _num(s.get("rps"))
        rows.append([esc(s.get("name")), esc(display.window(s.get("start_s"), s.get("end_s"))),
                     esc(fmt_int(n)), esc(fmt_int(f)), esc(fmt_pct(1 - f / n) if n and f is not None else "—"),
                     esc("—" if rps is None else f"{rps:,.1f}"), esc(fmt_ms(lat.get("p50"))),
                     esc(fmt_ms(lat.get("p99")))])
    if not rows:
        return "<p class=\"none\">No stages were recorded.</p>"
    return table(["stage", "time", "requests", "failures", "success", "req/s", "P50", "P99"], rows,
                 numeric=(2, 3, 4, 5, 6, 7))


def _sides(side: ProviderSideDoc) -> str:
    caption = f'<p class="small">{esc(sides.caption(side))}.</p>'
    if not side.side_by_side:
        return caption
    headers = [h if not i else f"{h} (ms)" for i, h in enumerate(sides.HEADER)]
    return caption + table(headers, [[esc(c) for c in r] for r in sides.rows(side)], numeric=(1, 2, 3, 4, 5, 6))


def _gateway(g: GatewayDoc, outdir: Path, summary: Mapping[str, Any]) -> str:
    png = plots.gateway_over_time(summary, outdir / "gateway_over_time.png")
    out = table(["figure", "value"], [[esc(k), esc(v)] for k, v in gatewayview.figure_rows(g)])
    if g.stages:
        out += ('<p class="small">Per stage: the requests the client sent in the stage against the upstream calls that '
                "arrived while it ran.</p>"
                + table(list(gatewayview.STAGE_HEADER), [[esc(c) for c in r] for r in gatewayview.stage_rows(g)],
                        numeric=(1, 2, 3, 4, 6, 7, 8, 9)))
    return out + figure(png, "client against provider latency per second, and upstream calls per request",
                        CAPTIONS["gateway"])


def _actions(summary: Mapping[str, Any]) -> str | None:
    actions = summary.get("actions") or []
    if not actions:
        return None
    rows = []
    for a in actions:
        settings = ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                             for k, v in (a.get("settings") or {}).items())
        ok = a.get("ok", True)
        word, colour = ("done", display.VERDICTS["pass"][1]) if ok else ("failed", display.VERDICTS["fail"][1])
        rows.append([esc(display.seconds(a.get("at_s"))), esc(display.seconds(a.get("planned_at_s"))),
                     esc(a.get("provider")), esc(settings),
                     f'<span class="verdict" style="color:{colour}">{word}</span> {esc(a.get("outcome") or "")}'])
    return (table(["at", "planned at", "provider", "settings", "outcome"], rows, numeric=(0, 1))
            + '<p class="small">Admin-API calls the scenario made to the simulated providers; the time plots '
              "mark each one.</p>")


def _status_codes(summary: Mapping[str, Any]) -> str:
    codes = {str(k): _num(v) or 0 for k, v in (summary.get("status_codes") or {}).items()}
    total = sum(codes.values())
    if not total:
        return "<p class=\"none\">No responses were recorded.</p>"
    colours = dict(plots.CODE_GROUPS)
    rows = []
    for code, n in sorted(codes.items(), key=lambda kv: -kv[1]):
        group = plots.code_group(code)
        rows.append([f'<span class="dot" style="background:{colours[group]}"></span>{esc(code)}', esc(group),
                     esc(fmt_int(n)), esc(fmt_pct(n / total, 3))])
    return table(["status", "group", "responses", "share"], rows, numeric=(2, 3))


def _cost(summary: Mapping[str, Any]) -> str:
    try:
        rc = run_cost(summary)
    except Exception as exc:   # the bill is a side note; a malformed cost block must not lose the report
        return f"<p class=\"none\">Cost could not be worked out: {esc(exc)}</p>"
    rows = [["billed", f"${rc['billed_usd']:,.2f}"], ["images delivered", fmt_int(rc["images"])],
            ["per image", "—" if rc["per_image_usd"] is None else f"${rc['per_image_usd']:.4f}"],
            ["requests / succeeded", f"{fmt_int(rc['requests'])} / {fmt_int(rc['succeeded'])}"],
            ["HTTP attempts", fmt_int(rc["attempts"])],
            ["attempts refused, so not billed", fmt_int(rc["unbilled_attempts"])],
            ["retries", fmt_int(rc["retries"])], ["failovers", fmt_int(rc["failovers"])]]
    if rc["at_requested_price_usd"] is not None:
        rows.append([f"had every image come from {rc['requested_model']}", f"${rc['at_requested_price_usd']:,.2f}"])
    if rc["abandoned_timeouts"]:
        rows.append(["timed out, possibly billed anyway (at most)",
                     f"{rc['abandoned_timeouts']:,} (${rc['abandoned_usd_upper'] or 0:,.2f})"])
    for vol, usd in rc["monthly_at_run_price_usd"].items():
        rows.append([f"{int(vol):,} images a month at this price", f"${usd:,.0f}"])
    return (table(["item", "amount"], [[esc(a), esc(b)] for a, b in rows], numeric=(1,))
            + f'<p class="small">{esc(rc["rule"])}</p>')


CAPTIONS = {
    "latency": ("Latency over time. Each line is one second's percentile (P50, P95, P99). The red dashed line is "
                "the P99 limit and the dotted one the P50 limit: a percentile above its line is what breaks the SLA. "
                "The lower panel shows the load that caused it: requests per second (green), failures per second "
                "(red) and users (grey, right axis). Shaded bands are the scenario's stages; blue dash-dotted lines "
                "are its admin actions, a solid red line an abort, a solid grey one a stop before the planned end."),
    "distribution": ("Latency distribution. The blue curve says what share of requests finished within a given "
                     "time; the vertical scale stretches the tail so 99 % and 99.9 % are as visible as the median. "
                     "The axis runs from the fastest request to the slowest, both marked with a triangle. "
                     "To meet the SLA the curve must pass left of each red ✕. The grey dashed curve is what the "
                     "simulated provider was configured to produce: the gap between the two is time spent queueing, "
                     "retrying or in the client."),
    "codes": ("Responses by status, per second. Green is success; 429 is rate limiting, 5xx server errors, "
              "timeouts requests the client gave up on, dropped requests the load generator had no free user "
              "for. The lower panel repeats everything but success on its own scale, so a handful of failures "
              "among a thousand successes is still visible. Actions, an abort or a stop are marked as above."),
    "gateway": ("Both ends of the gateway, per second. Solid lines are what the shop's client waited (P50, P99), "
                "dashed ones what the simulated providers behind the gateway took for their successful answers: "
                "the gap between a solid line and its dashed one is what the gateway added. The lower panel is "
                "the upstream calls each client request cost that second (above the dotted line at 1: retries or "
                "fallbacks). Stages are shaded; blue dash-dotted lines are the scenario's actions on the providers."),
}

# (title, the section's HTML from the summary's JSON form and the report folder, or None to leave it out).
# A section more (the provider's side of a run, say) is one entry here; it goes before the files.
Section = tuple[str, Callable[[Mapping[str, Any], Path], str | None]]
SECTIONS: list[Section] = []


def write_html(run: Summary, outdir: Path) -> Path:
    """Write the run's PNGs and a self-contained report.html into outdir; return the HTML's path."""
    summary = run.json_dict()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    pngs = {"latency": plots.latency_over_time(summary, outdir / "latency_over_time.png"),
            "distribution": plots.latency_distribution(summary, outdir / "latency_distribution.png"),
            "codes": plots.status_codes_over_time(summary, outdir / "status_codes.png")}
    target = summary.get("target") or {}
    model = target.get("model")
    who = esc(target.get("name") or "?") + (f" ({esc(model)})" if model and model != target.get("name") else "")
    planned = _num((summary.get("run") or {}).get("planned_s"))
    ran = display.duration(summary.get("duration_s"))
    body = [
        f"<h1>{esc(run.scenario.name)} on {who}</h1>",
        f'<p class="meta">{esc(run.scenario.description)}<br>Started {esc(display.when(summary.get("started_at")))}, '
        f"ran {esc(ran)}" + (f" of a planned {esc(display.duration(planned))}" if planned else "")
        + f" against {esc(target.get('base_url', '—'))} ({esc(target.get('api', '—'))} API).</p>",
        _banner(summary),
        "<h2>Thresholds</h2>", _thresholds(summary),
        "<h2>Key numbers</h2>", _cards(summary), _first_image(summary),
        "<h2>Figures</h2>",
        figure(pngs["latency"], "latency percentiles per second against the SLA, with load below", CAPTIONS["latency"]),
        figure(pngs["distribution"], "measured latency distribution against the configured one",
               CAPTIONS["distribution"]),
        figure(pngs["codes"], "responses per second by status", CAPTIONS["codes"]),
        "<h2>Stages</h2>", _stages(summary),
    ]
    if run.provider_side is not None:
        body += ["<h2>Both ends: client and provider side</h2>", _sides(run.provider_side)]
    if run.gateway is not None:
        body += ["<h2>Gateway: both ends</h2>", _gateway(run.gateway, outdir, summary)]
    sections: list[Section] = [("Actions", lambda s, _: _actions(s)),
                               ("Status codes", lambda s, _: _status_codes(s)), ("Cost", lambda s, _: _cost(s)),
                               *SECTIONS]
    for title, render in sections:
        content = render(summary, outdir)
        if content is not None:
            body += [f"<h2>{esc(title)}</h2>", content]
    body += ["<h2>Files</h2>", files_list(summary.get("files") or {}, outdir)]
    out = outdir / "report.html"
    out.write_text(page(f"{run.verdict.upper()} · {run.scenario.name}", "\n".join(body)),
                   encoding="utf-8")
    return out


# --- the comparison report ------------------------------------------------------------


def _rate(v: Any, unit: str) -> str:
    x = _num(v)
    return "—" if x is None else f"{x:,.0f} {unit}" if x >= 100 else f"{x:,.1f} {unit}"


def _dev_cell(c: Mapping[str, Any] | None, outdir: Path) -> str:
    """measured vs published, both in one unit, and the deviation."""
    if c is None:
        return '<span class="none">—</span>'
    unit = str(c.get("unit") or "")
    ms = display.ms_unit([c.get("measured"), c.get("published")])
    fmt: Callable[[Any], str] = (lambda v: fmt_ms_in(v, *ms)) if unit == "ms" else (lambda v: _rate(v, unit))
    m, p = _num(c.get("measured")), _num(c.get("published"))
    dev = _num(c.get("deviation_pct"))
    if dev is None and m is not None and p:
        dev = 100 * (m - p) / p
    colour = "#777" if dev is None else "#1e7e34" if abs(dev) <= 10 else "#a15c00" if abs(dev) <= 50 else "#b02a37"
    run = c.get("run")
    link = ""
    if run and (outdir / str(run) / "report.html").exists():
        link = f' <a class="small" href="{esc(quote(str(run)))}/report.html">run</a>'
    dev_txt = "not measured" if m is None else f"{dev:+.0f} %"
    mock = _num(c.get("provider_side"))
    mock_txt = "" if mock is None else f'<br><span class="small">the mock recorded {esc(fmt(mock))}</span>'
    return (f"{esc(fmt(m) if m is not None else '—')} <span class=\"small\">vs {esc(fmt(p))}</span><br>"
            f'<span style="color:{colour};font-weight:600">{esc(dev_txt)}</span>{link}{mock_txt}')


def _projection(cost: Mapping[str, Any]) -> str:
    targets = list(cost.get("targets") or [])
    if not targets:
        return ""
    rows = [[esc(f"{r['volume']:,}")] + [esc(f"${r['cost_usd'][t]:,.0f}") for t in targets]
            + [esc("—" if r.get("direct_average_usd") is None else f"${r['direct_average_usd']:,.0f}")]
            for r in cost.get("rows") or []]
    out = ("<h3>Monthly cost at the per-model prices</h3>"
           + table(["images / month", *targets, "direct average"], rows, numeric=tuple(range(len(targets) + 2))))
    basis = cost.get("price_basis") or {}
    prices = cost.get("price_per_image_usd") or {}
    first = (cost.get("rows") or [{}])[0].get("savings_vs_average") or {}
    out += ("<p>Savings against the direct average: " + "; ".join(
        f"{esc(t)} {first[t]:.0%}" for t in targets if first.get(t) is not None) + ".</p>")
    out += '<p class="small">' + "; ".join(f"{esc(t)} ${prices.get(t, 0):.3f} ({esc(basis.get(t, ''))})"
                                          for t in targets) + "</p>"
    pub = cost.get("published") or {}
    if pub.get("rows"):
        cols = pub["columns"]
        rows = [[esc(f"{r['volume']:,}")] + [esc(f"${r['cost_usd'][c]:,.0f}") for c in cols]
                + [esc(f"{r['savings_vs_average']:.0%}")] for r in pub["rows"]]
        out += ("<h3>As published</h3>"
                + table(["images / month", *cols, "savings vs average"], rows, numeric=tuple(range(len(cols) + 2))))
    return out


def _sla(compare: Mapping[str, Any], cells: Sequence[Mapping[str, Any]]) -> str:
    """The SLA the suite gates on, and which targets' single-image P99 meets its latency limit at all."""
    sla = compare.get("sla") or {}
    limit = _num(sla.get("latency_ms"))
    if not sla:
        return '<p class="none">No SLA was given for this comparison.</p>'
    out = (f"<p>The SLA the suite gates on (scenario <code>{esc(sla.get('scenario', ''))}</code>): "
           + "; ".join(esc(t) for t in sla.get("thresholds") or []) + ".</p>")
    p99 = [c for c in cells if c.get("metric") == "single_p99"]
    if limit and p99:
        items = []
        for c in p99:
            m = _num(c.get("measured"))
            if m is None:
                items.append(f"<li>{esc(c['target'])}: not measured</li>")
                continue
            ok = m < limit
            k, unit = display.ms_unit([m, abs(m - limit)])
            words = (f"{fmt_ms_in(limit - m, k, unit)} to spare" if ok else f"over by {fmt_ms_in(m - limit, k, unit)}")
            items.append(f"<li>{esc(c['target'])}: {esc(fmt_ms_in(m, k, unit))} — "
                         f"{verdict_cell('pass' if ok else 'fail')} ({esc(words)})</li>")
        out += (f"<p>A single image's P99, with nothing queued, against the {esc(fmt_ms(limit))} limit "
                "(a target that misses it idle cannot meet it under load):</p><ul>" + "".join(items) + "</ul>")
    return out


def _notes(notes: Sequence[Mapping[str, Any]], none: str) -> str:
    if not notes:
        return f'<p class="none">{esc(none)}</p>'
    return "".join(f"<h3>{esc(n.get('title', ''))}</h3><p>{esc(n.get('explanation', ''))}</p>" for n in notes)


def _batch_readings(readings: Mapping[str, Any]) -> str:
    """The batch row read two ways: the seed's figure against each reading, the k it needs, which one fits."""
    rows = []
    for doc in readings.get("targets") or []:
        measured = doc.get("measured_per_image_ms") or {}
        for r in doc.get("readings") or []:
            name = str(r.get("reading"))
            m = None if name == "native, one after another" else measured.get(
                "native" if name.startswith("native") else "semaphore")
            k = r.get("k_for_published")
            fits = name in (doc.get("fits") or [])
            rows.append([esc(doc.get("target")), esc(name), esc(r.get("how")), esc(fmt_ms(m)),
                         esc(fmt_ms(r.get("model_per_image_ms"))), esc(fmt_ms(doc.get("published_per_image_ms"))),
                         esc("none" if k is None else f"{k:.2f}"),
                         '<span class="ok">fits</span>' if fits else '<span class="bad">does not fit</span>'])
    notes = "".join(
        f"<li><b>{esc(doc.get('target'))}</b>: " + "; ".join(esc(r.get("arithmetic", "")) for r in doc.get("readings")
                                                              or []) + f". The profile's k: "
        f"{esc(doc.get('profile_per_extra_image'))}.</li>" for doc in readings.get("targets") or [])
    return ("<h2>The batch row, read two ways</h2>"
            f"<p>{esc(readings.get('statement', ''))}</p>"
            + table(["target", "reading", "how", "measured", "model", "seed", "k needed", ""], rows,
                    numeric=(3, 4, 5, 6))
            + f'<p class="small">{esc(readings.get("method", ""))} Measured: per image, averaged over batches; '
              "model: the profile's own latency at its k; k needed: the per-extra-image cost that gives the seed's "
              "figure under that reading.</p>"
            + f"<ul class=\"small\">{notes}</ul>")


def write_compare_html(compare: dict, outdir: Path) -> Path:
    """compare.html: measured vs published for every cell, the plot, the SLA, where the seed contradicts itself
    and, apart from that, where this machine could not reproduce a figure."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    cells = list(compare.get("cells") or [])
    sla = compare.get("sla") or {}
    sla_ms = _num(sla.get("latency_ms"))
    png = plots.relay_vs_direct(cells, outdir / "relay_vs_direct.png", sla_ms=sla_ms,
                                sla_label=f"SLA: P99 < {fmt_ms(sla_ms)}" if sla_ms else "")
    targets = list(compare.get("targets") or dict.fromkeys(str(c["target"]) for c in cells))
    metrics = list(dict.fromkeys(
        (str(c.get("metric")), str(c.get("label") or c.get("metric")), str(c.get("unit") or "")) for c in cells))
    by = {(str(c.get("metric")), str(c["target"])): c for c in cells}
    rows = [[esc(label)] + [_dev_cell(by.get((m, t)), outdir) for t in targets] for m, label, _ in metrics]
    measured = sum(1 for c in cells if _num(c.get("measured")) is not None)
    definitions = compare.get("definitions") or {}
    labels = {m: label for m, label, _ in metrics}
    reduced = compare.get("reduced_note") or ("reduced run: short stages and a smaller burst, so the figures are "
                                               "indicative")
    body = [
        "<h1>Relay vs direct: the published latency table, measured</h1>",
        f'<p class="meta">Generated {esc(display.when(compare.get("generated_at")))}; seed '
        f"{esc(compare.get('seed', '—'))}; took {esc(display.duration(compare.get('duration_s')))}; "
        f"{measured} of {len(cells)} cells measured.</p>",
        f'<p class="note">{esc(reduced)}.</p>' if compare.get("reduced") else "",
        "<h2>The SLA</h2>", _sla(compare, cells),
        "<h2>Measured against published</h2>",
        '<p class="small">Each cell: measured by the client vs published, and the deviation. Green within 10 %, '
        "amber within 50 %, red beyond. Under a latency cell, the same percentile as the mock recorded it: the "
        "gap between the two is this machine's and the client's time, not the profile's.</p>",
        table(["workload", *targets], rows) if rows else '<p class="none">No cells.</p>',
        figure(png, "measured bars against published markers per workload and target",
               "Bars are measured, black diamonds the published figures, the red dashed line the SLA's latency "
               "limit; the scale is logarithmic because the relay's milliseconds and the providers' seconds differ "
               "a hundredfold. A diamond far above or below its bar is a figure the simulation could not "
               "reproduce."),
        _batch_readings(compare["batch_readings"]) if compare.get("batch_readings") else "",
        "<h2>Where the published figures contradict each other</h2>",
        _notes(compare.get("contradictions") or [], "No contradiction found."),
        "<h2>What this machine could not reproduce</h2>",
        '<p class="small">Not the seed\'s doing: measurements that say more about the load generator, this '
        "machine or the client's timeout than about the profile.</p>",
        _notes(compare.get("caveats") or [], "Nothing: every cell measured what its profile describes."),
    ]
    if compare.get("cost"):
        body += ["<h2>Cost</h2>", _projection(compare["cost"])]
    if definitions:
        body += ["<h2>What each row measures</h2>",
                 "<dl>" + "".join(f"<dt><b>{esc(labels.get(k, k))}</b></dt><dd>{esc(v)}</dd>"
                                  for k, v in definitions.items()) + "</dl>"]
    out = outdir / "compare.html"
    out.write_text(page("Relay vs direct", "\n".join(b for b in body if b)), encoding="utf-8")
    return out


# --- drawn in a process of its own (loadtest.report.write_html_apart) --------------------------------


def _main(argv: Sequence[str]) -> int:
    """python -m loadtest.report.html OUTDIR < summary.json: the page and its PNGs, the page's name on stdout."""
    import sys
    import traceback

    from . import WRITE_FAILED
    if len(argv) != 1:
        print("usage: python -m loadtest.report.html OUTDIR < summary.json", file=sys.stderr)
        return 2
    try:
        out = write_html(Summary.model_validate_json(sys.stdin.read()), Path(argv[0]))
    except OSError as exc:
        print(f"cannot write report.html into {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return WRITE_FAILED
    except Exception as exc:
        traceback.print_exc()
        # The last line is what the parent reports: the error in one line, not the traceback's tail.
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    print(out.name)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv[1:]))
