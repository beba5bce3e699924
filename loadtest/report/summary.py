"""The summary.json document: everything the other writers (JUnit, Markdown, console, HTML) read.

Writers take this plain dict, never the recorder, so a report can be re-rendered from a
saved summary.json. NaN (an empty selection) becomes null, so the file is strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..gate import RunFacts, Verdict
from ..recorder import PERCENTILE_DEFINITION, Recorder, Selection

__all__ = ["build_summary", "latency_block", "json_safe", "LATENCY_POINTS"]

LATENCY_POINTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))


def _r(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def latency_block(sel: Selection) -> dict[str, float | None]:
    out = {k: _r(sel.percentile(p)) if sel.requests else None for k, p in LATENCY_POINTS}
    out.update(max=_r(sel.max_ms), min=_r(sel.min_ms), mean=_r(sel.mean_ms))
    return out


def json_safe(value: Any) -> Any:
    """Non-finite floats -> None, tuples -> lists, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _iso_utc(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_summary(*, scenario: Mapping, target: Mapping, recorder: Recorder, verdict: Verdict, facts: RunFacts,
                  started_at: datetime, duration_s: float, expected_latency: Mapping | None = None,
                  extra: Mapping | None = None) -> dict:
    total = recorder.select()
    stages = []
    for name, lo, hi in recorder.stages:
        sel = recorder.select({"stage": name})
        stages.append({"name": name, "start_s": lo, "end_s": hi, "requests": sel.requests,
                       "failures": sel.failures, "dropped": sel.dropped, "rps": _r(sel.rps),
                       "latency_ms": latency_block(sel)})
    thresholds = [{
        "metric": r.threshold.metric,
        "filters": dict(r.threshold.filters),
        "expression": r.threshold.expression(),
        "aggregation": r.threshold.aggregation,
        "label": r.threshold.label(),
        "observed": _r(r.observed, 6),
        "limit": r.threshold.value,
        "op": r.threshold.op,
        "unit": r.unit,
        "samples": r.samples,
        "verdict": r.verdict,
        "detail": r.detail,
        "abort_on_fail": r.threshold.abort_on_fail,
    } for r in verdict.results]
    doc: dict[str, Any] = {
        "scenario": str(scenario.get("name", "")),
        "description": str(scenario.get("description", "")),
        "target": {k: target.get(k) for k in ("name", "api", "base_url", "model")},
        "started_at": _iso_utc(started_at),
        "duration_s": _r(duration_s),
        "passed": verdict.passed,
        "verdict": verdict.status,
        "exit_code": verdict.exit_code,
        "reasons": list(verdict.reasons),
        "thresholds": thresholds,
        "requests": total.requests,
        "failures": total.failures,
        "dropped": total.dropped,
        "success_rate": _r(total.success_rate, 6),
        "attempts": total.attempts,
        "retries": max(0, total.attempts - total.requests),
        "failovers": total.failovers,
        "latency_ms": latency_block(total),
        "rps": _r(total.rps),
        "status_codes": dict(sorted(total.status_codes.items())),
        "peak_users": recorder.peak_users,
        "cost": {"usd": _r(total.cost_usd, 6), "images": total.ok,
                 "per_image_usd": _r(total.cost_usd / total.ok, 6) if total.ok else None},
        "stages": stages,
        "generator": {"saturated": facts.generator_saturated, "detail": facts.saturation_detail},
        "notes": list(facts.notes),
        "timeline": recorder.timeline(),
        "latency_distribution": [[p, _r(v)] for p, v in total.distribution()],
        "expected_latency": dict(expected_latency) if expected_latency is not None else None,
        "percentile_definition": PERCENTILE_DEFINITION,
        "files": {},
    }
    if total.clamped:
        doc["notes"].append(f"{total.clamped} latencies above one hour were recorded as one hour")
    if extra:
        doc.update(extra)
    return json_safe(doc)
