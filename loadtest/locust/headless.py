"""`python -m loadtest.locust.headless ARGS`: Locust's own command line (what `python -m locust ARGS` runs), for a
process that serves no web UI: a headless run's only process or master, and every worker.

Locust's `Environment` module imports its web UI at import time, and with it Flask, Werkzeug, Jinja's
Flask glue, flask-login and flask-cors, whether or not a UI is ever started: about 6 MB of RSS held by every
such process for the whole run (BENCHMARKS.md, "Load generator memory"). Here `locust.web` is a stand-in until a
`WebUI` is actually built; building one loads the real module and returns the real thing, so a Locust that
makes a web UI after all still gets one. Nothing else of Locust is changed.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

MODULE = "loadtest.locust.headless"      # what `python -m` is given
STAND_IN = "loadtest's stand-in for locust.web (a process with no web UI)"


def _real_web() -> types.ModuleType:
    if getattr(sys.modules.get("locust.web"), "__doc__", None) == STAND_IN:
        del sys.modules["locust.web"]
    return importlib.import_module("locust.web")


class DeferredWebUI:
    """What `locust.env` finds as `WebUI`: constructing it constructs Locust's real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _real_web().WebUI(*args, **kwargs)


def defer_web_ui() -> None:
    """Put the stand-in in place of `locust.web`, before Locust is imported; no-op once Locust's is loaded."""
    if "locust.web" in sys.modules:
        return
    stand_in = types.ModuleType("locust.web", STAND_IN)
    stand_in.WebUI = DeferredWebUI  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        # The import system and inspect probe dunders (__path__, __file__): those are not a use of the UI.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(_real_web(), name)

    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["locust.web"] = stand_in


def main() -> None:
    defer_web_ui()
    from locust.main import main as locust_main
    locust_main()


if __name__ == "__main__":
    main()
