"""capacity.html: the answer of `loadtest capacity` as one page, in report.html's style.

The bracket first ("holds at 90 req/s, breaks at 95 req/s"), coloured by the command's exit code;
then what broke first, the bound and what it means for the answer, the SLA each step was judged
on, the knee plot (embedded, as report.html embeds its figures) and every step with its figures
and a link to its own report.html under steps/. Each number is rounded here, where it is shown;
capacity.json keeps what was measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import display, plots
from .html import esc, figure, files_list, fmt_ms, fmt_pct, href, page, table

if TYPE_CHECKING:
    from ..capacity import CapacityDoc, StepDoc

__all__ = ["write_capacity_html", "BOUNDS", "OUTCOMES", "fmt_rps", "bracket_words"]

# The command's exit code -> the banner's colour (as report.html's verdicts: pass, fail, proves nothing).
COLOURS = {0: "#1e7e34", 1: "#b02a37", 2: "#a15c00"}

# bound -> (a short name, what it means for the answer)
BOUNDS: dict[str, tuple[str, str]] = {
    "target": ("the target", "The target itself broke: the bracket is its capacity at this SLA."),
    "none": ("nothing up to --max", "It held at every rate tried: its capacity is above the highest one. Raise "
                                    "--max to find where it breaks."),
    "generator": ("the load generator", "The load generator gave out (its CPU, its loop or its schedule) before the "
                                        "target did: the target's capacity is only known to be above the rate that "
                                        "held. More --workers, or a bigger machine, to go further."),
    "machine": ("this machine", "The target shares this machine with the load generator, and the machine ran out "
                                "of CPU first: the bound is this machine's, not the target's capacity."),
    "inconclusive": ("an undecided step", "The gate could not decide a step even when it ran longer: nothing is "
                                          "known above the rate that held. A longer --max-step would decide it."),
    "invalid": ("no answer", "The search was interrupted or a step proved nothing (see its report): no capacity "
                             "can be read from it."),
}

# a step's outcome -> its word (the knee plot colours its marker the same)
OUTCOMES = {"holds": "HOLDS", "breaks": "BREAKS", "generator": "GENERATOR LIMIT", "machine": "MACHINE LIMIT",
            "inconclusive": "INCONCLUSIVE", "invalid": "NO VERDICT"}

KNEE_CAPTION = ("The knee. Top: each step's P50 (solid) and P99 (dashed) latency over its measured stage against "
                "the offered rate, with the SLA's latency limits dotted red. Bottom: the share of scheduled "
                "starts that succeeded, and that succeeded within the latency objective (goodput), against the "
                "SLA's rate limits. Each marker is coloured by what its step came to (green held, red broke); "
                "the shaded band between the green and red lines is the bracket the capacity lies in.")


def fmt_rps(x: float | None) -> str:
    """A rate as the command's answer words it: whole numbers from 100 req/s, three figures below."""
    if x is None:
        return "—"
    return f"{x:,.0f} req/s" if x >= 100 else f"{x:,.3g} req/s"


def bracket_words(doc: CapacityDoc) -> str:
    """"holds at 90 req/s, breaks at 95 req/s", or what stands for it when one end is missing."""
    held = f"holds at {fmt_rps(doc.holds_rps)}" if doc.holds_rps is not None else "holds at no rate tried"
    if doc.breaks_rps is None:
        return f"{held}, the highest rate tried" if doc.holds_rps is not None else held
    return f"{held}, breaks at {fmt_rps(doc.breaks_rps)}"


def _banner(doc: CapacityDoc) -> str:
    colour = COLOURS.get(doc.exit_code, "#555555")
    name, meaning = BOUNDS.get(doc.bound, (doc.bound, ""))
    return (f'<div class="banner" style="background:{colour}" id="verdict" data-bound="{esc(doc.bound)}">'
            f'<span class="word">{esc(bracket_words(doc))}</span>'
            f"<div>{esc(doc.answer)}.</div>"
            f"<div>Bound: {esc(name)}. Exit code {esc(doc.exit_code)}.</div></div>"
            + (f"<p>{esc(meaning)}</p>" if meaning else ""))


def _first_broken(doc: CapacityDoc) -> str:
    if not doc.first_broken:
        return '<p class="none">Nothing broke at any rate tried.</p>'
    at = f" at {esc(fmt_rps(doc.breaks_rps))}" if doc.breaks_rps is not None else ""
    return f"<p>What broke first{at}: <b>{esc(doc.first_broken)}</b>.</p>"


