"""The live SLA view in Locust's web UI: a tab with each threshold, its exact value, pass/fail.

Locust's UI polls /stats/requests every couple of seconds; an `extended_stats`
entry in that answer fills an extra tab declared in the template args (the
mechanism of Locust's examples/extend_web_ui.py). /sla answers the same as JSON.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import gevent
from flask import Response, request
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

if TYPE_CHECKING:
    from .plugin import SuiteRun

COLUMNS = [{"key": "threshold", "title": "Threshold"}, {"key": "observed", "title": "Observed (exact)"},
           {"key": "limit", "title": "Limit"}, {"key": "verdict", "title": "Verdict"},
           {"key": "samples", "title": "Samples"}]
GATE_WAIT_S = 60.0


def gate_pending(run: SuiteRun) -> bool:
    """Users are being stopped, or the run that stopped is being gated: its verdict is moments away."""
    if run.summary is not None or run.started_perf is None:
        return False
    state = run.runner.state
    if state in (STATE_CLEANUP, STATE_STOPPING):
        return True
    return state == STATE_STOPPED and run.finalizer is not None and not run.finalizer.dead


def sla_document(run: SuiteRun) -> dict[str, Any]:
    rows = run.live_rows()
    if run.summary is not None:
        state, verdict = "finished", run.summary["verdict"]
    elif run.started_perf is None:
        state, verdict = "not started", None
    else:
        state = "running"
        verdict = "failing so far" if any(r["verdict"] == "FAIL" for r in rows) else "passing so far"
    doc: dict[str, Any] = {"scenario": run.scenario.name, "target": run.target.name, "base_url": run.target.base_url,
                           "state": state, "verdict": verdict, "elapsed_s": round(run.elapsed_s(), 1),
                           "min_samples": run.scenario.min_samples, "thresholds": rows}
    if run.summary is not None:
        doc["exit_code"] = run.summary["exit_code"]
        doc["reasons"] = run.summary.get("reasons", [])
        doc["report_dir"] = str(run.report_dir)
    return doc


def install_sla_view(web_ui: Any, run: SuiteRun) -> None:
    web_ui.template_args["extended_tabs"] = [{"title": "SLA", "key": "sla"}]
    web_ui.template_args["extended_tables"] = [{"key": "sla", "structure": COLUMNS}]

    @web_ui.app.before_request
    def hold_the_last_poll() -> None:
        # Locust's UI stops polling once an answer says anything but spawning/running, so a poll
        # landing while users stop or the gate runs would leave the SLA tab on "running" for good.
        # Hold that one answer (cooperatively) until the verdict is in.
        if request.path == "/stats/requests":
            deadline = time.monotonic() + GATE_WAIT_S
            while gate_pending(run) and time.monotonic() < deadline:
                gevent.sleep(0.1)

    @web_ui.app.after_request
    def add_sla_rows(response: Response) -> Response:
        if request.path != "/stats/requests" or response.mimetype != "application/json":
            return response
        body = response.get_json(silent=True)
        if isinstance(body, dict):
            doc = sla_document(run)
            rows = doc["thresholds"] + [{"threshold": f"— run: {doc['state']}", "observed": "",
                                         "limit": "", "verdict": str(doc["verdict"] or "").upper(),
                                         "samples": ""}]
            body["extended_stats"] = [{"key": "sla", "data": rows}]
            response.set_data(json.dumps(body))
        return response

    @web_ui.app.route("/sla")
    def sla() -> Response:
        return Response(json.dumps(sla_document(run)), mimetype="application/json")
