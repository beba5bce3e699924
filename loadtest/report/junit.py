"""junit.xml: one test case per threshold, so CI shows which part of the SLA broke.

A failed threshold is a <failure>; one that could not be judged is an <error>, as is the
extra case "run is valid" when the run proves nothing (unreachable target, saturated load
generator, too little data) — CI then shows a broken run, not a broken SLA.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

__all__ = ["render"]

# Characters XML 1.0 cannot carry at all, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _t(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if value is None else str(value))


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6f}".rstrip("0").rstrip(".")
    return _t(x)


def render(summary: Mapping[str, Any]) -> str:
    scenario = _t(summary.get("scenario") or "scenario")
    suite_name = f"sla.{scenario}"
    results = list(summary.get("thresholds") or [])
    invalid = summary.get("verdict") == "invalid"
    failures = sum(1 for r in results if r.get("verdict") == "fail")
    errors = sum(1 for r in results if r.get("verdict") == "insufficient") + (1 if invalid else 0)
    tests = len(results) + 1
    duration = f"{float(summary.get('duration_s') or 0.0):.3f}"

    root = ET.Element("testsuites", name="loadtest", tests=str(tests), failures=str(failures),
                      errors=str(errors), time=duration)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(tests), failures=str(failures),
                          errors=str(errors), skipped="0", time=duration,
                          timestamp=_t(summary.get("started_at", "")).rstrip("Z"))
    props = ET.SubElement(suite, "properties")
    target = summary.get("target") or {}
    latency = summary.get("latency_ms") or {}
    for name, value in (("target", target.get("name")), ("api", target.get("api")),
                        ("base_url", target.get("base_url")), ("model", target.get("model")),
                        ("verdict", summary.get("verdict")), ("exit_code", summary.get("exit_code")),
                        ("requests", summary.get("requests")), ("rps", summary.get("rps")),
                        ("success_rate", summary.get("success_rate")), ("p99_ms", latency.get("p99"))):
        ET.SubElement(props, "property", name=name, value=_fmt(value))

    valid = ET.SubElement(suite, "testcase", classname=suite_name, name="run is valid", time="0")
    if invalid:
        reasons = [_t(r) for r in summary.get("reasons") or []]
        err = ET.SubElement(valid, "error", type="InvalidRun",
                            message=reasons[0] if reasons else "the run proves nothing")
        err.text = "\n".join(reasons)

    for r in results:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=_t(r.get("label")), time="0")
        detail = _t(r.get("detail"))
        if r.get("verdict") == "fail":
            el = ET.SubElement(case, "failure", type="ThresholdFailed", message=detail)
            el.text = f"{_t(r.get('label'))}\n{detail}\nsamples: {_t(r.get('samples'))}"
        elif r.get("verdict") == "insufficient":
            el = ET.SubElement(case, "error", type="InsufficientData", message=detail)
            el.text = f"{_t(r.get('label'))}\n{detail}"
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
