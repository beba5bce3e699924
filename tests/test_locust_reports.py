"""Locust's own CSV files and HTML page, as the plugin writes them (loadtest/locust/native.py).

Why the plugin writes them: Locust's main spawns its CSV writer as a greenlet and, when it shuts
down, only closes the writer's files; it never stops the greenlet. The next time the hub runs
(its atexit handler kills the input listener with block=True, which yields), a writer whose one-
second sleep is over writes to the closed files: `ValueError: I/O operation on closed file` in
the console. The first test shows that on Locust itself; the others, that the plugin's writer
stops first, writes the final tables, and reports a full disk as one failure.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import gevent
import pytest
from locust import stats as locust_stats
from locust.env import Environment

from loadtest.locust.native import LocustReports

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def environment() -> Environment:
    env = Environment(user_classes=[])
    env.create_local_runner()
    env.stats.log_request("POST", "relay midjourney-v7", 42, 100)
    env.stats.log_error("POST", "relay midjourney-v7", "HTTP 503")
    return env


def test_locusts_own_writer_wakes_after_its_files_are_closed(environment: Environment, tmp_path: Path) -> None:
    writer = locust_stats.StatsCSVFileWriter(environment, locust_stats.PERCENTILES_TO_REPORT,
                                             str(tmp_path / "locust"), False)
    greenlet = gevent.spawn(writer.stats_writer)
    gevent.sleep(0.1)
    writer.close_files()         # what Locust's shutdown does; the greenlet is left running
    gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)
    assert isinstance(greenlet.exception, ValueError) and "closed file" in str(greenlet.exception)


def test_the_plugins_writer_stops_before_the_files_close(environment: Environment, tmp_path: Path) -> None:
    reports = LocustReports(environment, tmp_path / "locust", tmp_path / "locust.html")
    reports.start()
    gevent.sleep(0.1)
    greenlet = reports._greenlet
    assert greenlet is not None and not greenlet.dead
    environment.stats.log_request("POST", "relay midjourney-v7", 58, 100)    # after the last periodic write
    assert reports.finish() == []
    assert greenlet.dead and greenlet.exception is None
    gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.2)
    # The final tables hold what the stats hold at the end, not what they held a second before.
    rows = list(csv.DictReader((tmp_path / "locust_stats.csv").open()))
    aggregated = next(r for r in rows if r["Name"] == "Aggregated")
    assert aggregated["Request Count"] == "2" and aggregated["Failure Count"] == "1"
    failures = list(csv.DictReader((tmp_path / "locust_failures.csv").open()))
    assert [f["Error"] for f in failures] == ["HTTP 503"]
    assert (tmp_path / "locust_stats_history.csv").read_text().startswith("Timestamp,")
    assert "<html" in (tmp_path / "locust.html").read_text()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_failure_not_an_exception(environment: Environment, tmp_path: Path) -> None:
    # /dev/full takes every open and fails every write with ENOSPC, like a disk that has filled up.
    (tmp_path / "locust_stats_history.csv").symlink_to("/dev/full")
    reports = LocustReports(environment, tmp_path / "locust", None)
    reports.start()
    gevent.sleep(locust_stats.CSV_STATS_FLUSH_INTERVAL_SEC + 1.5)     # the writer flushes, and fails
    greenlet = reports._greenlet
    assert greenlet is not None and greenlet.dead and greenlet.exception is None
    assert reports.finish() == [("Locust's CSV files", "No space left on device")]


def test_a_folder_that_cannot_be_made_is_a_failure(environment: Environment, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where the folder should be")
    reports = LocustReports(environment, tmp_path / "file" / "locust", tmp_path / "file" / "locust.html")
    reports.start()
    failures = reports.finish()
    assert [what for what, _ in failures] == ["Locust's CSV files", "locust.html"]
    assert all(why for _, why in failures)
