"""The live SLA view in Locust's web UI, on Locust's own extension points.

- `GET /sla`: the live SLA document (loadtest.locust.live), what every view below renders.
- `GET /sla/view`: the SLA page (static/sla.html): each threshold with its exact value, limit,
  headroom and verdict in colour, a chart of each latency threshold against its limit with the
  stages and actions, the run's stage, time left, generator health and the verdict so far; Start
  and Stop; the report once the run is judged.
- `GET /sla/runs/<n>/<file>`: run n's report folder (report.html, summary.json, ...), served as is.
- Locust's own page gets an SLA tab (the template args `extended_tabs` / `extended_tables` and an
  `extended_stats` entry in each /stats/requests answer: Locust's examples/extend_web_ui.py),
  links to the above in its Download Data tab (`extended_csv_files`), P99 in its Charts tab
  (`locust.stats.PERCENTILES_TO_CHART`), and a small script (static/locust-overlay.js) that says on
  the start form that the scenario drives the load, colours the SLA tab's verdicts and links the
  SLA page and the report. Without the script the tab still reads; `compat.py` lists every hook.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
import locust.stats
from flask import Blueprint, Response, abort, request, send_from_directory
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING

from .live import LiveView, columns

if TYPE_CHECKING:
    from .run import SuiteRun, TestRun

STATIC = Path(str(resources.files("loadtest.locust") / "static"))
GATE_WAIT_S = 60.0
SAMPLE_S = 1.0
TAB_KEY = "sla"
OVERLAY = ('<link rel="stylesheet" href="/sla/static/locust-overlay.css">'
           '<script src="/sla/static/locust-overlay.js" defer></script>')


def gate_pending(suite: SuiteRun) -> bool:
    """Users are being stopped, or the run that stopped is being gated: its verdict is moments away."""
    run = suite.current
    if run is None or run.summary is not None:
        return False
    state = suite.runner.state
    if state in (STATE_CLEANUP, STATE_STOPPING):
        return True
    return state == STATE_STOPPED and run.finalizer is not None and not run.finalizer.dead


def tab_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Locust's SLA tab: one row per threshold (the document's cells), then the run's state."""
    rows = [dict(t["cells"]) for t in doc["thresholds"]]
    run = doc["run"]
    state = {key: "" for key in (c["key"] for c in doc["columns"])}
    state.update(threshold=f"Run {run['number'] or ''}: {run['state']}".replace(" : ", ": "),
                 stage=(run.get("stage") or {}).get("name", "—"), observed=run.get("text", ""),
                 headroom=f"generator {doc['generator']['text']}", verdict=doc["verdict"]["headline"])
    return rows + [state]


def install_sla_view(web_ui: Any, suite: SuiteRun) -> LiveView:
    live = LiveView(suite)
    structure = [{"key": key, "title": title} for key, title, _ in columns(suite)]
    web_ui.template_args["extended_tabs"] = [{"title": "SLA", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": structure}]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "/sla/view", "title": "Live SLA view: thresholds, charts, the verdict so far, the report"},
        {"href": "/sla", "title": "The live SLA document (JSON)"}]
    if 0.99 not in locust.stats.PERCENTILES_TO_CHART:
        locust.stats.PERCENTILES_TO_CHART = [*locust.stats.PERCENTILES_TO_CHART, 0.99][-6:]
    suite.environment.events.test_start.add_listener(lambda **_: _start_sampling(live, suite))

    app = web_ui.app
    guarded = web_ui.auth_required_if_enabled
    blueprint = Blueprint("loadtest_sla", __name__, static_folder=str(STATIC), static_url_path="/sla/static")

    @app.before_request
    def hold_the_last_poll() -> None:
        # Locust's UI stops polling once an answer says anything but spawning/running, so a poll
        # landing while users stop or the gate runs would leave the SLA tab on "running" for good.
        # Hold that one answer (cooperatively) until the verdict is in.
        if request.path == "/stats/requests":
            deadline = time.monotonic() + GATE_WAIT_S
            while gate_pending(suite) and time.monotonic() < deadline:
                gevent.sleep(0.1)

    @app.after_request
    def extend(response: Response) -> Response:
        if request.path == "/stats/requests" and response.mimetype == "application/json":
            body = response.get_json(silent=True)
            if isinstance(body, dict):
                body["extended_stats"] = [{"key": TAB_KEY, "data": tab_rows(live.document(series=False))}]
                response.set_data(json.dumps(body))
        elif request.path == "/" and response.mimetype == "text/html" and response.status_code == 200:
            page = response.get_data(as_text=True)
            if "</body>" in page and OVERLAY not in page:
                response.set_data(page.replace("</body>", OVERLAY + "</body>", 1))
        return response

    @blueprint.route("/sla")
    @guarded
    def sla() -> Response:
        series = request.args.get("series", "1") != "0"
        return Response(json.dumps(live.document(series=series)), mimetype="application/json",
                        headers={"Cache-Control": "no-store"})

    @blueprint.route("/sla/view")
    @guarded
    def view() -> Response:
        return send_from_directory(STATIC, "sla.html", max_age=0)

    @blueprint.route("/sla/runs/<int:number>/<path:name>")
    @guarded
    def report(number: int, name: str) -> Response:
        folder = live.report_dir(number)
        if folder is None:
            abort(404)
        return send_from_directory(Path(folder).resolve(), name, max_age=0)

    app.register_blueprint(blueprint)
    return live


def _start_sampling(live: LiveView, suite: SuiteRun) -> None:
    run = suite.current
    if run is not None and not suite.is_worker:
        gevent.spawn(_sample, live, run)


def _sample(live: LiveView, run: TestRun) -> None:
    """Once a second until the run stops: the chart's points (the value each threshold is judged at)."""
    while run.stopped_perf is None:
        live.sample(run)
        gevent.sleep(SAMPLE_S)
    live.sample(run)
