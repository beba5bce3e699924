"""The live SLA document (`GET /sla`): what the web UI shows of a run while it goes and once it is judged.

One JSON document, built from the gate's own live verdict (`TestRun.live_verdict`: `gate.judge`
with `live=True`) and the run's state. The SLA page (static/sla.html), Locust's SLA tab and any
script render from it; none of them decides anything. Each threshold is the same `ThresholdDoc`
that summary.json carries (live: built from the live result), so a field the gate adds to it shows
up here too.

It is made to grow without touching the pages:
- `COLUMNS`: the threshold table's columns, each a key, a title and a function from the
  threshold's document to the text shown. A column more (a confidence interval, say) is one
  entry; every table that renders the document shows it.
- `PROVIDER_COLUMNS`: with a provider-side record (`columns(suite)`), the simulated providers' own value
  of each latency threshold's figure and the gap, after the client's value; a latency threshold the
  live gate finds to be the generator's breach (the client side fails, the provider side holds, the
  generator is strained) reads "invalid", as the end would judge it.
- `SECTIONS`: functions from the run to an extra block (`{"title", "columns", "rows", "note"}`, or
  None to leave it out); the page shows each as a table under the thresholds.
- A threshold's `verdict` is the gate's word ("pass", "fail", "inconclusive", ...), except that a
  live "insufficient" reads "collecting": the page colours whatever word it gets.

Numbers are raw (microsecond-rounded) where a script would compute with them, and text, rounded
once for a person, in each `cells` entry.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from locust.runners import STATE_CLEANUP, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPED, STATE_STOPPING

from ..health import HealthReport, assess
from ..recorder import OPEN_SECONDS
from ..report import display
from ..summary import threshold_doc
from ..thresholds import format_value

if TYPE_CHECKING:
    from .run import SuiteRun, TestRun

FORMAT = "loadtest.live/1"
SERIES_POINTS = 600          # points per series in one document: a 4-hour run is thinned to this
HEALTH_CACHE_S = 2.0         # assess() sorts every sample so far: not on every poll
RATE_SETTLE_S = 5.0          # a request rate is shown as judged once its window has run this long

ThresholdDocJSON = Mapping[str, Any]


# --- the threshold table --------------------------------------------------------------------


def _stage(t: ThresholdDocJSON) -> str:
    filters = dict(t.get("filters") or {})
    stage = filters.pop("stage", None)
    rest = ", ".join(f"{k}={v}" for k, v in filters.items())
    return ", ".join(x for x in (stage or "whole run", rest) if x)


def _observed(t: ThresholdDocJSON) -> str:
    v = t.get("observed")
    return "—" if v is None else format_value(str(t["metric"]), str(t["aggregation"]), float(v))


def _headroom(t: ThresholdDocJSON) -> str:
    m = t.get("margin") or {}
    return str(m.get("words") or "—")


def _samples(t: ThresholdDocJSON) -> str:
    n = int(t.get("samples") or 0)
    needed = t.get("needed_samples")
    if t.get("verdict") == "insufficient" and needed:
        return f"{n:,} of {int(needed):,}"
    return f"{n:,}"


def _provider_side(t: ThresholdDocJSON) -> str:
    side = t.get("provider_side")
    if not side:
        return "—"
    return f"{format_value(str(t['metric']), str(t['aggregation']), float(side['observed']))} " \
           f"({int(side['samples']):,})"


def _gap(t: ThresholdDocJSON) -> str:
    side = t.get("provider_side")
    if not side or side.get("gap") is None:
        return "—"
    gap = float(side["gap"])
    return ("+" if gap >= 0 else "−") + format_value(str(t["metric"]), str(t["aggregation"]), abs(gap))


Column = tuple[str, str, Callable[[ThresholdDocJSON], str]]
COLUMNS: list[Column] = [
    ("threshold", "Threshold", display.threshold_name),
    ("stage", "Stage", _stage),
    ("observed", "Value (exact)", _observed),
    ("limit", "Limit", lambda t: display.limit_text(str(t["metric"]), str(t["aggregation"]), str(t["op"]),
                                                    float(t["limit"]))),
    ("headroom", "Headroom", _headroom),
    ("verdict", "Verdict", lambda t: str(t.get("_verdict_text") or display.verdict_word(str(t.get("verdict"))))),
    ("samples", "Samples", _samples),
]

# With the provider side's record (the target on the mock, or --record-url): beside the client-side value,
# the simulated providers' own value of the same figure, and the gap (the generator's and the network's share).
PROVIDER_COLUMNS: list[Column] = [
    ("provider", "Provider side", _provider_side),
    ("gap", "Gap (generator, network)", _gap),
]


def columns(suite: SuiteRun) -> list[Column]:
    """The threshold table's columns for this suite: COLUMNS, and PROVIDER_COLUMNS after the value when the
    run reads a provider-side record."""
    if not suite.record_url:
        return list(COLUMNS)
    at = next((i + 1 for i, c in enumerate(COLUMNS) if c[0] == "observed"), len(COLUMNS))
    return [*COLUMNS[:at], *PROVIDER_COLUMNS, *COLUMNS[at:]]


# Extra blocks under the thresholds: one function per block, from the suite to
# {"title", "columns": [{"key", "title"}], "rows": [{key: text}], "note"} or None.
SECTIONS: list[Callable[[SuiteRun], dict[str, Any] | None]] = []


# --- what a run remembers for its charts -------------------------------------------------------


def _doubles() -> array[float]:
    return array("d")


@dataclass
class History:
    """Each latency threshold's value as judged, once a second, and each second's own percentiles.

    C doubles, NaN for "none yet", not lists of Python floats and a dict of tuples: a sample is 8 bytes a
    series and a second 33 bytes, where they took about 350 bytes a second together, 5 MB over the seed's
    4-hour run in a process held to a memory budget."""
    t_s: array[float] = field(default_factory=_doubles)
    values: dict[str, array[float]] = field(default_factory=dict)
    # Each second's p50, p95, p99 and max (ms), indexed by the second; `present` marks the seconds seen.
    seconds: tuple[array[float], ...] = field(default_factory=lambda: tuple(_doubles() for _ in range(4)))
    present: bytearray = field(default_factory=bytearray)
    health_at: float = 0.0
    health: HealthReport | None = None

    def add_value(self, key: str, value: float | None) -> None:
        """The threshold `key`'s value at the sample just appended to t_s (None: not judged yet)."""
        col = self.values.setdefault(key, _doubles())
        col.extend([math.nan] * (len(self.t_s) - 1 - len(col)))     # a threshold first seen late
        col.append(math.nan if value is None else value)

    def points(self, key: str) -> list[tuple[float, float]]:
        return [(t, v) for t, v in zip(self.t_s, self.values.get(key, ())) if not math.isnan(v)]

    def set_second(self, s: int, figures: Sequence[float | None]) -> None:
        if s < 0:
            return
        more = s + 1 - len(self.present)
        if more > 0:
            self.present.extend(bytes(more))
            for col in self.seconds:
                col.extend([math.nan] * more)
        self.present[s] = 1
        for col, v in zip(self.seconds, figures):
            col[s] = math.nan if v is None else v

    def per_second(self, column: int, start: float = -math.inf, end: float = math.inf) -> list[tuple[float, float]]:
        """(the second's middle, its figure in `column`) for the seconds seen in [start, end) with one."""
        col = self.seconds[column]
        return [(s + 0.5, col[s]) for s in range(len(self.present))
                if self.present[s] and not math.isnan(col[s]) and start <= s < end]


