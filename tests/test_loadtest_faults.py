"""Every fault of a run, made for real: a verdict and a report each time, exit 2, nothing left running.

Each test starts `python -m loadtest run` (or `make loadtest`) as a CI job does, in a session of
its own, waits until Locust's users are running against the embedded mock, then does to it
what the world does: Ctrl-C to the process group, SIGTERM or SIGHUP to the process (what
`timeout`, a CI cancel and `docker stop` send), SIGKILL to the mock or to a Locust worker,
SIGSTOP to a worker (it goes silent), an admin API that refuses the scenario's action, a
read-only report folder, one that fills up mid-run. A fault of the suite itself is never
"SLA breached" (exit 1). Every process the run started is found while it runs (psutil) and
must be gone, its ports closed, when the run has ended.

Runs are short: a few seconds of load, stopped early by the fault. No assertion depends on
how fast this machine is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PLANNED_S = 60          # every run is planned longer than any test lets it go
STARTED = "All users spawned"   # Locust's log line once the scenario's users run


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    report: Path
    log: Path
    seen: dict[int, psutil.Process] = field(default_factory=dict)   # every process the run started
    ports: set[int] = field(default_factory=set)                    # every port they listened on

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def watch(self) -> None:
        """Remember the run's processes and their listening ports (children in sessions of their own)."""
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            return
        for child in list(self.seen.values()):
            try:
                self.ports |= {c.laddr.port for c in child.net_connections(kind="tcp")
                               if c.status == psutil.CONN_LISTEN}
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass

    def wait_until(self, text: str, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.watch()
            if text in self.output():
                return
            assert self.proc.poll() is None, f"the run ended before {text!r}:\n{self.output()}"
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n{self.output()}")

    def running(self, settle_s: float = 3.0) -> None:
        """Wait until the users run, and a few seconds of load are measured."""
        self.wait_until(STARTED)
        end = time.monotonic() + settle_s
        while time.monotonic() < end:
            self.watch()
            time.sleep(0.2)

    def finish(self, timeout: float = 120.0) -> tuple[int, str, dict]:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        path = self.report / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {}
        return code, self.output(), summary

    def child(self, word: str) -> psutil.Process:
        """The run's process whose command line has `word` (e.g. "mockprovider", "--worker")."""
        self.watch()
        found = [p for p in self.seen.values() if _alive(p) and word in " ".join(p.cmdline())]
        assert found, f"no process with {word!r} among {[p.cmdline() for p in self.seen.values() if _alive(p)]}"
        return found[0]


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start(tmp_path: Path, *args: str, report: Path | None = None, cmd: list[str] | None = None,
          env: dict[str, str] | None = None) -> Run:
    report = report or tmp_path / "report"
    log = tmp_path / "console.txt"
    cmd = cmd or [sys.executable, "-m", "loadtest", "run", *args, "--report-dir", str(report)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=env)
    return Run(proc, report, log)


def assert_nothing_left(run: Run, *, listened: bool = True) -> None:
    """Every process the run started has ended, and nothing listens on the ports they had."""
    assert run.seen, "no child process was ever seen"
    gone, alive = psutil.wait_procs(list(run.seen.values()), timeout=5)
    alive = [p for p in alive if _alive(p)]
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert run.ports or not listened, "no listening port was ever seen"
    for port in run.ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def assert_proves_nothing(code: int, out: str, summary: dict, end: str) -> None:
    assert code == 2, out
    assert summary, out
    assert summary["exit_code"] == 2 and summary["verdict"] == "invalid"
    assert summary["run"]["end"] == end, summary["run"]
    assert summary["run"]["elapsed_s"] < PLANNED_S
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("verdict: INVALID: this run proves nothing") and "(exit 2)" in last, last
    assert "SLA was breached" not in out and "(exit 1)" not in out
    for noise in ("Traceback", "KeyboardInterrupt", "I/O operation on closed file"):
        assert noise not in out, out


def reasons(summary: dict) -> str:
    return "\n".join(r["text"] for r in summary["reasons"])


SHORT = ["single", "--duration", f"{PLANNED_S}s"]


# --- stopped from outside ----------------------------------------------------------------------


def test_ctrl_c_is_interrupted_with_the_report_of_what_was_measured(tmp_path: Path) -> None:
    run = start(tmp_path, *SHORT)
    run.running()
    os.killpg(run.proc.pid, signal.SIGINT)        # what a terminal's Ctrl-C sends: the whole foreground group
    code, out, summary = run.finish()
    assert_proves_nothing(code, out, summary, end="interrupted")
    assert "interrupted (Ctrl-C)" in out
    assert "the run was interrupted at" in reasons(summary)
    # What was measured so far is all there: requests, the thresholds judged on them, every report file.
    assert summary["requests"] > 0 and summary["status_codes"].get("200", 0) > 0
    assert {t["verdict"] for t in summary["thresholds"]} <= {"pass", "fail", "insufficient"}
    for name in ("summary.json", "junit.xml", "summary.md", "report.html", "recording.json", "locust_stats.csv",
                 "locust.html"):
        assert (run.report / name).is_file(), name
    # The mock was stopped after Locust had gated, so no request failed for want of it.
    assert summary["failures"] == 0, summary["status_codes"]
    assert_nothing_left(run)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_to_loadtest_is_interrupted_and_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    run = start(tmp_path, *SHORT)
    run.running()
    run.proc.send_signal(sig)                     # timeout, a CI cancel, docker stop: to the process only
    code, out, summary = run.finish()
    assert_proves_nothing(code, out, summary, end="interrupted")
    assert f"interrupted ({sig.name})" in out
    assert summary["requests"] > 0
    assert_nothing_left(run)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_sigterm_to_make_loadtest_is_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    report = tmp_path / "report"
    # A clean make, as a user's shell starts it: under `make test ARGS=...` the outer make's variables
    # (ARGS among them) would reach this one through MAKEFLAGS.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    run = start(tmp_path, report=report, cmd=["make", "-s", "-C", str(ROOT), "loadtest", "SCENARIO=single",
                                              f"DURATION={PLANNED_S}s", f"REPORT_DIR={report}"], env=env)
    run.running()
    run.proc.send_signal(signal.SIGTERM)          # to make alone: it hands SIGTERM on to its recipe
    code, out, summary = run.finish()
    # GNU make ends itself with the signal it got once its recipe has ended (so the shell sees 143); the
    # verdict, the report and make's own "Error 2" say what the run proved.
    assert code == -signal.SIGTERM, out
    assert "Error 2" in out
    lines = [line for line in out.splitlines() if line.startswith("verdict: ")]
    assert len(lines) == 1 and lines[0].startswith("verdict: INVALID") and "(exit 2)" in lines[0], out
    assert summary["exit_code"] == 2 and summary["run"]["end"] == "interrupted"
    assert "interrupted (SIGTERM)" in out and "Traceback" not in out
    assert_nothing_left(run)


