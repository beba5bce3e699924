"""The live SLA view, driven in a real browser (Debian's headless Chromium), as a person uses it.

`python -m loadtest ui <scenario>` runs exactly as `make ui` starts it: the mock, then Locust's
web UI with the SLA view. The scenario (tests/data/live_view.toml) is a short flash sale with an
outage of the relay's upstream mid-run: four stages, two admin actions, five thresholds, one of
them on a stage's request rate.

The run never ends on its own while the test watches it: the test's copy of the scenario holds the
last stage for 15 minutes, far longer than every wait before the Stop together, so a slow, loaded
machine makes the test slower, never a race against the run's planned end. The test stops it.

The test opens Locust's page and the SLA page, checks the start form says the scenario drives
the load, presses Start on Locust's form, reads the SLA page mid-run (every threshold with its
exact value, limit, headroom, stage and coloured verdict; a chart per latency threshold with its
limit, the stages and the actions; stage, time left, generator health, a provisional verdict)
and Locust's SLA tab, checks both say what /sla says, presses Stop on the SLA page before the
planned end and checks the run is then incomplete (exit 2) and its report is linked and opens.
Screenshots at the three moments: before the start, mid-run, after Stop. Last, Ctrl-C (SIGINT)
stops everything, `loadtest ui` exits with its last run's code (2), and nothing is left running
or listening.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from browser import VIEWPORT, Seen, assert_clean, launch, screenshot, watch
from playwright.sync_api import Page, sync_playwright

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).resolve().parent / "data" / "live_view.toml"
# The scenario's stages are 8 + 8 + 16 + 8 s; the test holds the last one so the run lasts 15 min. Between
# Start and Stop the test's own waits give up after 170 s together and each Playwright step after
# STEP_TIMEOUT_MS; a test that passes has pressed Stop long before the run could end by itself.
HELD_STAGE = ('{ name = "decay", duration = "8s"', '{ name = "decay", duration = "868s"')
PLANNED_S = 900
PLANNED_TEXT = "15 min"
# Each Playwright step waits at most this long (its default is 30 s), so no step outlasts the run.
STEP_TIMEOUT_MS = 15_000
STAGES = ["baseline", "surge", "hold", "decay"]
COLUMNS = ["Threshold", "Stage", "Value (exact)", "Provider side", "Gap (generator, network)", "Limit", "Headroom",
           "Verdict", "Samples"]
LIMIT, HEADROOM_AT, VERDICT, PROVIDER, GAP = (COLUMNS.index(c) for c in ("Limit", "Headroom", "Verdict",
                                                                          "Provider side", "Gap (generator, network)"))
THRESHOLDS = [  # as the table shows them: the name (rates as percentages), the stage, the limit
    ("latency p(99) < 600 ms", "whole run", "< 600 ms"), ("latency p(50) < 500 ms", "whole run", "< 500 ms"),
    ("success rate >= 99.9 %", "whole run", ">= 99.9 %"), ("requests rps >= 50 req/s", "hold", ">= 50 req/s"),
    ("latency p(99) < 600 ms", "surge", "< 600 ms")]
LATENCY_CHARTS = 3            # the thresholds above on latency with a ceiling
P99 = 0                       # the whole run's p(99), the row the test waits on
MIN_SAMPLES = 500
# What each verdict's cell is painted (report.html's colours, loadtest/report/display.py).
PAINT = {"PASS": "rgb(30, 126, 52)", "FAIL": "rgb(176, 42, 55)", "COLLECTING": "rgb(31, 95, 168)",
         "INCONCLUSIVE": "rgb(161, 92, 0)", "INVALID": "rgb(161, 92, 0)"}
VALUE = re.compile(r"\d[\d,]*(\.\d+)? (ms|%|req/s)")
HEADROOM = re.compile(r".+ to spare|over by .+|short by .+|exactly at the limit|—")

T = TypeVar("T")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def own_session_with_ctrl_c() -> None:
    """In the child: a session (and process group) of its own, and SIGINT delivered even when
    pytest itself runs with SIGINT ignored (a background job of a non-interactive shell)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Path, interval: float = 0.5) -> T:
    """probe() until it answers something truthy; fail after `timeout` seconds saying what never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s; last seen: {last!r}\n"
                                 f"{tail(log)}")
        time.sleep(interval)


def tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "--- python -m loadtest ui (last lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def table(page: Page, selector: str) -> list[list[str]]:
    """A table's body as text, a list of cells per row (textContent: no CSS upper-casing)."""
    return page.locator(f"{selector} tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))")


