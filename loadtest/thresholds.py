"""k6's threshold syntax, parsed into values the gate can evaluate.

A scenario's ``[thresholds]`` table reads like k6's ``options.thresholds``::

    [thresholds]
    latency = ["p(99)<600", "p(50)<300"]
    "latency{stage:surge}" = [{ threshold = "p(99)<600", abort_on_fail = true, delay_abort_eval = "10s" }]
    success = ["rate>=0.9995"]
    http_req_failed = ["rate<0.0005"]          # k6 names are accepted as aliases
    "goodput{slo:600ms}" = ["rate>=0.999"]     # succeeded within 600 ms, as a share of scheduled starts
    gateway_overhead = ["p(99)<50"]            # with a [sut] gateway: judged from both ends at the run's end

Everything is checked when the scenario loads, so a typo is one clear error before any
process starts rather than a threshold that silently never fires.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .fields import parse_duration

__all__ = [
    "Threshold", "ThresholdError", "parse_thresholds", "parse_duration",
    "METRICS", "AGGREGATIONS", "FILTER_TAGS", "TIME_METRICS", "GATEWAY_METRICS", "format_value", "format_limit",
    "unit_for", "parse_key",
]


class ThresholdError(ValueError):
    """A threshold key or expression that cannot be understood; the message names it."""


# canonical metric -> aggregations it supports
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "latency": ("p", "avg", "min", "max", "med"),
    "success": ("rate",),
    "failures": ("rate",),
    "requests": ("count", "rate", "rps"),
    "dropped": ("count", "rate"),
    # Time to the first image of a streamed generation (a partial image, or the whole image when none was
    # asked for): to image streaming what time to first token is to LLM benchmarks. k6 has no such metric.
    "first_image": ("p", "avg", "min", "max", "med"),
    "goodput": ("rate", "rps", "count"),
    # A [sut] gateway's, from both ends (loadtest/gateway_figures.py), judged once the run has ended: what
    # it added per request (client minus provider side), upstream calls per client request, 200s with no
    # image, answers of another size than asked, calls after the run ended, the upstream bill, fallbacks.
    "gateway_overhead": ("p", "avg", "med", "max"),
    "upstream_calls_per_request": ("avg", "max"),
    "silent_success": ("count", "rate"),
    "capability_drift": ("count",),
    "orphaned_upstream_calls": ("count",),
    "upstream_cost_usd": ("value",),
    "gateway_failovers": ("count",),
}
METRICS = tuple(AGGREGATIONS)
GATEWAY_METRICS = ("gateway_overhead", "upstream_calls_per_request", "silent_success", "capability_drift",
                   "orphaned_upstream_calls", "upstream_cost_usd", "gateway_failovers")
# A gateway figure is the whole run's or one stage's (the record's windows); orphaned calls come after every stage.
GATEWAY_TAGS = ("stage",)
# Metrics measured in milliseconds from a generation's start: read alike by the gate and the reports.
TIME_METRICS = ("latency", "first_image")
ALIASES = {
    "http_req_duration": "latency",
    "http_req_failed": "failures",
    "http_reqs": "requests",
    "dropped_iterations": "dropped",
    "checks": "success",
}
# The recorder keys its data by these; expected_response (k6's tag) picks successful or
# failed responses only, e.g. latency{expected_response:true}.
FILTER_TAGS = ("target", "name", "stage", "expected_response")
# goodput's own tag: the latency objective a successful request must meet to count, e.g. goodput{slo:600ms}.
SLO_TAG = "slo"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_KEY_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\{(.*)\})?\s*$", re.S)
_EXPR_RE = re.compile(
    r"^\s*(?P<agg>p\s*\((?P<pct>[^)]*)\)|[A-Za-z_]+)\s*(?P<op>[<>=!]+)\s*(?P<val>.*?)\s*$", re.S)
_OPTION_KEYS = {
    "threshold": "threshold",
    "abort_on_fail": "abort_on_fail", "abortOnFail": "abort_on_fail",
    "delay_abort_eval": "delay_abort_eval", "delayAbortEval": "delay_abort_eval",
}
_FRACTION_METRICS = {"success", "failures", "goodput", "silent_success"}


@dataclass(frozen=True)
class Threshold:
    metric: str
    filters: tuple[tuple[str, str], ...]
    aggregation: str
    percentile: float | None
    op: str
    value: float
    source: str
    abort_on_fail: bool = False
    delay_abort_eval_s: float = 0.0
    slo_ms: float | None = None        # goodput: the latency a successful request must keep to count
    baseline: float | None = None      # a regression: the baseline's value its limit was set from
    allowance: str = ""                # a regression: how much worse it may be, in words ("+10 %, floor 10 ms")

    @property
    def key(self) -> str:
        """The [thresholds] key it was written under, e.g. "latency{stage:surge}"."""
        return self.source.rpartition(": ")[0]

    @property
    def unit(self) -> str:
        return unit_for(self.metric, self.aggregation)

    def aggregation_text(self) -> str:
        if self.aggregation == "p":
            return f"p({_num(self.percentile)})"
        return self.aggregation

    def expression(self) -> str:
        """The canonical expression, e.g. "p(99)<600"."""
        return f"{self.aggregation_text()}{self.op}{_num(self.value)}"

    def filter_text(self) -> str:
        shown = [f"{k}={v}" for k, v in self.filters]
        if self.slo_ms is not None:
            shown.insert(0, f"slo={_num(self.slo_ms)} ms")
        return ", ".join(shown)

    def label(self) -> str:
        unit = self.unit
        limit = _num(self.value) + (f" {unit}" if unit and unit != "requests" else "")
        text = f"{self.metric} {self.aggregation_text()} {self.op} {limit}"
        if self.filters or self.slo_ms is not None:
            text += f" [{self.filter_text()}]"
        if self.baseline is not None:
            text += f" (baseline {_num(self.baseline)}{f' {unit}' if unit and unit != 'requests' else ''} " \
                    f"{self.allowance})"
        return text

    def check(self, observed: float) -> bool:
        if observed is None or (isinstance(observed, float) and math.isnan(observed)):
            return False
        return _OPS[self.op](observed, self.value)


def unit_for(metric: str, aggregation: str) -> str:
    if metric in TIME_METRICS or metric == "gateway_overhead":
        return "ms"
    if metric == "upstream_calls_per_request":
        return "calls"
    if metric == "upstream_cost_usd":
        return "USD"
    if metric in GATEWAY_METRICS and aggregation == "count":
        return "requests"
    if metric in ("requests", "goodput") and aggregation != "rate":
        return "requests" if aggregation == "count" else "req/s"
    if metric == "requests":
        return "req/s"
    if metric == "dropped" and aggregation == "count":
        return "requests"
    return ""


def format_value(metric: str, aggregation: str, value: float | None) -> str:
    """A value as a person reads it: "712.4 ms", "99.91 %", "1,180.2 req/s", "42 requests"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    unit = unit_for(metric, aggregation)
    if unit == "ms":
        if float(value).is_integer():
            return f"{value:,.0f} ms"
        return f"{value:,.1f} ms" if value >= 10 else f"{value:,.3f} ms"
    if unit == "req/s":
        return f"{value:,.0f} req/s" if float(value).is_integer() else f"{value:,.1f} req/s"
    if unit == "requests":
        return f"{value:,.0f}"
    if unit == "calls":
        return f"{round(value, 3):,g} calls"
    if unit == "USD":
        return f"${value:,.2f}" if abs(value) >= 100 else f"${value:,.4f}"
    return _percent(value)


