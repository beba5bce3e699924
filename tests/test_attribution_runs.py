"""Real runs on the embedded mock where the two ends disagree: abort_on_fail and the live SLA view read the
provider side's record as the run goes, and blame who the end of the run would blame.

The client side is made slow by the suite's test-only generator stall (loadtest/locust/stall.py,
LOADTEST_TEST_GENERATOR_STALL): Locust's own event loop is blocked 800 ms in every second, so every answer
the relay sends meanwhile is read late, while the relay, in its own process, answers as it always does.
No assertion depends on this machine's speed: verdicts, who is blamed, and what the reports say.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loadtest.locust.stall import ENV as STALL_ENV
from loadtest.locust.stall import parse as parse_stall

SCENARIO = """
name = "both_ends"
description = "abort_on_fail on the whole run's P99, against the relay"

[target]
name = "relay"
model = "midjourney-v7"

[mock]
seed = 42

[client]
timeout = "30s"
keys = 8

[load]
model = "closed"
stages = [{{ name = "steady", duration = "{duration}", users = 20, spawn_rate = 20 }}]

[thresholds]
latency = [{{ threshold = "p(99)<600", abort_on_fail = true, delay_abort_eval = "5s" }}]
success = ["rate>=0.99"]

[gate]
min_samples = 100
"""
P99 = "latency p(99) < 600 ms"
STALL = "800/1000"     # the generator's loop blocked 800 ms a second: a P99 of 600 ms cannot hold client-side


def scenario(tmp_path: Path, duration: str = "40s") -> Path:
    path = tmp_path / "both_ends.toml"
    path.write_text(SCENARIO.format(duration=duration))
    return path


def loadtest(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict[str, Any]]:
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", str(scenario(tmp_path)), *args, "--report-dir",
                           str(report)], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**os.environ, **(env or {})})
    out = proc.stderr + proc.stdout
    path = report / "summary.json"
    return proc.returncode, out, json.loads(path.read_text()) if path.exists() else {}


def test_the_stall_knob_reads_block_and_period_and_refuses_nonsense() -> None:
    assert parse_stall("800/1000") == (0.8, 1.0) and parse_stall(" 50 / 200 ") == (0.05, 0.2)
    for bad in ("", "800", "1000/800", "0/100", "a/b", "800/1000/2"):
        with pytest.raises(ValueError, match=STALL_ENV):
            parse_stall(bad)


@pytest.mark.slow
def test_abort_on_fail_on_a_breach_only_the_stalled_generator_saw_stops_as_invalid_not_fail(tmp_path: Path) -> None:
    code, out, summary = loadtest(tmp_path, env={STALL_ENV: STALL})
    assert summary, out
    assert code == 2 and summary["verdict"] == "invalid", out
    run = summary["run"]
    # Stopped by the live gate, naming the generator: not an abort on the target's account.
    assert run["end"] == "abort" and run["generator_abort"] == P99 and run["aborted_by"] is None, run
    assert run["aborted_at_s"] is not None and run["aborted_at_s"] < run["planned_s"]
    stops = [r["text"] for r in summary["reasons"]
             if r["kind"] == "generator" and r["text"].startswith("abort_on_fail stopped the run at ")]
    assert len(stops) == 1 and "the generator's breach, not the target's" in stops[0], summary["reasons"]
    assert re.search(r"the provider answered p\(99\) [\d.]+ ms, the client saw [\d.,]+ ms", stops[0]), stops[0]
    assert "the generator's breach, not the target's; the run proves nothing" in out
    # The end's own two-sided figures agree: the client breached, the provider side held.
    p99 = next(t for t in summary["thresholds"] if t["label"] == P99)
    side = p99["provider_side"]
    assert p99["verdict"] == "fail" and side is not None and side["attribution"] == "generator", p99
    assert side["observed"] < 600 < p99["observed"] and side["samples"] > 0
    assert out.rstrip().splitlines()[-1].startswith("verdict: INVALID")


@pytest.mark.slow
def test_abort_on_fail_on_a_target_that_is_slow_on_its_own_side_still_aborts_as_fail(tmp_path: Path) -> None:
    # The relay twenty times slower (P50 ~840 ms on its side): the provider side breaches too.
    code, out, summary = loadtest(tmp_path, "--set", "relay.latency_multiplier=20")
    assert summary, out
    assert code == 1 and summary["verdict"] == "fail", out
    assert summary["run"]["aborted_by"] == P99 and summary["run"]["generator_abort"] is None
    p99 = next(t for t in summary["thresholds"] if t["label"] == P99)
    assert p99["provider_side"]["attribution"] == "target" and p99["provider_side"]["observed"] > 600, p99


def _starve(runner: subprocess.Popen[str], stop_s: float, every_s: float, limit_s: float) -> int:
    """Stop the run's embedded mock (SIGSTOP) for stop_s in every every_s, as a machine short of CPU would
    starve it, until the run ends (at most limit_s); the times it was stopped."""
    deadline = time.monotonic() + limit_s
    mock = None
    while mock is None and runner.poll() is None and time.monotonic() < deadline:
        try:
            mock = next((p for p in psutil.Process(runner.pid).children(recursive=True)
                         if "mockprovider" in " ".join(p.cmdline())), None)
        except psutil.Error:
            pass
        time.sleep(0.2)
    stops = 0
    while mock is not None and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(every_s - stop_s)
        try:
            mock.suspend()
            stops += 1
            time.sleep(stop_s)
        except psutil.Error:
            break
        finally:
            try:
                mock.resume()
            except psutil.Error:
                pass
    return stops


@pytest.mark.slow
def test_a_mock_starved_of_cpu_is_not_the_targets_breach(tmp_path: Path) -> None:
    # The mock (the simulated relay) stopped 800 ms in every 1.5 s: its answers come out late on its own
    # side too, so both ends breach; but what its profile meant holds, so the breach is the rig's, never
    # the target's FAIL: the live gate stops the run as INVALID on the mock's lateness.
    report = tmp_path / "report"
    runner = subprocess.Popen([sys.executable, "-m", "loadtest", "run", str(scenario(tmp_path, "30s")),
                               "--report-dir", str(report)], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        stops = _starve(runner, 0.8, 1.5, limit_s=120)
        out, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(10)
    summary = json.loads((report / "summary.json").read_text())
    assert stops >= 3, out
    assert runner.returncode == 2 and summary["verdict"] == "invalid", out
    p99 = next(t for t in summary["thresholds"] if t["label"] == P99)
    side = p99["provider_side"]
    assert p99["verdict"] == "fail" and side["attribution"] == "mock_late" and side["observed"] > 600, p99
    assert summary["run"]["aborted_by"] is None and summary["run"]["generator_abort"] == P99, summary["run"]
    late = [r["text"] for r in summary["reasons"] if r["text"].startswith("abort_on_fail stopped the run at ")]
    assert len(late) == 1 and "on the mock's lateness, not the target's" in late[0], summary["reasons"]
    assert re.search(r"its profile meant p\(99\) [\d.]+ ms, it answered [\d.,]+ ms", late[0]), late[0]
    assert out.rstrip().splitlines()[-1].startswith("verdict: INVALID")
    # A capacity step that came to this is the machine's limit (the mock shares it), never the target's break.
    from loadtest.capacity import classify
    from loadtest.summary import Summary
    outcome, why = classify(Summary.model_validate(summary), local=True)
    assert outcome == "machine" and why is not None and "the mock's CPU" in why, (outcome, why)
    assert classify(Summary.model_validate(summary), local=False)[0] == "invalid"


# --- the live SLA view of a real run ------------------------------------------------------------------


def _own_session_with_ctrl_c() -> None:
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(what: str, probe: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}; last seen: {last!r}\n{log.read_text(errors='replace')[-4000:]}")


def _stop(runner: subprocess.Popen[bytes]) -> int:
    """Ctrl-C to the runner's process group (it stops Locust, which gates, and the mock); killed if it hangs."""
    known = psutil.Process(runner.pid).children(recursive=True)
    try:
        os.killpg(runner.pid, signal.SIGINT)
        return runner.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(10)
        raise AssertionError("python -m loadtest ui did not stop on SIGINT within 60 s") from None
    finally:
        for child in known:
            try:
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                    child.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.mark.slow
def test_the_live_sla_document_of_a_real_run_carries_the_provider_side_and_the_gap(tmp_path: Path) -> None:
    log = tmp_path / "ui.log"
    ready = tmp_path / "ready.json"
    with log.open("w") as sink:
        runner = subprocess.Popen([sys.executable, "-m", "loadtest", "ui", str(scenario(tmp_path, "120s")),
                                   "--web-port", "0", "--ready-file", str(ready)], cwd=tmp_path, stdout=sink,
                                  stderr=subprocess.STDOUT, preexec_fn=_own_session_with_ctrl_c)
    try:
        def announced() -> dict[str, Any] | None:
            assert runner.poll() is None, log.read_text(errors="replace")
            return json.loads(ready.read_text()) if ready.exists() else None

        ui = _wait_for("the web UI's address", announced, 90, log)["web_url"]

        def sla() -> dict[str, Any] | None:
            try:
                return httpx.get(f"{ui}/sla", params={"series": "0"}, timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None

        first = _wait_for("/sla to answer", sla, 60, log)
        titles = [c["title"] for c in first["columns"]]
        assert titles[2:5] == ["Value (exact)", "Provider side", "Gap (generator, network)"], titles
        assert httpx.post(f"{ui}/swarm", data={}, timeout=10).json()["success"] is True

        def both_ends() -> dict[str, Any] | None:
            doc = sla()
            running = doc is not None and doc["run"]["state"] == "running"
            return doc if running and doc["thresholds"][0]["doc"].get("provider_side") else None

        live = _wait_for("the live P99 with its provider-side figure", both_ends, 90, log)
        row = live["thresholds"][0]
        doc, side = row["doc"], row["doc"]["provider_side"]
        assert doc["label"] == P99 and side["samples"] > 0 and side["observed"] > 0
        assert side["gap"] == pytest.approx(doc["observed"] - side["observed"], abs=2e-3)
        assert re.fullmatch(r"[\d.,]+ ms \([\d,]+\)", row["cells"]["provider"]), row["cells"]
        assert re.fullmatch(r"[+−][\d.,]+ ms", row["cells"]["gap"]), row["cells"]
        # The success rate has no provider-side counterpart.
        success = live["thresholds"][1]
        assert success["doc"]["metric"] == "success" and success["doc"]["provider_side"] is None
        assert success["cells"]["provider"] == "—"
    finally:
        code = _stop(runner)
    assert code == 2       # stopped by hand before its planned end: the run proves nothing
