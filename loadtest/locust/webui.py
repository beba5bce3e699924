"""The live SLA view in Locust's web UI: a tab with each threshold, its exact value, pass/fail.

Locust's UI polls /stats/requests every couple of seconds; an `extended_stats` entry in that
answer fills an extra tab declared in the template args (the mechanism of Locust's
examples/extend_web_ui.py). /sla answers the same as JSON. The verdicts come from the gate's
own `judge`, run live.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import gevent
from flask import Response, request
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

from ..thresholds import format_value

if TYPE_CHECKING:
    from .run import SuiteRun

COLUMNS = [{"key": "threshold", "title": "Threshold"}, {"key": "observed", "title": "Observed (exact)"},
           {"key": "limit", "title": "Limit"}, {"key": "verdict", "title": "Verdict"},
           {"key": "samples", "title": "Samples"}]
GATE_WAIT_S = 60.0


def gate_pending(suite: SuiteRun) -> bool:
    """Users are being stopped, or the run that stopped is being gated: its verdict is moments away."""
    run = suite.current
    if run is None or run.summary is not None:
        return False
    state = suite.runner.state
    if state in (STATE_CLEANUP, STATE_STOPPING):
        return True
    return state == STATE_STOPPED and run.finalizer is not None and not run.finalizer.dead


def rows(suite: SuiteRun) -> list[dict[str, Any]]:
    run = suite.current
    if run is None:
        return []
    finished = run.summary is not None
    out = []
    for r in run.live_verdict().results if not finished else []:
        t = r.threshold
        collecting = f"COLLECTING ({r.samples}/{suite.scenario.min_samples})"
        verdict = {"pass": "PASS", "fail": "FAIL"}.get(r.verdict, collecting)
        observed = "—" if r.observed is None else format_value(t.metric, t.aggregation, r.observed)
        out.append({"threshold": t.label(), "observed": observed,
                    "limit": f"{t.op} {format_value(t.metric, t.aggregation, t.value)}", "verdict": verdict,
                    "samples": r.samples})
    if finished and run.summary is not None:
        for d in run.summary.thresholds:
            out.append({"threshold": d.label, "observed": "—" if d.observed is None else
                        format_value(d.metric, d.aggregation, d.observed),
                        "limit": f"{d.op} {format_value(d.metric, d.aggregation, d.limit)}",
                        "verdict": {"pass": "PASS", "fail": "FAIL"}.get(d.verdict, "INSUFFICIENT"),
                        "samples": d.samples})
    return out


def sla_document(suite: SuiteRun) -> dict[str, Any]:
    run = suite.current
    table = rows(suite)
    verdict: str | None
    if run is None:
        state, verdict = "not started", None
    elif run.summary is not None:
        state, verdict = "finished", run.summary.verdict
    else:
        state = "running"
        verdict = "failing so far" if any(r["verdict"] == "FAIL" for r in table) else "passing so far"
    doc: dict[str, Any] = {"scenario": suite.scenario.name, "target": suite.target.name,
                           "base_url": suite.target.base_url, "state": state, "verdict": verdict,
                           "elapsed_s": round(run.schedule_elapsed_s(), 1) if run else 0.0,
                           "min_samples": suite.scenario.min_samples, "run": run.number if run else 0,
                           "thresholds": table}
    if run is not None and run.summary is not None:
        doc["exit_code"] = run.summary.exit_code
        doc["reasons"] = run.summary.reason_texts
        doc["report_dir"] = run.summary.report_dir
    return doc


def install_sla_view(web_ui: Any, suite: SuiteRun) -> None:
    web_ui.template_args["extended_tabs"] = [{"title": "SLA", "key": "sla"}]
    web_ui.template_args["extended_tables"] = [{"key": "sla", "structure": COLUMNS}]

    @web_ui.app.before_request
    def hold_the_last_poll() -> None:
        # Locust's UI stops polling once an answer says anything but spawning/running, so a poll
        # landing while users stop or the gate runs would leave the SLA tab on "running" for good.
        # Hold that one answer (cooperatively) until the verdict is in.
        if request.path == "/stats/requests":
            deadline = time.monotonic() + GATE_WAIT_S
            while gate_pending(suite) and time.monotonic() < deadline:
                gevent.sleep(0.1)

    @web_ui.app.after_request
    def add_sla_rows(response: Response) -> Response:
        if request.path != "/stats/requests" or response.mimetype != "application/json":
            return response
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            doc = sla_document(suite)
            table = doc["thresholds"] + [{"threshold": f"— run: {doc['state']}", "observed": "", "limit": "",
                                          "verdict": str(doc["verdict"] or "").upper(), "samples": ""}]
            body["extended_stats"] = [{"key": "sla", "data": table}]
            response.set_data(json.dumps(body))
        return response

    @web_ui.app.route("/sla")
    def sla() -> Response:
        return Response(json.dumps(sla_document(suite)), mimetype="application/json")
