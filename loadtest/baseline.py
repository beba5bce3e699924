"""Baselines: this run against a previous one (`--baseline path/to/summary.json`, e.g. the last run on main).

Two things come of a baseline:

- **Deltas**, always: every threshold both runs share, and the run's latency percentiles, success
  rate, goodput and throughput, each with the baseline's value, this run's and the difference
  (`BaselineDoc` in the summary; the console, summary.md and JUnit show them).
- **Regression thresholds**, from the scenario's `[regressions]` table, which fail the gate when
  this run is worse than the baseline by more than an allowance::

      [regressions]
      latency = ["p(99) +10% floor 25ms", "p(50) +10% floor 10ms"]
      success = ["rate -0.05pp"]
      "requests{stage:hold}" = ["rps -5%"]

  Each entry is `AGGREGATION SIGN AMOUNT [floor AMOUNT]`. The sign says which way is worse (+ for
  latency, failures and dropped starts, - for success, goodput and request rates) and must agree
  with the metric. The amount is a share of the baseline's value (`10%`) or a figure in the
  metric's unit (`25ms`, `0.05pp` percentage points, `50` req/s). The **noise floor** is the least
  allowance whatever the share says, so that a machine's jitter on a fast target (P50 42 ms: 10 %
  is 4 ms) does not fail CI; each metric has a default (latency 10 ms, rates 0.05 pp, request
  rates 5 req/s), `floor` sets another.

  With the baseline's value known, a regression is an ordinary threshold — "p(99) <= baseline +
  max(10 %, 25 ms)" — judged by the same gate, interval and all. A regression whose value the
  baseline does not have (another stage, a percentile it did not report) is left out and named.

Without `--baseline` the `[regressions]` table is not judged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fields import Problems
from .thresholds import AGGREGATIONS, Threshold, ThresholdError, format_value, parse_key, unit_for

if TYPE_CHECKING:
    from .summary import BaselineDoc, Summary

__all__ = ["Regression", "Baseline", "parse_regressions", "load_baseline", "baseline_value", "compare",
           "DEFAULT_FLOORS"]

# The least allowance of each kind of figure: what a machine's own jitter moves it by.
DEFAULT_FLOORS = {"ms": 10.0, "": 0.0005, "req/s": 5.0, "requests": 0.0}
# Which way is worse, per metric: +1 higher is worse, -1 lower is worse.
WORSE = {"latency": 1, "failures": 1, "dropped": 1, "success": -1, "goodput": -1, "requests": -1}
_ENTRY = re.compile(
    r"^\s*(?P<agg>p\s*\(\s*[\d.]+\s*\)|[a-z][a-z0-9]*)\s+(?P<sign>[+-])\s*(?P<amount>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>%|ms|s|pp)?"
    r"(?:\s+floor\s+(?P<floor>\d+(?:\.\d*)?|\.\d+)\s*(?P<floor_unit>ms|s|pp)?)?\s*$")


@dataclass(frozen=True)
class Regression:
    metric: str
    filters: tuple[tuple[str, str], ...]
    slo_ms: float | None
    aggregation: str
    percentile: float | None
    worse: int                 # +1: higher is worse; -1: lower is worse
    amount: float              # in the metric's unit, or a fraction of the baseline when relative
    relative: bool
    floor: float               # in the metric's unit
    source: str                # "latency: p(99) +10% floor 25ms"

    @property
    def unit(self) -> str:
        return unit_for(self.metric, self.aggregation)

    def allowance(self, base: float) -> float:
        share = abs(base) * self.amount if self.relative else self.amount
        return max(share, self.floor)

    def words(self) -> str:
        sign = "+" if self.worse > 0 else "-"
        amount = f"{self.amount * 100:g} %" if self.relative else _show(self.metric, self.aggregation, self.amount)
        return f"{sign}{amount}, floor {_show(self.metric, self.aggregation, self.floor)}"

    def threshold(self, base: float) -> Threshold:
        """The ordinary threshold this regression is once the baseline's value is known."""
        limit = base + self.worse * self.allowance(base)
        if self.unit == "":
            limit = min(1.0, max(0.0, limit))
        digits = 6 if self.unit == "" else 1
        return Threshold(metric=self.metric, filters=self.filters, aggregation=self.aggregation,
                         percentile=self.percentile, op="<=" if self.worse > 0 else ">=", value=round(limit, digits),
                         source=f"regressions.{self.source}", slo_ms=self.slo_ms,
                         baseline=round(base, 6 if self.unit == "" else 3),
                         allowance=self.words())


def _show(metric: str, aggregation: str, value: float) -> str:
    if unit_for(metric, aggregation) == "":
        return f"{value * 100:g} pp"
    return format_value(metric, aggregation, value)