def format_limit(metric: str, aggregation: str, value: float) -> str:
    """A limit as written, read as a person reads it: a rate as a percentage with no trailing zeros
    ("99.95 %", not "99.950 %"); anything else as format_value has it."""
    if unit_for(metric, aggregation) == "":
        return f"{value * 100:.6g} %"
    return format_value(metric, aggregation, value)


def _percent(fraction: float) -> str:
    pct = fraction * 100
    # Enough digits that 99.95 % and 99.94 % do not both print as 99.9 %.
    if pct == 0 or pct == 100:
        return f"{pct:.0f} %"
    if abs(pct) >= 99 or abs(pct) < 1:
        return f"{pct:.3f} %"
    return f"{pct:.2f} %"


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def parse_thresholds(table: Mapping[str, Any]) -> list[Threshold]:
    if not isinstance(table, Mapping):
        raise ThresholdError(f"[thresholds] must be a table of metric = [expressions], got {type(table).__name__}")
    out: list[Threshold] = []
    for key, entries in table.items():
        if not isinstance(key, str):
            raise ThresholdError(f"thresholds: a key must be a string, got {key!r}")
        metric, filters, slo_ms = _parse_key(key)
        if isinstance(entries, (str, Mapping)):
            entries = [entries]
        if not isinstance(entries, list) or not entries:
            raise ThresholdError(f"thresholds.{key}: expected a list of expressions such as [\"p(99)<600\"], "
                                 f"got {entries!r}")
        for entry in entries:
            out.append(replace(_parse_entry(key, metric, filters, entry), slo_ms=slo_ms))
    return out


