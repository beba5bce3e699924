"""junit.xml: one test case per threshold, so CI shows which part of the SLA broke.

A failed threshold is a <failure>; one that could not be judged (too few samples, or an interval
that straddles its limit: inconclusive) is an <error>, as is the
extra case "run is valid" when the run proves nothing (unreachable target, saturated load
generator, too little data) — CI then shows a broken run, not a broken SLA.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from ..summary import Summary, delta_words
from . import gatewayview

__all__ = ["render"]

# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _t(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if value is None else str(value))


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6f}".rstrip("0").rstrip(".")
    return _t(x)


def render(summary: Summary) -> str:
    scenario = _t(summary.scenario.name or "scenario")
    suite_name = f"sla.{scenario}"
    results = summary.thresholds
    invalid = summary.verdict == "invalid"
    failures = sum(1 for r in results if r.verdict == "fail")
    errors = sum(1 for r in results if r.verdict in ("insufficient", "inconclusive")) + (1 if invalid else 0)
    tests = len(results) + 1
    duration = f"{summary.duration_s:.3f}"

    root = ET.Element("testsuites", name="loadtest", tests=str(tests), failures=str(failures),
                      errors=str(errors), time=duration)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(tests), failures=str(failures),
                          errors=str(errors), skipped="0", time=duration,
                          timestamp=_t(summary.started_at).rstrip("Z"))
    props = ET.SubElement(suite, "properties")
    target = summary.target
    for name, value in (("target", target.name), ("api", target.api), ("base_url", target.base_url),
                        ("model", target.model), ("verdict", summary.verdict), ("exit_code", summary.exit_code),
                        ("requests", summary.requests), ("rps", summary.rps),
                        ("success_rate", summary.success_rate), ("p99_ms", summary.latency_ms.p99),
                        ("confidence", summary.scenario.confidence)):
        ET.SubElement(props, "property", name=name, value=_fmt(value))
    if summary.gateway is not None:   # the [sut] gateway's figures; its thresholds are test cases below
        for name, value in gatewayview.properties(summary.gateway):
            if value is not None:
                ET.SubElement(props, "property", name=name, value=_fmt(value))

    valid = ET.SubElement(suite, "testcase", classname=suite_name, name="run is valid", time="0")
    if invalid:
        reasons = [_t(r.text) for r in summary.reasons if r.kind not in ("breach", "note")] or \
            [_t(r) for r in summary.reason_texts]
        err = ET.SubElement(valid, "error", type="InvalidRun",
                            message=reasons[0] if reasons else "the run proves nothing")
        err.text = "\n".join(_t(r) for r in summary.reason_texts)

    for r in results:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=_t(r.label), time="0")
        detail = _t(r.detail)
        interval = f"\ninterval: {_t(r.interval_words())}" if r.interval is not None else ""
        if r.verdict == "fail":
            el = ET.SubElement(case, "failure", type="ThresholdFailed", message=detail)
            el.text = f"{_t(r.label)}\n{detail}\nsamples: {r.samples}{interval}"
        elif r.verdict == "insufficient":
            el = ET.SubElement(case, "error", type="InsufficientData", message=detail)
            el.text = f"{_t(r.label)}\n{detail}"
        elif r.verdict == "inconclusive":
            el = ET.SubElement(case, "error", type="Inconclusive", message=detail)
            el.text = f"{_t(r.label)}\n{detail}\nsamples: {r.samples}{interval}\n{_t(r.undecided_words())}"
        else:
            ET.SubElement(case, "system-out").text = detail + interval
    suite_out: list[str] = []
    if summary.baseline is not None:
        b = summary.baseline
        ET.SubElement(props, "property", name="baseline", value=_t(b.path))
        rows = []
        for d in [*b.figures, *b.thresholds]:
            base, now, change = delta_words(d)
            rows.append(f"{d.name}: {base} -> {now} ({change})")
        suite_out.append(f"against the baseline {b.path} ({b.scenario} against {b.target}, {b.started_at}):\n"
                         + "\n".join(rows))
    if summary.gateway is not None:
        g = summary.gateway
        text = [f"{name}: {value}" for name, value in gatewayview.figure_rows(g)]
        text += [" | ".join(f"{h}: {v}" for h, v in zip(gatewayview.STAGE_HEADER, row))
                 for row in gatewayview.stage_rows(g)]
        suite_out.append("the gateway, from both ends:\n" + "\n".join(text))
    if suite_out:   # one <system-out> per suite, as JUnit's schema has it
        ET.SubElement(suite, "system-out").text = _t("\n\n".join(suite_out))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
