"""The Locust internals the plugin relies on are all there, and the installed Locust is in the pinned range."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

from loadtest.locust.compat import missing_hooks

ROOT = Path(__file__).resolve().parent.parent


def test_every_hook_the_plugin_uses_exists() -> None:
    missing = missing_hooks()
    assert missing == [], "Locust lacks what the SLA plugin needs: " + ", ".join(missing)


def test_the_installed_locust_is_the_pinned_one() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(Requirement(d) for d in deps if d.startswith("locust"))
    assert pin.specifier.contains(version("locust")), (pin, version("locust"))
    assert "<" in str(pin.specifier), "pin Locust below the next minor the plugin was not checked on"
