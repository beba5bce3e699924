"""The live SLA view in Locust's web UI, driven in a real browser (headless Chromium).

`python -m loadtest ui flash_sale` runs exactly as `make ui` starts it: the mock, then
Locust's web UI. The test presses Start in the UI, opens the SLA tab, reads the table
while the run goes and after the shape ends, checks /sla says the same, and finally
stops everything with Ctrl-C (SIGINT) and checks nothing is left running or listening.
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
from playwright.sync_api import Page, sync_playwright

from loadtest.scenario import Overrides, load_scenario

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCENARIO = "flash_sale"
DURATION = "20s"
COLUMNS = ["Threshold", "Observed (exact)", "Limit", "Verdict", "Samples"]
P99 = "latency p(99) < 600 ms"
VERDICT_WORDS = re.compile(r"PASS|FAIL|COLLECTING \(\d+/\d+\)")
NUMBER = r"\d[\d,]*(\.\d+)?(e[+-]?\d+)?"

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


def sla_table(page: Page) -> list[list[str]]:
    """The SLA tab's table as text, a list of cells per body row (textContent: no CSS upper-casing)."""
    return page.locator("table tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))")


def sla_json(page: Page) -> dict[str, Any]:
    """GET /sla from the page itself (same origin, same server the table polls)."""
    return page.evaluate("async () => { const r = await fetch('/sla'); return await r.json(); }")


def rows_of(doc: dict[str, Any]) -> list[list[str]]:
    """What the table should show for a /sla answer: one row per threshold, then the run's state."""
    rows = [[t["threshold"], t["observed"], t["limit"], t["verdict"], str(t["samples"])] for t in doc["thresholds"]]
    return rows + [[f"— run: {doc['state']}", "", "", str(doc["verdict"] or "").upper(), ""]]