def parse_regressions(table: Any, problems: Problems) -> list[Regression]:
    if table is None:
        return []
    if not isinstance(table, Mapping):
        problems.add("[regressions] must be a table of metric = [\"p(99) +10% floor 25ms\", ...]")
        return []
    out: list[Regression] = []
    for key, entries in table.items():
        try:
            metric, filters, slo_ms = parse_key(str(key))
        except ThresholdError as exc:
            problems.add(str(exc).replace("thresholds", "regressions", 1))
            continue
        if metric not in WORSE:
            problems.add(f"regressions.{key}: {metric} has no regression against a baseline; gate it with "
                         f"[thresholds] instead")
            continue
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not entries or not all(isinstance(e, str) for e in entries):
            problems.add(f"regressions.{key}: expected a list such as [\"p(99) +10% floor 25ms\"], got {entries!r}")
            continue
        for entry in entries:
            try:
                out.append(_entry(str(key), metric, filters, slo_ms, entry))
            except ThresholdError as exc:
                problems.add(str(exc))
    return out


def _entry(key: str, metric: str, filters: tuple[tuple[str, str], ...], slo_ms: float | None,
           entry: str) -> Regression:
    where = f"regressions.{key}: {entry.strip()!r}"
    m = _ENTRY.match(entry)
    if not m:
        raise ThresholdError(f"{where}: expected AGGREGATION SIGN AMOUNT [floor AMOUNT], e.g. \"p(99) +10% floor "
                             f"25ms\" or \"rate -0.05pp\"")
    agg_text = re.sub(r"\s+", "", m["agg"])
    percentile: float | None = None
    if agg_text.startswith("p("):
        agg, percentile = "p", float(agg_text[2:-1])
        if not 0 < percentile <= 100:
            raise ThresholdError(f"{where}: the percentile must be above 0 and at most 100")
    else:
        agg = agg_text
    if agg not in AGGREGATIONS[metric]:
        forms = ", ".join("p(N)" if a == "p" else a for a in AGGREGATIONS[metric])
        raise ThresholdError(f"{where}: {agg_text!r} is not an aggregation of {metric} (use {forms})")
    worse = WORSE[metric] if not (metric == "dropped" and agg == "count") else 1
    sign = 1 if m["sign"] == "+" else -1
    if sign != worse:
        way = "higher" if worse > 0 else "lower"
        raise ThresholdError(f"{where}: a {metric} {agg_text} is worse when {way}: write "
                             f"{'+' if worse > 0 else '-'}{m['amount']}{m['unit'] or ''}")
    unit = unit_for(metric, agg)
    amount, relative = _amount(where, unit, float(m["amount"]), m["unit"])
    floor = DEFAULT_FLOORS.get(unit, 0.0)
    if m["floor"] is not None:
        floor, floor_relative = _amount(where, unit, float(m["floor"]), m["floor_unit"])
        assert not floor_relative
    return Regression(metric, filters, slo_ms, agg, percentile, worse, amount, relative, floor,
                      f"{key}: {entry.strip()}")


def _amount(where: str, unit: str, value: float, written: str | None) -> tuple[float, bool]:
    """(amount in the metric's unit or as a fraction, relative?)."""
    if written == "%":
        return value / 100.0, True
    if written in ("ms", "s"):
        if unit != "ms":
            raise ThresholdError(f"{where}: {written} is a latency's unit; this figure is in "
                                 f"{unit or 'percentage points (pp)'}")
        return value * (1000.0 if written == "s" else 1.0), False
    if written == "pp":
        if unit != "":
            raise ThresholdError(f"{where}: pp (percentage points) is for rates; this figure is in {unit}")
        return value / 100.0, False
    if unit == "":
        raise ThresholdError(f"{where}: say whether {value:g} is a share of the baseline (%) or percentage "
                             f"points (pp)")
    return value, False


# --- reading the baseline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    path: str
    summary: Summary
    unmatched: tuple[str, ...] = ()     # regressions the baseline had no value for


