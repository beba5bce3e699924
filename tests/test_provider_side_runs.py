"""A real run reads the provider side's record of itself: both ends in summary.json and the console."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.scenario import load_scenario

pytestmark = pytest.mark.slow


def test_a_run_on_the_embedded_mock_reports_both_ends_and_matches_every_generation(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", "single", "--duration", "8s", "--report-dir",
                           str(report)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    out = proc.stderr + proc.stdout
    summary = json.loads((report / "summary.json").read_text())
    side = summary["provider_side"]
    assert side is not None and side["error"] is None, out
    assert side["providers_compared"] == ["relay"]
    # The record was reset at the start: it holds this run's answers and nothing else, one per attempt.
    # Requests still in flight when the run stopped reached the provider but were never recorded by the
    # client: at most one per user.
    users = load_scenario("single").load.peak_users
    assert summary["attempts"] <= side["requests"] <= summary["attempts"] + users and summary["attempts"] > 0
    assert sum(side["outcomes"].values()) == side["requests"]
    m = side["matched"]
    assert m["method"] == "correlation id" and m["raw_missed"] == 0
    assert m["client_requests"] == summary["requests"]
    assert summary["requests"] <= m["matched_requests"] <= summary["requests"] + users
    assert summary["attempts"] <= m["matched_attempts"] <= summary["attempts"] + users
    assert [s["name"] for s in side["stages"]] == [s["name"] for s in summary["stages"]]
    run = side["side_by_side"][0]
    assert run["name"] == "run" and run["provider_p99_ms"] is not None
    # The client times from before the request leaves to after the answer arrives: never less than the provider.
    assert run["gap_p50_ms"] >= 0, run
    assert "Both ends" in out and "matched by correlation id" in out
    assert "Both ends: client and provider side" in (report / "summary.md").read_text()