@pytest.mark.parametrize("workers", [0, 2])
def test_sigterm_to_every_process_of_the_run_at_once(tmp_path: Path, workers: int) -> None:
    """A CI runner that kills the whole process tree, or systemd stopping the unit: every process gets
    SIGTERM at the same moment, Locust's master and workers and the mock included."""
    run = start(tmp_path, *SHORT, "--workers", str(workers))
    run.running()
    everyone = [psutil.Process(run.proc.pid), *(p for p in run.seen.values() if _alive(p))]
    assert len(everyone) == 3 + workers, [p.cmdline() for p in everyone]     # loadtest, the mock, Locust's
    for p in everyone:
        p.send_signal(signal.SIGTERM)
    code, out, summary = run.finish()
    assert_proves_nothing(code, out, summary, end="interrupted")
    assert summary["requests"] > 0
    if workers:
        assert summary["run"]["workers"] == workers
    assert_nothing_left(run)


# --- a part of the suite dies under the run --------------------------------------------------------


def test_the_embedded_mock_killed_mid_run_is_named_within_seconds(tmp_path: Path) -> None:
    run = start(tmp_path, *SHORT)
    run.running()
    mock = run.child("mockprovider")
    mock.kill()
    code, out, summary = run.finish()
    # Stopped at once, not at the planned end: the run stopped itself, well before its 60 s.
    assert_proves_nothing(code, out, summary, end="fault")
    assert "the embedded mock providers died (killed by SIGKILL)" in reasons(summary)
    assert "stopped by a fault of the suite" in reasons(summary)
    assert "the embedded mock providers died (killed by SIGKILL)" in out
    assert_nothing_left(run)


def test_a_locust_worker_killed_mid_run_is_named(tmp_path: Path) -> None:
    run = start(tmp_path, *SHORT, "--workers", "2")
    run.running()
    worker = run.child("--worker")
    worker.kill()
    code, out, summary = run.finish()
    assert_proves_nothing(code, out, summary, end="fault")
    # The runner saw the process die (no need to wait for Locust's heartbeat timeout) ...
    assert f"(pid {worker.pid}) was killed by SIGKILL" in reasons(summary)
    # ... and the gate counts it lost: it never sent its last measurements. (The run stops on the fault at
    # once; on a busy machine the other worker's last report can miss that stop too, and is then counted
    # lost as well: what it measured last never reached the gate.)
    lost = summary["run"]["workers_lost"]
    assert summary["run"]["workers"] == 2 and 1 <= len(lost) <= 2
    assert f"{len(lost)} of 2 Locust workers were lost" in reasons(summary)
    assert_nothing_left(run)