def load_baseline(path: str, problems: Problems) -> Summary | None:
    from pydantic import ValidationError

    from .summary import Summary
    p = Path(path)
    try:
        return Summary.read(p)
    except FileNotFoundError:
        problems.add(f"--baseline: no such file: {p}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(f"--baseline: cannot read {p}: {exc}")
    except ValidationError as exc:
        errors = exc.errors()
        what = f"{'/'.join(str(x) for x in errors[0]['loc'])}: {errors[0]['msg']}" if errors else str(exc)
        problems.add(f"--baseline: {p} is not a summary.json this suite wrote ({what})")
    except ValueError as exc:
        problems.add(f"--baseline: {p} is not JSON: {exc}")
    return None


def baseline_value(b: Summary, r: Regression | Threshold) -> float | None:
    """The baseline's value of the figure a regression compares, or None if the baseline does not have it."""
    filters = dict(r.filters)
    for doc in b.thresholds:     # a threshold over the same selection: its exact observed value
        if (doc.metric, doc.aggregation, doc.filters, doc.slo_ms) == (r.metric, r.aggregation, filters, r.slo_ms) and \
                (r.aggregation != "p" or _pct_of(doc.expression) == r.percentile) and doc.observed is not None:
            return doc.observed
    if set(filters) - {"stage"}:
        return None
    stage = next((s for s in b.stages if s.name == filters["stage"]), None) if filters else None
    if filters and stage is None:
        return None
    if r.metric == "latency":
        lat = (stage.latency_ms if stage is not None else b.latency_ms).model_dump(by_alias=True)
        if r.aggregation in ("p", "med"):
            q = 50.0 if r.aggregation == "med" else r.percentile
            named = {50.0: "p50", 90.0: "p90", 95.0: "p95", 99.0: "p99", 99.9: "p99.9", 100.0: "max"}
            if q in named and lat.get(named[q]) is not None:
                return float(lat[named[q]])
            if stage is None:
                return next((v for p, v in b.latency_distribution if p == q and v is not None), None)
            return None
        key = {"avg": "mean", "max": "max", "min": "min"}[r.aggregation]
        return None if lat.get(key) is None else float(lat[key])
    requests = stage.requests if stage is not None else b.requests
    failures = stage.failures if stage is not None else b.failures
    dropped = stage.dropped if stage is not None else b.dropped
    scheduled = requests + dropped
    if r.metric in ("success", "failures") and scheduled:
        success = (requests - failures) / scheduled
        return success if r.metric == "success" else 1.0 - success
    if r.metric == "dropped":
        return float(dropped) if r.aggregation == "count" else (dropped / scheduled if scheduled else None)
    if r.metric == "requests":
        if r.aggregation == "count":
            return float(requests)
        return stage.rps if stage is not None else b.rps
    if r.metric == "goodput" and b.goodput is not None and b.goodput.slo_ms == r.slo_ms:
        if stage is not None:
            return stage.goodput_rate if r.aggregation == "rate" else stage.goodput_rps
        return {"rate": b.goodput.rate, "rps": b.goodput.rps, "count": float(b.goodput.requests)}[r.aggregation]
    return None


def _pct_of(expression: str) -> float | None:
    m = re.match(r"^p\(([\d.]+)\)", expression)
    return float(m.group(1)) if m else None


def compile_regressions(regressions: Sequence[Regression], b: Summary) -> tuple[list[Threshold], list[str]]:
    """(thresholds for the regressions the baseline has a value for, words for those it has not)."""
    out, unmatched = [], []
    for r in regressions:
        base = baseline_value(b, r)
        if base is None or not math.isfinite(base):
            unmatched.append(f"{r.source}: the baseline has no such value")
            continue
        out.append(r.threshold(base))
    return out, unmatched


# --- deltas -----------------------------------------------------------------------------------------


def compare(current: Summary, baseline: Baseline) -> BaselineDoc:
    from .summary import BaselineDoc, DeltaDoc
    b = baseline.summary

    def delta(name: str, metric: str, aggregation: str, base: float | None, now: float | None) -> DeltaDoc:
        unit = unit_for(metric, aggregation)
        diff = None if base is None or now is None else now - base
        pct = None if diff is None or not base else diff / abs(base) * 100.0
        worse = None
        # Within 1 % (a hundredth of a percentage point for a rate) is no change worth a word.
        if diff is not None and (abs(diff) >= 0.0001 if unit == "" else pct is not None and abs(pct) >= 1.0):
            worse = (diff > 0) == (WORSE.get(metric, 1) > 0)
        return DeltaDoc(name=name, metric=metric, aggregation=aggregation, unit=unit,
                        baseline=None if base is None else round(base, 6), current=None if now is None else
                        round(now, 6), delta=None if diff is None else round(diff, 6),
                        delta_percent=None if pct is None else round(pct, 3), worse=worse)

    rows = []
    mine = current.latency_ms.model_dump(by_alias=True)
    theirs = b.latency_ms.model_dump(by_alias=True)
    for key in ("p50", "p90", "p95", "p99", "p99.9", "max", "mean"):
        rows.append(delta(f"latency {key}", "latency", "p", theirs.get(key), mine.get(key)))
    rows.append(delta("success rate", "success", "rate", b.success_rate, current.success_rate))
    if current.goodput is not None and b.goodput is not None and current.goodput.slo_ms == b.goodput.slo_ms:
        rows.append(delta(f"goodput within {current.goodput.slo_ms:g} ms", "goodput", "rate", b.goodput.rate,
                          current.goodput.rate))
    rows.append(delta("request rate", "requests", "rps", b.rps, current.rps))
    by_label = {t.label: t for t in b.thresholds}
    shared = [delta(t.label, t.metric, t.aggregation, by_label[t.label].observed, t.observed)
              for t in current.thresholds if t.label in by_label and t.baseline is None]
    return BaselineDoc(path=baseline.path, scenario=b.scenario.name, target=b.target.name, started_at=b.started_at,
                       verdict=b.verdict, figures=rows, thresholds=shared, unmatched=list(baseline.unmatched),
                       regressions=[t.label for t in current.thresholds if t.baseline is not None])


def with_baseline(thresholds: Sequence[Threshold], regressions: Sequence[Regression], path: str,
                  problems: Problems) -> tuple[tuple[Threshold, ...], Baseline | None]:
    """The scenario's thresholds with its regressions compiled against the baseline at `path`."""
    b = load_baseline(path, problems)
    if b is None:
        return tuple(thresholds), None
    compiled, unmatched = compile_regressions(regressions, b)
    return tuple(thresholds) + tuple(compiled), Baseline(str(Path(path)), b, tuple(unmatched))