def test_sla_tab_shows_the_gate_live_and_at_the_end(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install the Debian package chromium"
    scenario = load_scenario(SCENARIO, Overrides(duration=DURATION))
    labels = [t.label() for t in scenario.thresholds]
    units = {t.label(): t.unit for t in scenario.thresholds}
    assert P99 in labels

    log = tmp_path / "loadtest-ui.log"
    ready = tmp_path / "ui-ready.json"
    with log.open("w") as out:
        runner = subprocess.Popen([sys.executable, "-m", "loadtest", "ui", SCENARIO, "--duration", DURATION,
                                   "--web-port", "0", "--ready-file", str(ready)], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT, preexec_fn=own_session_with_ctrl_c)
    children: list[psutil.Process] = []
    groups = [runner.pid]          # the runner's process group, then the mock's and Locust's own
    mock_port: int | None = None
    port = 0
    try:
        def announced() -> dict[str, Any] | None:
            assert runner.poll() is None, f"python -m loadtest ui ended with {runner.returncode}\n{tail(log)}"
            return json.loads(ready.read_text()) if ready.exists() else None

        ui = wait_for("the web UI's address in the ready-file", announced, 45, log)["web_url"]
        port = urlsplit(ui).port or 0

        def ui_answers() -> dict[str, Any] | None:
            assert runner.poll() is None, f"python -m loadtest ui ended with {runner.returncode}\n{tail(log)}"
            try:
                return httpx.get(f"{ui}/sla", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return None

        first = wait_for("the web UI to answer", ui_answers, 45, log)
        assert first["scenario"] == SCENARIO and first["state"] == "not started"
        mock_port = urlsplit(first["base_url"]).port
        children = psutil.Process(runner.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        assert any("-m mockprovider" in c for c in commands), commands
        groups += [c.pid for c, command in zip(children, commands) if "-m locust" in command or
                   "-m mockprovider" in command]
        assert len(groups) == 3, commands

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(ui)
                # The scenario's LoadTestShape sets the load: the user-count fields are disabled, Start is
                # all there is to press.
                assert page.get_by_label("Number of users").is_disabled()
                page.get_by_role("button", name="Start", exact=True).click()
                sla_tab = page.get_by_role("tab", name="SLA", exact=True)
                sla_tab.click()
                page.wait_for_url(re.compile(r"[?&]tab=sla\b"))
                headers = page.locator("table thead th").evaluate_all("cells => cells.map(c => c.textContent.trim())")
                assert headers == COLUMNS

                # Live: every threshold in order with its observed value, the p(99) one judged.
                def live_rows() -> list[list[str]] | None:
                    rows = sla_table(page)
                    if rows and rows[-1][0] == "— run: finished":
                        doc = sla_json(page)
                        raise AssertionError(f"the run ended before {P99!r} had {scenario.min_samples} samples: "
                                             f"{doc['verdict']}, {doc.get('reasons')}\n{tail(log)}")
                    if [r[0] for r in rows[:-1]] != labels or rows[-1][0] != "— run: running":
                        return None
                    by_label = {r[0]: r for r in rows[:-1]}
                    if any(r[1] == "—" for r in rows[:-1]):
                        return None
                    return rows if int(by_label[P99][4]) >= scenario.min_samples else None

                rows = wait_for(f"every threshold of {SCENARIO} observed and {scenario.min_samples} samples "
                                f"for {P99!r}", live_rows, 45, log)
                for label, observed, _limit, verdict, samples in rows[:-1]:
                    unit = units[label] or "%"          # rates read as percentages
                    assert re.fullmatch(NUMBER + f" {re.escape(unit)}", observed), (label, observed)
                    assert VERDICT_WORDS.fullmatch(verdict), (label, verdict)
                    assert int(samples) > 0, (label, samples)
                p99 = next(r for r in rows if r[0] == P99)
                assert p99[1].endswith(" ms") and p99[2] == "< 600 ms"
                assert p99[3] == "PASS", p99
                assert rows[-1][3] in ("PASSING SO FAR", "FAILING SO FAR"), rows[-1]

                # /sla says what the table shows. The live numbers move (the table is Locust's poll every
                # 2 s, /sla the live gate cached for 1 s), so look for a table that stays the same around
                # a /sla answer that shows exactly it.
                def agreeing() -> tuple[list[list[str]], dict[str, Any]] | None:
                    before = sla_table(page)
                    doc = sla_json(page)
                    after = sla_table(page)
                    return (after, doc) if before == after == rows_of(doc) else None

                _, doc = wait_for("the SLA table and /sla to show the same values", agreeing, 30, log,
                                      interval=0.2)
                assert doc["state"] == "running" and doc["scenario"] == SCENARIO and doc["target"] == "relay"
                assert [t["threshold"] for t in doc["thresholds"]] == labels
                page.screenshot(path=str(tmp_path / "sla-running.png"), full_page=True)

                # The shape ends by itself: the plugin gates the run and the tab says so.
                def finished() -> list[list[str]] | None:
                    rows = sla_table(page)
                    return rows if rows and rows[-1][0] == "— run: finished" else None

                rows = wait_for("the SLA tab to show the run finished", finished, 60, log)
                page.screenshot(path=str(tmp_path / "sla-finished.png"), full_page=True)
                doc = sla_json(page)
                assert doc["state"] == "finished", doc
                report_dir = Path(doc["report_dir"])
                assert rows == rows_of(doc)        # finished: nothing moves any more, the values are equal
                assert (doc["verdict"], doc["exit_code"]) == ("pass", 0), json.dumps(doc, indent=1)
                assert rows[-1][3] == "PASS"
                assert all(r[3] == "PASS" for r in rows[:-1]), rows
            finally:
                browser.close()

        again = httpx.get(f"{ui}/sla", timeout=5).json()   # the same answer from outside the browser
        assert {**again, "elapsed_s": None} == {**doc, "elapsed_s": None}
        for name in ("summary.json", "junit.xml", "report.html"):
            assert (report_dir / name).is_file(), f"{report_dir / name} is missing"
        summary = json.loads((report_dir / "summary.json").read_text())
        assert (summary["verdict"], summary["exit_code"]) == ("pass", 0)
        assert [t["label"] for t in summary["thresholds"]] == labels
    finally:
        code, left = stop(runner, children, log)

    assert code == 0, f"python -m loadtest ui exited {code} after Ctrl-C\n{tail(log)}"
    assert not left, f"still running after Ctrl-C (now killed): {left}"
    for pgid in groups:
        assert not group_alive(pgid), f"process group {pgid} still has processes"
    assert not listening(port), f"the web UI's port {port} still listens"
    assert mock_port is not None and not listening(mock_port), f"the mock's port {mock_port} still listens"


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