def _sla(doc: CapacityDoc) -> str:
    if not doc.sla:
        return '<p class="none">No threshold was judged per step.</p>'
    return ("<ul>" + "".join(f"<li><code>{esc(line.label)}</code></li>" for line in doc.sla) + "</ul>"
            f'<p class="small">Each step is judged on these over its measured stage, at {doc.confidence * 100:g} % '
            "confidence; request-rate thresholds and regressions are left out, since the rate is what the search "
            "sets.</p>")


def _step_report(step: StepDoc, outdir: Path) -> str:
    """A link to the step's own report.html, or to its log when it wrote none."""
    folder = (outdir / step.report_dir).resolve()        # an absolute report_dir stays as it is
    for target, words in ((folder / "report" / "report.html", "report"), (folder / "run.log", "log")):
        if target.exists():
            return f'<a href="{esc(href(str(target), outdir))}">{words}</a>'
    return '<span class="none">—</span>'


def _steps(doc: CapacityDoc, outdir: Path) -> str:
    if not doc.steps:
        return '<p class="none">No step ran.</p>'
    ends = {"holds": doc.holds_rps, "breaks": doc.breaks_rps}
    rows = []
    for i, s in enumerate(doc.steps, 1):
        colour = plots.OUTCOME_COLORS.get(s.outcome, "#8c8c8c")
        why = f"<br>{esc(s.first_broken)}" if s.first_broken and s.outcome != "holds" else ""
        outcome = (f'<span class="dot" style="background:{colour}"></span><span class="verdict">'
                   f'{esc(OUTCOMES.get(s.outcome, s.outcome))}</span> <span class="small">(gate: '
                   f"{esc(display.verdict_word(s.verdict))}, exit {esc(s.exit_code)})</span>{why}")
        edge = ("highest that held" if s.outcome == "holds" and s.rate_rps == ends["holds"]
                else "lowest that broke" if s.outcome != "holds" and s.rate_rps == ends["breaks"] else "")
        ran = f'{esc(display.duration(s.elapsed_s))} <span class="small">of {esc(display.duration(s.planned_s))}</span>'
        rows.append([esc(i), esc(fmt_rps(s.rate_rps)), esc(fmt_rps(s.achieved_rps)), outcome, esc(edge),
                     esc(fmt_ms(s.p50_ms)), esc(fmt_ms(s.p99_ms)), esc(fmt_pct(s.success_rate, 2)),
                     esc(fmt_pct(s.goodput_rate, 2)), esc(f"{s.requests:,}"),
                     ran, _step_report(s, outdir)])
    return (table(["step", "offered", "served", "outcome", "bracket", "P50", "P99", "success", "goodput",
                   "requests", "ran", "its report"], rows, numeric=(0, 1, 2, 5, 6, 7, 8, 9))
            + '<p class="small">In the order the search ran them: doubling until a step broke, then bisecting. '
              "Figures are over each step's measured stage; success and goodput are shares of the starts it "
              "scheduled, so a start dropped for want of a free user counts against them.</p>")


def write_capacity_html(doc: CapacityDoc, outdir: Path, knee: Path | None = None) -> Path:
    """capacity.html into outdir, next to capacity.json; the knee plot (knee.png there, unless given) embedded
    when it was drawn."""
    outdir = Path(outdir)
    knee = knee or outdir / "knee.png"
    picture = (figure(knee, "each step's latency, success and goodput against the offered rate, with the bracket",
                      KNEE_CAPTION) if knee.exists() else '<p class="none">The knee plot could not be drawn.</p>')
    elapsed = sum(s.elapsed_s for s in doc.steps)
    body = [
        f"<h1>{esc(doc.scenario)} on {esc(doc.target)}: capacity</h1>",
        f'<p class="meta">Started {esc(display.when(doc.started_at))}; {len(doc.steps)} steps in '
        f"{esc(display.duration(elapsed))}, bisected to within {doc.resolution * 100:g} %.</p>",
        _banner(doc),
        "<h2>What broke first</h2>", _first_broken(doc),
        "<h2>The SLA each step held to</h2>", _sla(doc),
        "<h2>The knee</h2>", picture,
        "<h2>Steps</h2>", _steps(doc, outdir),
        "<h2>Files</h2>", files_list({k: v for k, v in doc.files.items() if k != "folder"}, outdir),
    ]
    out = outdir / "capacity.html"
    out.write_text(page(f"capacity · {doc.scenario}: {bracket_words(doc)}", "\n".join(body)), encoding="utf-8")
    return out