PER_SECOND = {50.0: (0, "P50"), 95.0: (1, "P95"), 99.0: (2, "P99")}   # timeline columns each second has


def chartable(t: ThresholdDocJSON) -> bool:
    return t["metric"] == "latency" and t["op"] in ("<", "<=")


def per_second_column(t: ThresholdDocJSON) -> tuple[int, str] | None:
    """Which of each second's figures (p50, p95, p99, max) shows the same statistic as the threshold."""
    agg = t["aggregation"]
    if agg == "max":
        return 3, "max"
    if agg == "med":
        return PER_SECOND[50.0]
    if agg == "p":
        expr = str(t.get("expression", ""))
        try:
            pct = float(expr[expr.index("(") + 1:expr.index(")")])
        except ValueError:
            return None
        return PER_SECOND.get(pct)
    return None


def _thin(points: Sequence[tuple[float, Any]], n: int = SERIES_POINTS) -> list[list[Any]]:
    if len(points) <= n:
        return [list(p) for p in points]
    step = math.ceil(len(points) / n)
    kept = list(points[::step])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return [list(p) for p in kept]


class LiveView:
    """The web UI's memory of each run (chart history, report folders) and the /sla document."""

    def __init__(self, suite: SuiteRun) -> None:
        self.suite = suite
        self.histories: dict[int, History] = {}
        self.reports: dict[int, str] = {}      # run number -> its report folder, once it has one

    def history(self, run: TestRun) -> History:
        h = self.histories.get(run.number)
        if h is None:
            # Only the current run's charts are drawn: a run's history goes when the next run starts.
            self.histories = {run.number: History()}
            h = self.histories[run.number]
        return h

    def sample(self, run: TestRun) -> None:
        """Once a second while a run goes: each latency threshold's value as judged now, each second's figures."""
        h = self.history(run)
        now = round(run.schedule_elapsed_s(), 3)
        if run.recorder.start_time is None:
            return
        h.t_s.append(now)
        results = run.live_verdict().results
        for i, r in enumerate(results):
            if r.threshold.metric == "latency":
                h.add_value(f"t{i}", None if r.observed is None else round(r.observed, 3))
        since = max(0, int(now) - OPEN_SECONDS - 1)
        for row in run.recorder.timeline(since_s=since):
            h.set_second(int(row["t_s"]), (row["p50_ms"], row["p95_ms"], row["p99_ms"], row["max_ms"]))

    def report_dir(self, number: int) -> str | None:
        run = self.suite.current
        if run is not None and run.number == number and run.summary is not None:
            self.reports[number] = run.summary.report_dir
        return self.reports.get(number)

    # -- the document ------------------------------------------------------------------------

    def document(self, *, series: bool = True) -> dict[str, Any]:
        suite = self.suite
        run = suite.current
        scenario = suite.scenario
        doc: dict[str, Any] = {
            "format": FORMAT,
            "scenario": scenario.name, "description": scenario.description,
            "target": suite.target.name, "api": suite.target.api, "model": suite.target.model,
            "base_url": suite.target.base_url, "min_samples": scenario.min_samples,
            "stages": [{"name": n, "start_s": round(a, 3), "end_s": round(b, 3), "window": display.window(a, b)}
                       for n, a, b in scenario.load.windows()],
            "load": self._load(),
            "columns": [{"key": key, "title": title} for key, title, _ in columns(suite)],
        }
        doc["run"] = self._run(run)
        doc["generator"] = self._generator(run)
        docs = self._threshold_docs(run)
        doc["thresholds"] = [self._row(i, t) for i, t in enumerate(docs)]
        doc["verdict"] = self._verdict(run, docs)
        doc["actions"] = self._actions(run)
        doc["charts"] = self._charts(run, docs, series)
        doc["report"] = self._report(run)
        doc["sections"] = [s for s in (f(suite) for f in SECTIONS) if s is not None]
        return doc

    def _load(self) -> dict[str, Any]:
        load = self.suite.scenario.load
        stages = load.stages
        if load.KIND == "closed":
            path = " → ".join(f"{s.users:,}" for s in stages)
            text = f"{len(stages)} stage{'s' if len(stages) > 1 else ''} over {display.duration(load.duration_s)}: " \
                   f"{path} users"
        else:
            path = " → ".join(f"{s.rate:,.0f}" for s in stages)
            text = (f"{len(stages)} stage{'s' if len(stages) > 1 else ''} over {display.duration(load.duration_s)}: "
                    f"{path} arrivals/s, up to {load.peak_users:,} requests in flight")
        return {"model": load.KIND, "driven_by_scenario": True, "peak_users": load.peak_users,
                "planned_s": load.duration_s, "text": text,
                "note": "Locust's users and ramp do not apply: press Start."}

    def _run(self, run: TestRun | None) -> dict[str, Any]:
        planned = self.suite.scenario.duration_s
        state = self._state(run)
        out: dict[str, Any] = {"number": run.number if run else 0, "state": state,
                               "locust_state": self.suite.runner.state, "planned_s": planned,
                               "users": self.suite.runner.user_count}
        if run is None:
            out.update(elapsed_s=0.0, left_s=planned, stage=None, text="not started")
            return out
        elapsed = min(run.schedule_elapsed_s(), planned) if run.stopped_perf is None else run.schedule_elapsed_s()
        left = max(0.0, planned - elapsed) if state == "running" else 0.0
        out.update(elapsed_s=round(elapsed, 1), left_s=round(left, 1), started_at=run.started_at.isoformat(),
                   aborted_at_s=run.aborted_at_s, end=run.summary.run.end if run.summary is not None else None)
        stage = None
        for i, (name, a, b) in enumerate(self.suite.scenario.load.windows()):
            if a <= elapsed < b and state == "running":
                stage = {"name": name, "index": i + 1, "count": len(self.suite.scenario.load.stages),
                         "start_s": round(a, 3), "end_s": round(b, 3), "left_s": round(b - elapsed, 1)}
        out["stage"] = stage
        if state == "running":
            where = (f"stage {stage['name']} ({stage['index']} of {stage['count']})" if stage
                     else "after the last stage")
            out["text"] = (f"{where}; {display.seconds(elapsed)} of {display.duration(planned)}, "
                           f"{display.duration(left)} left")
        elif state == "stopping":
            out["text"] = f"stopped at {display.seconds(elapsed)} of {display.duration(planned)}; judging the run"
        else:
            out["text"] = f"ended at {display.seconds(elapsed)} of {display.duration(planned)}"
        return out

    def _state(self, run: TestRun | None) -> str:
        if run is None:
            return "not started"
        if run.summary is not None:
            return "finished"
        if run.stopped_perf is not None or self.suite.runner.state in (STATE_STOPPING, STATE_CLEANUP, STATE_STOPPED):
            return "stopping"
        if self.suite.runner.state in (STATE_RUNNING, STATE_SPAWNING):
            return "running"
        return "stopping"

    def _generator(self, run: TestRun | None) -> dict[str, Any]:
        if run is None:
            return {"status": "unknown", "text": "measured once the run starts"}
        h = self.history(run)
        if h.health is None or time.monotonic() - h.health_at > HEALTH_CACHE_S:
            h.health, h.health_at = assess(run.samples), time.monotonic()
        health = h.health
        if not health.samples.cpu and not health.samples.lag_ms:
            return {"status": "unknown", "text": "no samples yet"}
        figures = (f"CPU up to {health.cpu_max:.0f} % of a core, event-loop lag {health.loop_lag_p95_ms:.1f} ms "
                   "(P95)" + (f", starts {health.schedule_lag_p95_ms:.0f} ms late (P95)"
                              if health.schedule_lag_p95_ms is not None else ""))
        if health.saturated:
            return {"status": "strained", "figures": health.figures(),
                    "text": f"strained: {'; '.join(health.reasons)}. If it stays so, the run will prove nothing"}
        return {"status": "ok", "figures": health.figures(), "text": f"healthy: {figures}"}

    def _threshold_docs(self, run: TestRun | None) -> list[dict[str, Any]]:
        if run is not None and run.summary is not None:
            return [t.model_dump(mode="json", by_alias=True) for t in run.summary.thresholds]
        if run is None:
            return [self._waiting(i) for i in range(len(self.suite.scenario.thresholds))]
        docs = []
        windows = {n: (a, b) for n, a, b in self.suite.scenario.load.windows()}
        elapsed = run.schedule_elapsed_s()
        for r in run.live_verdict().results:
            d = threshold_doc(r).model_dump(mode="json", by_alias=True)
            if d["metric"] == "requests" and d["aggregation"] in ("rate", "rps") and d["verdict"] in ("pass", "fail"):
                a, b = windows.get(d["filters"].get("stage"), (0.0, self.suite.scenario.duration_s))
                seen = max(0.0, min(elapsed, b) - a)
                if seen < min(RATE_SETTLE_S, b - a):
                    # A rate over its window's first second or two is noise (0 req/s at the stage's start).
                    d["verdict"] = "collecting"
                    d["_verdict_text"] = f"COLLECTING ({display.seconds(seen)} in so far)"
            whose = (d.get("provider_side") or {}).get("attribution")
            if d["verdict"] == "fail" and whose in ("generator", "mock_late"):
                # The client side breached and the provider side held (the generator is strained), or breached
                # only by the mock's own lateness: the end would judge this INVALID, not the target's.
                d["verdict"] = "invalid"
                d["_verdict_text"] = ("INVALID (the generator's)" if whose == "generator"
                                      else "INVALID (the mock's lateness)")
            if d["verdict"] == "insufficient":
                d["verdict"] = "collecting"
                stage = d["filters"].get("stage")
                if stage in windows and elapsed < windows[stage][0]:
                    d["_verdict_text"] = f"COLLECTING from {display.seconds(windows[stage][0])}"
                elif d.get("needed_samples") and d["metric"] != "requests":
                    d["_verdict_text"] = f"COLLECTING {d['samples']:,} / {d['needed_samples']:,}"
            docs.append(d)
        return docs

    def _waiting(self, i: int) -> dict[str, Any]:
        t = self.suite.scenario.thresholds[i]
        return {"key": t.key, "label": t.label(), "metric": t.metric, "aggregation": t.aggregation,
                "expression": t.expression(), "filters": dict(t.filters), "op": t.op, "limit": t.value,
                "unit": t.unit, "observed": None, "samples": 0, "verdict": "waiting", "detail": "not started",
                "margin": None, "needed_samples": None, "abort_on_fail": t.abort_on_fail, "_verdict_text": "—"}

    def _row(self, i: int, t: dict[str, Any]) -> dict[str, Any]:
        cells = {key: fn(t) for key, _, fn in columns(self.suite)}
        doc = {k: v for k, v in t.items() if not k.startswith("_")}
        return {"id": f"t{i}", "verdict": t["verdict"], "cells": cells, "doc": doc}

    def _verdict(self, run: TestRun | None, docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if run is None:
            return {"status": "not started", "class": "idle", "provisional": True,
                    "headline": "Not started: press Start. The scenario drives the load.", "reasons": []}
        summary = run.summary
        if summary is not None:
            incomplete = any(r.kind == "incomplete" for r in summary.reasons)
            word = {"pass": "PASS", "fail": "FAIL", "invalid": "INCOMPLETE" if incomplete else "INVALID"}
            what = {"pass": "the SLA held", "fail": "the SLA was breached",
                    "invalid": "the run proves nothing"}[summary.verdict]
            return {"status": summary.verdict, "class": summary.verdict, "provisional": False,
                    "incomplete": incomplete, "exit_code": summary.exit_code,
                    "headline": f"{word[summary.verdict]}: {what} (exit {summary.exit_code})",
                    "reasons": summary.reason_texts}
        if self._state(run) == "stopping":
            return {"status": "judging", "class": "collecting", "provisional": True,
                    "headline": "Stopped: judging the run…", "reasons": []}
        live = run.live_verdict()
        failing = [d for d in docs if d["verdict"] == "fail"]
        passing = [d for d in docs if d["verdict"] == "pass"]
        # Mid-run, a threshold whose interval still straddles its limit is gathering evidence, not lost.
        collecting = [d for d in docs if d["verdict"] in ("collecting", "inconclusive")]
        other = [r.text for r in live.reasons
                 if r.kind not in ("insufficient", "inconclusive", "breach", "note", "no_thresholds")]
        if failing:
            worst = "; ".join(f"{d['label']}: {_headroom(d)}" for d in failing)
            return {"status": "failing", "class": "fail", "provisional": True,
                    "headline": f"Provisional: off track. {len(failing)} of {len(docs)} threshold"
                                f"{'s' if len(docs) > 1 else ''} failing so far ({worst})",
                    "reasons": other}
        generators = [d for d in docs if d["verdict"] == "invalid"]
        if generators:
            names = ", ".join(str(d["label"]) for d in generators)
            if all(d["provider_side"]["attribution"] == "generator" for d in generators):
                why = (f"the generator's breach, not the target's ({names}: the client side fails, the provider "
                       f"side holds)")
            else:
                why = f"not the target's breach ({names}: the generator's, or the mock running behind its own profile)"
            return {"status": "proves nothing so far", "class": "invalid", "provisional": True,
                    "headline": f"Provisional: {why}; as it goes, this run will prove nothing", "reasons": other}
        if other:
            return {"status": "proves nothing so far", "class": "invalid", "provisional": True,
                    "headline": "Provisional: as it goes, this run will prove nothing", "reasons": other}
        if collecting and not passing:
            return {"status": "collecting", "class": "collecting", "provisional": True,
                    "headline": "Provisional: collecting samples; no threshold can be judged yet", "reasons": []}
        tail = f"; {len(collecting)} still collecting samples" if collecting else ""
        return {"status": "on track", "class": "pass", "provisional": True,
                "headline": f"Provisional: on track. {len(passing)} of {len(docs)} threshold"
                            f"{'s' if len(docs) > 1 else ''} passing so far{tail}",
                "reasons": []}

    def _actions(self, run: TestRun | None) -> list[dict[str, Any]]:
        done = list(run.actions_done) if run is not None else []
        out = []
        for a in sorted(self.suite.scenario.actions, key=lambda a: a.at_s):
            settings = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in a.settings.items())
            match = next((d for d in done if d.planned_at_s == a.at_s and d.provider == a.provider
                          and d.settings == dict(a.settings)), None)
            if match is not None:
                done.remove(match)
            out.append({"at_s": round(match.at_s if match else a.at_s, 3), "planned_at_s": a.at_s,
                        "provider": a.provider, "text": f"{a.provider}: {settings}", "done": match is not None,
                        "ok": None if match is None else match.ok, "outcome": None if match is None else match.outcome})
        return out

    def _charts(self, run: TestRun | None, docs: Sequence[Mapping[str, Any]], series: bool) -> list[dict[str, Any]]:
        windows = {n: (a, b) for n, a, b in self.suite.scenario.load.windows()}
        h = self.history(run) if run is not None else History()
        out = []
        for i, t in enumerate(docs):
            if not chartable(t):
                continue
            stage = (t.get("filters") or {}).get("stage")
            column = per_second_column(t)
            chart: dict[str, Any] = {
                "id": f"t{i}", "title": display.threshold_name(t) + (f" [stage {stage}]" if stage else ""),
                "unit": "ms",
                "limit": float(t["limit"]), "limit_text": display.limit_text("latency", str(t["aggregation"]),
                                                                             str(t["op"]), float(t["limit"])),
                "stage": stage, "window": list(windows[stage]) if stage in windows else None,
                "verdict": t["verdict"], "per_second_label": f"{column[1]} of each second" if column else None}
            if series:
                chart["points"] = _thin(h.points(f"t{i}"))
                if column is not None and not stage:
                    chart["per_second"] = _thin(h.per_second(column[0]))
                elif column is not None and stage in windows:
                    chart["per_second"] = _thin(h.per_second(column[0], *windows[stage]))
            out.append(chart)
        return out

    def _report(self, run: TestRun | None) -> dict[str, Any] | None:
        if run is None or run.summary is None or not run.summary.files:
            return None
        self.reports[run.number] = run.summary.report_dir
        base = f"/sla/runs/{run.number}/"
        files = run.summary.files
        main = files.get("html") or files.get("markdown") or files.get("summary")
        return {"url": base + str(main), "dir": run.summary.report_dir, "run": run.number,
                "files": [{"key": k, "name": v, "url": base + v} for k, v in files.items()]}