def parse_key(key: str) -> tuple[str, tuple[tuple[str, str], ...], float | None]:
    """A [thresholds] key -> (metric, filters, goodput's SLO in ms)."""
    return _parse_key(key)


def _parse_key(key: str) -> tuple[str, tuple[tuple[str, str], ...], float | None]:
    m = _KEY_RE.match(key)
    if not m:
        raise ThresholdError(f"thresholds: cannot read the key {key!r}; expected metric or metric{{tag:value}}, "
                             f"e.g. \"latency{{stage:surge}}\"")
    raw_metric, raw_filters = m.group(1), m.group(2)
    metric = ALIASES.get(raw_metric, raw_metric)
    if metric not in AGGREGATIONS:
        known = ", ".join(list(METRICS) + list(ALIASES))
        raise ThresholdError(f"thresholds.{key}: unknown metric {raw_metric!r} (known: {known})")
    filters: dict[str, str] = {}
    slo_ms: float | None = None
    tags = FILTER_TAGS + ((SLO_TAG,) if metric == "goodput" else ())
    if metric in GATEWAY_METRICS:
        tags = () if metric == "orphaned_upstream_calls" else GATEWAY_TAGS
    if raw_filters is not None:
        if not raw_filters.strip():
            raise ThresholdError(f"thresholds.{key}: empty filter {{}}; write e.g. {{stage:surge}} or leave it out")
        for part in raw_filters.split(","):
            tag, sep, value = part.partition(":")
            tag, value = tag.strip(), value.strip().strip("'\"")
            if not sep or not tag or not value:
                raise ThresholdError(f"thresholds.{key}: malformed filter {part.strip()!r}; "
                                     f"expected tag:value, e.g. stage:surge")
            if tag not in tags:
                hint = " (slo is goodput's: goodput{slo:600ms})" if tag == SLO_TAG else ""
                if metric in GATEWAY_METRICS:
                    hint = (" (a gateway figure is the run's or a stage's)" if tags else
                            " (orphaned calls arrive after every stage: it takes no filter)")
                raise ThresholdError(f"thresholds.{key}: unknown filter tag {tag!r} (known: {', '.join(tags)})"
                                     + hint)
            if tag in filters or (tag == SLO_TAG and slo_ms is not None):
                raise ThresholdError(f"thresholds.{key}: the filter tag {tag!r} is given twice")
            if tag == SLO_TAG:
                slo_ms = _parse_slo(key, value)
                continue
            if tag == "expected_response":
                if metric == "goodput":
                    raise ThresholdError(f"thresholds.{key}: goodput counts successful requests already; "
                                         f"expected_response does not apply to it")
                value = value.lower()
                if value not in ("true", "false"):
                    raise ThresholdError(f"thresholds.{key}: expected_response must be true or false, got {value!r}")
            filters[tag] = value
    if metric == "goodput" and slo_ms is None:
        raise ThresholdError(f"thresholds.{key}: goodput needs its latency objective, e.g. \"goodput{{slo:600ms}}\" "
                             f"(requests that succeeded within 600 ms)")
    return metric, tuple(sorted(filters.items())), slo_ms


def _parse_slo(key: str, value: str) -> float:
    """ "600ms", "0.6s", "1m" or a bare number of milliseconds (as latency limits are written)."""
    try:
        ms = float(value)
    except ValueError:
        try:
            ms = parse_duration(value) * 1000.0
        except ValueError as exc:
            raise ThresholdError(f"thresholds.{key}: slo: {exc}") from None
    if not math.isfinite(ms) or ms <= 0:
        raise ThresholdError(f"thresholds.{key}: slo must be a latency above 0, e.g. slo:600ms; got {value!r}")
    return ms