def headers(page: Page, selector: str) -> list[str]:
    return page.locator(f"{selector} thead th").evaluate_all("cells => cells.map(c => c.textContent.trim())")


def sla_json(page: Page) -> dict[str, Any]:
    """GET /sla from the page itself (same origin, the server the page polls)."""
    return page.evaluate("async () => { const r = await fetch('/sla'); return await r.json(); }")


def rows_of(doc: dict[str, Any]) -> list[list[str]]:
    """What a threshold table shows for a /sla answer: its cells, column by column."""
    keys = [c["key"] for c in doc["columns"]]
    return [[t["cells"][k] for k in keys] for t in doc["thresholds"]]


def painted(page: Page, selector: str) -> list[tuple[str, str]]:
    """(text, background colour) of each cell the selector finds."""
    return page.locator(selector).evaluate_all(
        "cells => cells.map(c => [c.textContent.trim(), getComputedStyle(c).backgroundColor])")


def test_the_live_view_before_during_and_after_a_stop(tmp_path: Path) -> None:
    scenario = tmp_path / "live_view.toml"
    text = SCENARIO.read_text()
    assert HELD_STAGE[0] in text, "tests/data/live_view.toml no longer has the stage this test holds"
    scenario.write_text(text.replace(*HELD_STAGE))
    log = tmp_path / "loadtest-ui.log"
    ready = tmp_path / "ui-ready.json"
    with log.open("w") as out:
        runner = subprocess.Popen([sys.executable, "-m", "loadtest", "ui", str(scenario), "--web-port", "0",
                                   "--ready-file", str(ready)], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT, preexec_fn=own_session_with_ctrl_c)
    children: list[psutil.Process] = []
    groups = [runner.pid]          # the runner's process group, then the mock's and Locust's own
    mock_port: int | None = None
    port = 0
    try:
        def announced() -> dict[str, Any] | None:
            assert runner.poll() is None, f"python -m loadtest ui ended with {runner.returncode}\n{tail(log)}"
            return json.loads(ready.read_text()) if ready.exists() else None

        ui = wait_for("the web UI's address in the ready-file", announced, 90, log)["web_url"]
        port = urlsplit(ui).port or 0

        def ui_answers() -> dict[str, Any] | None:
            assert runner.poll() is None, f"python -m loadtest ui ended with {runner.returncode}\n{tail(log)}"
            try:
                return httpx.get(f"{ui}/sla", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return None

        first = wait_for("the web UI to answer", ui_answers, 90, log)
        assert first["scenario"] == "live_view" and first["run"]["state"] == "not started"
        assert [c["title"] for c in first["columns"]] == COLUMNS
        mock_port = urlsplit(first["base_url"]).port
        children = psutil.Process(runner.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        groups += [c.pid for c, command in zip(children, commands) if "-m locust" in command or
                   "-m mockprovider" in command]
        assert len(groups) == 3, commands

        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                locust_page = browser.new_page(viewport=VIEWPORT)
                locust_seen = watch(locust_page)
                sla_page = browser.new_page(viewport=VIEWPORT)
                sla_seen = watch(sla_page)
                for page in (locust_page, sla_page):
                    page.set_default_timeout(STEP_TIMEOUT_MS)
                before_the_start(locust_page, locust_seen, sla_page, sla_seen, ui, tmp_path, log)
                # Start from Locust's own form, as a person used to Locust would.
                locust_page.get_by_role("button", name="Start", exact=True).click()
                mid_run(locust_page, locust_seen, sla_page, sla_seen, tmp_path, log)
                report_dir = after_stop(locust_page, locust_seen, sla_page, sla_seen, tmp_path, log)
            finally:
                browser.close()

        summary = json.loads((report_dir / "summary.json").read_text())
        assert (summary["verdict"], summary["exit_code"], summary["run"]["end"]) == ("invalid", 2, "stopped")
        assert [r["kind"] for r in summary["reasons"]][:1] == ["incomplete"]
        assert [a["outcome"] for a in summary["actions"]][:1] == ["HTTP 200"]
        for name in ("summary.json", "junit.xml", "report.html", "summary.md"):
            assert (report_dir / name).is_file(), f"{report_dir / name} is missing"
    finally:
        code, left = stop(runner, children, log)

    # `loadtest ui` exits with its last run's verdict: the run stopped early proves nothing.
    assert code == 2, f"python -m loadtest ui exited {code} after Ctrl-C\n{tail(log)}"
    assert not left, f"still running after Ctrl-C (now killed): {left}"
    for pgid in groups:
        assert not group_alive(pgid), f"process group {pgid} still has processes"
    assert not listening(port), f"the web UI's port {port} still listens"
    assert mock_port is not None and not listening(mock_port), f"the mock's port {mock_port} still listens"


def before_the_start(locust_page: Page, locust_seen: Seen, sla_page: Page, sla_seen: Seen, ui: str,
                     tmp_path: Path, log: Path) -> None:
    # Locust's form says the scenario drives the load, and asks for neither users nor a ramp.
    locust_page.goto(ui)
    note = locust_page.locator(".lt-load-note")
    note.wait_for(timeout=15_000)
    assert "The scenario drives the load." in note.inner_text()
    assert "40 → 120 → 120 → 40 users" in note.inner_text()
    for field in ("userCount", "spawnRate"):
        assert locust_page.locator(f'input[name="{field}"]').is_hidden(), f"the start form still asks for {field}"
    assert locust_page.get_by_role("button", name="Start", exact=True).is_visible()
    assert locust_page.locator("#lt-links a", has_text="Live SLA view").is_visible()
    assert 0.99 in locust_page.evaluate("window.templateArgs.percentiles_to_chart")   # P99 in Locust's Charts
    screenshot(locust_page, "locust-start-form.png", tmp_path, full_page=False)
    assert_clean(locust_page, locust_seen)

    sla_page.goto(f"{ui}/sla/view")
    sla_page.locator("#thresholds tbody tr").first.wait_for(timeout=15_000)
    assert headers(sla_page, "#thresholds") == COLUMNS
    rows = table(sla_page, "#thresholds")
    assert [(r[0], r[1], r[LIMIT]) for r in rows] == THRESHOLDS
    assert sla_page.locator("#verdict").get_attribute("data-status") == "not started"
    assert sla_page.get_by_role("button", name="Start", exact=True).is_visible()
    assert sla_page.get_by_role("button", name="Stop", exact=True).is_hidden()
    assert sla_page.locator("#load-note").inner_text().startswith("The scenario drives the load: 4 stages over 15 min")
    assert sla_page.locator(".chart svg").count() == LATENCY_CHARTS
    assert sla_page.locator("#time-left").inner_text() == PLANNED_TEXT
    screenshot(sla_page, "live-before-start.png", tmp_path)
    assert_clean(sla_page, sla_seen)


def mid_run(locust_page: Page, locust_seen: Seen, sla_page: Page, sla_seen: Seen, tmp_path: Path,
            log: Path) -> None:
    def judged_and_acted() -> dict[str, Any] | None:
        doc = sla_json(sla_page)
        assert doc["run"]["state"] in ("not started", "running"), \
            f"the run is {doc['run']['state']} before the test pressed Stop: {doc['verdict']}\n{tail(log)}"
        p99 = doc["thresholds"][P99]
        if doc["run"]["state"] != "running" or p99["doc"]["samples"] < MIN_SAMPLES or not doc["actions"][0]["done"]:
            return None
        return doc

    wait_for(f"{MIN_SAMPLES} samples behind the P99 and the first action done", judged_and_acted, 120, log)

    # The table says what /sla says: the numbers move (the page polls every second, /sla's gate is cached
    # for one), so look for a table that stays the same around an /sla answer that shows exactly it.
    def agreeing() -> tuple[list[list[str]], dict[str, Any]] | None:
        before = table(sla_page, "#thresholds")
        doc = sla_json(sla_page)
        after = table(sla_page, "#thresholds")
        return (after, doc) if before == after == rows_of(doc) and doc["run"]["state"] == "running" else None

    rows, doc = wait_for("the SLA page and /sla to show the same values", agreeing, 30, log, interval=0.2)
    assert [(r[0], r[1], r[LIMIT]) for r in rows] == THRESHOLDS
    for cells in rows:
        name, observed, headroom, verdict, samples = (cells[COLUMNS.index(c)] for c in (
            "Threshold", "Value (exact)", "Headroom", "Verdict", "Samples"))
        word = verdict.split()[0]
        assert word in PAINT, (name, verdict)
        if word in ("PASS", "FAIL"):
            assert VALUE.fullmatch(observed), (name, observed)
            assert HEADROOM.fullmatch(headroom), (name, headroom)
        if name.startswith("success"):
            assert observed.endswith(" %"), observed          # rates read as percentages
        assert re.fullmatch(r"[\d,]+( of [\d,]+)?", samples), samples
    # Judged by now (MIN_SAMPLES behind it); whether it passes is the machine's speed, not the view's to say.
    assert rows[P99][VERDICT] in ("PASS", "FAIL"), rows[P99]
    margin = rows[P99][HEADROOM_AT]
    # Both ends: the relay's own P99 beside the client's, and the gap between (the record is read every 2 s).
    assert re.fullmatch(r"[\d.,]+ ms \([\d,]+\)", rows[P99][PROVIDER]), rows[P99]
    assert re.fullmatch(r"[+−][\d.,]+ ms", rows[P99][GAP]), rows[P99]
    assert margin.endswith("to spare") if rows[P99][VERDICT] == "PASS" else margin.startswith("over by"), rows[P99]
    for text, colour in painted(sla_page, "#thresholds td.verdict"):
        assert colour == PAINT[text.split()[0]], (text, colour)

    banner = sla_page.locator("#verdict")
    # "invalid" too: a loaded machine may strain the generator, and the view then says the run may prove nothing.
    assert banner.get_attribute("data-class") in ("pass", "fail", "collecting", "invalid")
    assert sla_page.locator("#verdict-headline").inner_text().startswith("Provisional:")
    assert "provisional" in (sla_page.locator("#verdict-kind").text_content() or "")
    assert sla_page.locator("#stage").inner_text() in STAGES
    assert re.fullmatch(r"\d+ min( \d+ s)?", sla_page.locator("#time-left").inner_text())
    assert re.match(r"healthy|strained", sla_page.locator("#generator-text").inner_text())
    assert sla_page.get_by_role("button", name="Stop", exact=True).is_visible()
    assert "incomplete" in sla_page.locator("#stop-note").inner_text()

    # A chart per latency threshold: its limit, the four stages, both actions (the first one done).
    charts = sla_page.locator(".chart svg")
    assert charts.count() == LATENCY_CHARTS
    for i in range(LATENCY_CHARTS):
        svg = charts.nth(i)
        limit = svg.locator(".limit-line")
        assert limit.count() == 1 and limit.get_attribute("y1") == limit.get_attribute("y2")
        assert svg.locator(".stage-band").count() == len(STAGES)
        marks = svg.locator(".action-mark")
        # The charts redraw from their own poll, up to a second behind the /sla answer read above.
        wait_for("the chart to mark the first action done",
                 lambda m=marks: [m.nth(j).get_attribute("data-done") for j in range(m.count())][:1] == ["true"],
                 10, log, interval=0.2)
        assert marks.count() == 2
    judged = charts.nth(0).locator("polyline.judged").get_attribute("points") or ""
    assert len(judged.split()) >= 3, judged
    surge = sla_page.locator(".chart").nth(2).locator("h3").inner_text()
    assert surge.startswith("latency p(99) < 600 ms [stage surge]"), surge
    screenshot(sla_page, "live-running.png", tmp_path)
    assert_clean(sla_page, sla_seen)

    # Locust's own SLA tab: the same columns and cells, the verdicts painted, the run's state last.
    locust_page.get_by_role("tab", name="SLA", exact=True).click()
    locust_page.wait_for_url(re.compile(r"[?&]tab=sla\b"))
    assert headers(locust_page, "table") == COLUMNS

    def tab_in_colour() -> list[list[str]] | None:
        rows = table(locust_page, "table")
        cells = painted(locust_page, "table tbody td[data-lt-verdict]")
        if len(rows) != len(THRESHOLDS) + 1 or len(cells) < len(THRESHOLDS):
            return None
        return rows if all(colour == PAINT[text.split()[0]] for text, colour in cells) else None

    rows = wait_for("Locust's SLA tab with every verdict painted", tab_in_colour, 20, log)
    assert [(r[0], r[1], r[LIMIT]) for r in rows[:-1]] == THRESHOLDS
    assert rows[-1][0] == "Run 1: running" and rows[-1][VERDICT].startswith("Provisional:"), rows[-1]
    locust_page.wait_for_timeout(400)          # the tab's underline slides over; let it arrive for the picture
    screenshot(locust_page, "locust-sla-tab.png", tmp_path, full_page=False)
    assert_clean(locust_page, locust_seen)


def after_stop(locust_page: Page, locust_seen: Seen, sla_page: Page, sla_seen: Seen, tmp_path: Path,
               log: Path) -> Path:
    sla_page.get_by_role("button", name="Stop", exact=True).click()

    def judged() -> dict[str, Any] | None:
        doc = sla_json(sla_page)
        return doc if doc["run"]["state"] == "finished" and sla_page.locator("#report").is_visible() else None

    doc = wait_for("the run, stopped early, to be judged", judged, 120, log)
    assert doc["run"]["elapsed_s"] < PLANNED_S, doc["run"]
    assert (doc["verdict"]["status"], doc["verdict"]["exit_code"], doc["verdict"]["incomplete"]) == ("invalid", 2, True)
    sla_page.wait_for_function("document.getElementById('verdict').dataset.class === 'invalid'", timeout=10_000)
    headline = sla_page.locator("#verdict-headline").inner_text()
    assert headline.startswith("INCOMPLETE") and "(exit 2)" in headline, headline
    assert "stopped by hand" in sla_page.locator("#verdict-reasons").inner_text()
    assert sla_page.locator("#verdict-kind").text_content() == "final verdict of run 1"
    assert sla_page.locator(".chart svg .end-mark").count() == LATENCY_CHARTS     # where it stopped, on each chart
    assert table(sla_page, "#thresholds") == rows_of(doc)
    assert sla_page.get_by_role("button", name="Start a new run", exact=True).is_visible()
    link = sla_page.locator("#report-link")
    assert link.get_attribute("href") == "/sla/runs/1/report.html" == doc["report"]["url"]
    screenshot(sla_page, "live-after-stop.png", tmp_path)
    assert_clean(sla_page, sla_seen)

    # Locust's page links the report too, and the report opens from the web UI whole.
    locust_page.locator("#lt-links a", has_text="Report of run 1").wait_for(timeout=10_000)
    link.click()
    sla_page.wait_for_url(re.compile(r"/sla/runs/1/report\.html$"))
    assert sla_page.locator("#verdict").get_attribute("data-verdict") == "invalid"
    assert "stopped by hand" in sla_page.locator("#verdict").inner_text()
    assert sla_page.locator("figure img").count() == 3
    assert_clean(sla_page, sla_seen)
    assert_clean(locust_page, locust_seen)
    return Path(doc["report"]["dir"])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop(runner: subprocess.Popen[bytes], known: list[psutil.Process], log: Path) -> tuple[int, list[str]]:
    """Ctrl-C to the runner's process group, as a person would: it stops Locust (which gates and exits)
    and the mock. Whatever is still running after that is killed, and named in the answer."""
    children = {c.pid: c for c in known}
    try:
        for c in psutil.Process(runner.pid).children(recursive=True):
            children.setdefault(c.pid, c)
    except psutil.NoSuchProcess:
        pass
    try:
        os.killpg(runner.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        code = runner.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(runner.pid, signal.SIGKILL)
        code = runner.wait(10)
        for child in children.values():
            if child.is_running():
                child.kill()
        raise AssertionError(f"python -m loadtest ui did not stop on SIGINT within 60 s\n{tail(log)}") from None
    left = []
    for child in children.values():
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(child.cmdline()))
                child.kill()
        except psutil.NoSuchProcess:
            pass
    return code, left
