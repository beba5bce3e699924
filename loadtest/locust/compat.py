"""The parts of Locust the plugin relies on, checked by name, so an upgrade that removes one fails loudly.

`missing_hooks()` lists what is gone; `plugin.install()` refuses to run with any missing, and a
test runs it on every Locust the pinned range admits.
"""

from __future__ import annotations

import inspect
import re
from importlib import resources

import locust
import locust.html
import locust.runners
import locust.stats
from locust import events
from locust.env import Environment

EVENTS = ("init", "init_command_line_parser", "test_start", "test_stop", "spawning_complete", "request",
          "report_to_master", "worker_report", "quitting")
# Locust warns of any spawn rate over 100 users/s; a flash sale's surge asks for one on purpose, so the
# plugin filters that one log line by its opening words.
SPAWN_RATE_WARNING = "Your selected spawn rate is very high"
# The web UI's extension points (Locust's examples/extend_web_ui.py): template args the UI's bundle reads,
# and the chart setting it plots (locust.stats.PERCENTILES_TO_CHART, P99 added by the SLA view).
WEB_UI_KEYS = ("extendedTabs", "extendedTables", "extendedStats", "extendedCsvFiles", "percentilesToChart")
# The start form's fields, by name: the SLA view's script on Locust's page replaces them with a note when the
# scenario drives the load (loadtest/locust/static/locust-overlay.js).
START_FORM_FIELDS = ("userCount", "spawnRate")
# Routes of Locust's web UI the SLA page calls or extends.
WEB_UI_ROUTES = ("/swarm", "/stop", "/stats/requests")


def missing_hooks() -> list[str]:
    missing = [f"locust.events.{name}" for name in EVENTS if not hasattr(events, name)]
    runners = locust.runners
    for cls, attr in ((runners.MasterRunner, "register_message"), (runners.WorkerRunner, "send_message"),
                      (runners.MasterRunner, "clients"), (runners.Runner, "quit"), (runners.Runner, "stop")):
        if not hasattr(cls, attr) and attr not in inspect.signature(cls.__init__).parameters \
                and attr not in inspect.getsource(cls):
            missing.append(f"{cls.__name__}.{attr}")
    for name in ("STATE_MISSING", "STATE_SPAWNING", "STATE_RUNNING", "HEARTBEAT_LIVENESS"):
        if not hasattr(runners, name):
            missing.append(f"locust.runners.{name}")
    # Locust's own CSV files and HTML page, which the plugin writes itself (loadtest/locust/native.py).
    writer = getattr(locust.stats, "StatsCSVFileWriter", None)
    if writer is None or not hasattr(locust.stats, "PERCENTILES_TO_REPORT"):
        missing.append("locust.stats.StatsCSVFileWriter")
    else:
        source = inspect.getsource(writer)
        missing += [f"StatsCSVFileWriter.{attr}" for attr in (
            "stats_writer", "requests_csv", "failures_csv", "exceptions_csv", "requests_csv_filehandle",
            "stats_history_csv_filehandle", "failures_csv_filehandle", "exceptions_csv_filehandle")
            if not hasattr(writer, attr) and attr not in source]
    entry = inspect.getsource(locust.stats.StatsEntry)
    missing += [f"StatsEntry.{attr} (loadtest.locust.stats_window)" for attr in ("num_reqs_per_sec", "num_fail_per_sec")
                if f"self.{attr}" not in entry]
    if not hasattr(locust.html, "get_html_report"):
        missing.append("locust.html.get_html_report")
    if not hasattr(locust, "LoadTestShape"):
        missing.append("locust.LoadTestShape")
    if "process_exit_code" not in inspect.getsource(Environment):
        missing.append("Environment.process_exit_code")
    # Read, not imported: a process with no web UI does not load Flask (loadtest/locust/headless.py).
    web_source = (resources.files("locust") / "web.py").read_text(encoding="utf-8")
    if "class WebUI" not in web_source:
        missing.append("locust.web.WebUI")
    for attr in ("template_args", "self.app", "auth_required_if_enabled"):
        if attr not in web_source:
            missing.append(f"WebUI.{attr.removeprefix('self.')}")
    missing += [f"the web UI route {route}" for route in WEB_UI_ROUTES if f'route("{route}"' not in web_source]
    if not isinstance(getattr(locust.stats, "PERCENTILES_TO_CHART", None), list):
        missing.append("locust.stats.PERCENTILES_TO_CHART")
    if SPAWN_RATE_WARNING not in inspect.getsource(runners):
        missing.append(f"the spawn-rate warning text {SPAWN_RATE_WARNING!r} in locust.runners")
    assets = resources.files("locust") / "webui" / "dist" / "assets"
    bundle = "".join(p.read_bytes().decode("utf-8", "replace") for p in assets.iterdir() if p.name.endswith(".js"))
    missing += [f"the web UI's {key} (webui/dist/assets)" for key in WEB_UI_KEYS if key not in bundle]
    missing += [f"the start form's field {name!r} (webui/dist/assets)" for name in START_FORM_FIELDS
                if not re.search(rf"name:\s*[`'\"]{name}[`'\"]", bundle)]
    index = (resources.files("locust") / "webui" / "dist" / "index.html").read_text(encoding="utf-8")
    if "</body>" not in index or "templateArgs" not in index:
        missing.append("the web UI's index.html (a </body> and window.templateArgs)")
    return missing