def _parse_entry(key: str, metric: str, filters: tuple[tuple[str, str], ...], entry: Any) -> Threshold:
    abort, delay = False, 0.0
    if isinstance(entry, Mapping):
        opts: dict[str, Any] = {}
        for k, v in entry.items():
            canon = _OPTION_KEYS.get(k)
            if canon is None:
                raise ThresholdError(f"thresholds.{key}: unknown option {k!r} (known: threshold, abort_on_fail, "
                                     f"delay_abort_eval; k6's abortOnFail and delayAbortEval also work)")
            if canon in opts:
                raise ThresholdError(f"thresholds.{key}: the option {canon} is given twice")
            opts[canon] = v
        if "threshold" not in opts:
            raise ThresholdError(f"thresholds.{key}: a table entry needs threshold = \"...\", "
                                 f"e.g. {{ threshold = \"p(99)<600\", abort_on_fail = true }}")
        expr = opts["threshold"]
        abort = opts.get("abort_on_fail", False)
        if not isinstance(abort, bool):
            raise ThresholdError(f"thresholds.{key}: abort_on_fail must be true or false, got {abort!r}")
        if abort and metric in GATEWAY_METRICS:
            raise ThresholdError(f"thresholds.{key}: abort_on_fail cannot apply: {metric} is judged once the run "
                                 f"has ended, from the providers' record behind the gateway")
        if "delay_abort_eval" in opts:
            try:
                delay = parse_duration(opts["delay_abort_eval"])
            except ValueError as exc:
                raise ThresholdError(f"thresholds.{key}: delay_abort_eval: {exc}") from None
    else:
        expr = entry
    if not isinstance(expr, str):
        raise ThresholdError(f"thresholds.{key}: an expression must be a string such as \"p(99)<600\", got {expr!r}")
    agg, pct, op, value = _parse_expression(key, metric, expr)
    return Threshold(metric=metric, filters=filters, aggregation=agg, percentile=pct, op=op, value=value,
                     source=f"{key.strip()}: {expr.strip()}", abort_on_fail=abort, delay_abort_eval_s=delay)


def _parse_expression(key: str, metric: str, expr: str) -> tuple[str, float | None, str, float]:
    where = f"thresholds.{key}: {expr.strip()!r}"
    m = _EXPR_RE.match(expr)
    if not m:
        raise ThresholdError(f"{where}: expected aggregation, operator and number, e.g. \"p(99)<600\" "
                             f"or \"rate<0.0005\"")
    agg_text, op, raw_value = m.group("agg"), m.group("op"), m.group("val")
    allowed = AGGREGATIONS[metric]
    pct: float | None = None
    if m.group("pct") is not None:
        agg = "p"
        try:
            pct = float(m.group("pct").strip())
        except ValueError:
            raise ThresholdError(f"{where}: bad percentile {m.group('pct').strip()!r}; "
                                 f"write p(99) or p(99.9)") from None
        if not (0 < pct <= 100) or not math.isfinite(pct):
            raise ThresholdError(f"{where}: the percentile must be above 0 and at most 100, got {_num(pct)}")
    else:
        agg = agg_text
    if agg not in allowed:
        forms = ", ".join("p(N)" if a == "p" else a for a in allowed)
        raise ThresholdError(f"{where}: {agg_text!r} is not an aggregation of {metric} (use {forms})")
    if op not in _OPS:
        raise ThresholdError(f"{where}: bad operator {op!r} (use one of {' '.join(_OPS)})")
    try:
        value = float(raw_value)
    except ValueError:
        hint = (" (units are implied: milliseconds for latency and first_image)"
                if re.search(r"[a-z]", raw_value or "") else "")
        raise ThresholdError(f"{where}: bad number {raw_value!r}{hint}") from None
    if not math.isfinite(value):
        raise ThresholdError(f"{where}: the limit must be a finite number, got {raw_value!r}")
    if agg == "rate" and (metric in _FRACTION_METRICS or metric == "dropped") and not 0 <= value <= 1:
        raise ThresholdError(f"{where}: a rate is a fraction between 0 and 1 "
                             f"(99.95 % is 0.9995), got {_num(value)}")
    return agg, pct, op, value