def test_a_silent_locust_worker_is_lost_by_its_heartbeat(tmp_path: Path) -> None:
    run = start(tmp_path, *SHORT, "--workers", "2")
    run.running()
    worker = run.child("--worker")
    worker.suspend()       # alive but silent, as a hung or partitioned worker is: only heartbeats can tell
    code, out, summary = run.finish()
    assert_proves_nothing(code, out, summary, end="fault")
    # Locust marks a worker missing after HEARTBEAT_LIVENESS + 1 silent seconds; the plugin then stops the run.
    assert "was lost (no heartbeat for 4 s)" in out
    assert len(summary["run"]["workers_lost"]) == 1
    assert "1 of 2 Locust workers were lost" in reasons(summary)
    assert_nothing_left(run)     # the stopped worker too: it was woken to be ended


# --- an action that does nothing --------------------------------------------------------------------


def test_a_scheduled_action_the_mock_refuses_invalidates_the_run(tmp_path: Path, start_mock) -> None:
    mock = start_mock("--admin-token", "not-the-runs")     # the run has no token: every PATCH is a 401
    scenario = tmp_path / "refused.toml"
    scenario.write_text(f"""
name = "refused_action"
[target]
name = "relay"
[load]
stages = [{{ name = "hold", duration = "{PLANNED_S}s", users = 2, spawn_rate = 2 }}]
[[actions]]
at = "3s"
provider = "midjourney-v7"
set = {{ outage = true }}
[thresholds]
success = ["rate>=0.9995"]
""")
    without_token = {k: v for k, v in os.environ.items() if k != "MOCK_ADMIN_TOKEN"}
    run = start(tmp_path, str(scenario), "--mock-url", mock.url, env=without_token)
    run.running(settle_s=0)
    code, out, summary = run.finish()
    # Stopped when the action failed: the run would have gone on without the outage it is about.
    assert_proves_nothing(code, out, summary, end="fault")
    [action] = summary["actions"]
    assert action["ok"] is False and action["outcome"].startswith("HTTP 401"), action
    assert "a scheduled action did not happen: midjourney-v7 {'outage': True}" in reasons(summary)
    assert "admin action at" in out and "HTTP 401" in out
    assert_nothing_left(run, listened=False)      # Locust alone: the mock is the test's


# --- the report folder ---------------------------------------------------------------------------------


@contextmanager
def tmpfs(where: Path, *options: str) -> Iterator[Path]:
    """A small filesystem of its own (root only): read-only, or one that can fill up."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=2m", *options)), "tmpfs", str(where)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_read_only_report_folder_is_one_clear_error_before_any_load(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "ro") as ro:
        proc = subprocess.run([sys.executable, "-m", "loadtest", "run", "single", "--report-dir", str(ro / "r")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 2, out
    assert f"cannot write the report to {ro / 'r'}: Read-only file system" in out
    assert out.rstrip().splitlines()[-1].startswith("verdict: INVALID: this run proves nothing"), out
    assert "mock providers on" not in out and "Traceback" not in out and "SLA was breached" not in out


def test_a_report_folder_that_fills_up_mid_run_is_exit_2_and_still_prints_the_verdict(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small") as small:
        run = start(tmp_path, "single", "--duration", "12s", report=small / "report")
        run.running(settle_s=1.0)
        filler = small / "filler"
        with open(filler, "wb") as fh:          # someone else fills the disk while the run goes
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        code, out, summary = run.finish()
        files = {p.name for p in (small / "report").iterdir()}
    assert code == 2, out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("verdict: INVALID: this run proves nothing") and "(exit 2)" in last, last
    assert "the report could not be written" in out and "No space left on device" in out
    assert "SLA was breached" not in out and "Traceback" not in out and "closed file" not in out
    # No verdict from before the disk filled is left to say the run passed.
    if "summary.json" in files:
        assert summary["exit_code"] == 2 and "the report could not be written" in reasons(summary)
    assert_nothing_left(run)


# --- the console after an abort -------------------------------------------------------------------------


def test_an_aborted_run_ends_without_an_error_from_locusts_csv_writer(tmp_path: Path) -> None:
    scenario = tmp_path / "abort.toml"
    scenario.write_text(f"""
name = "aborts"
[target]
name = "relay"
[load]
stages = [{{ name = "hold", duration = "{PLANNED_S}s", users = 4, spawn_rate = 4 }}]
[thresholds]
success = [{{ threshold = "rate>=0.9995", abort_on_fail = true, delay_abort_eval = "2s" }}]
[gate]
min_samples = 20
""")
    run = start(tmp_path, str(scenario), "--set", "relay.error_rate=0.5")
    code, out, summary = run.finish()
    # The gate's own decision: a breach by the target, judged early (exit 1), and a clean console.
    assert code == 1, out
    assert summary["run"]["end"] == "abort" and summary["run"]["elapsed_s"] < PLANNED_S
    assert "I/O operation on closed file" not in out and "Traceback" not in out, out
    assert (run.report / "locust_stats.csv").read_text().count("\n") >= 2    # the final table was written
