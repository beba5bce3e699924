"""The flash sale across three hosts: the mock on A, Locust's master on B, its workers on C.

The hosts are network namespaces the test creates (as root) and removes: each with its own loopback,
one address on a /24 and a veth link to a bridge in a fourth namespace, the LAN switch. Nothing is
shared between them but the file system, and a worker is not let to use even that: the scenario file
is deleted from B once the master has loaded it, so a worker has only what the master sends it.
What runs on each host is what the README's "Several hosts" recipe says a user types there:

    A: MOCK_ADMIN_TOKEN=... python -m mockprovider --host 0.0.0.0 --seed 42 ...
    B: MOCK_ADMIN_TOKEN=... loadtest run SCENARIO --mock-url http://A:8000 --expect-workers 2 --master-bind-host B
    C: loadtest worker --master-host B                        (before there is a master: it waits)
       loadtest worker --master-host B --master-port 5557     (the line B prints)

The flash sale is scaled down (users and the throughput floor by the same factor, 20 s) so that a
run fits a shared 2-core machine; its verdict is compared with the same scenario run on one host
(`loadtest run --workers 2`, everything on loopback). A worker killed mid-run is then reported by
name, and the run proves nothing (exit 2), exactly as on one host (tests/test_loadtest_faults.py).

Skipped unless root (network namespaces need it; CI runs as root). `ip` comes from iproute2, which
`make test` installs when it is missing; without it the test fails and says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import tomli_w

pytestmark = pytest.mark.slow

SUBNET = "10.213.0"
HOSTS = {"a": f"{SUBNET}.1", "b": f"{SUBNET}.2", "c": f"{SUBNET}.3"}
PREFIX = f"ltmh{os.getpid()}-"     # this test process's namespaces: several runs of the test may share a machine
MOCK_PORT = 8000
# The mock listens beyond its loopback only with an admin token; the master, which reads its record, has it too.
ADMIN = {"MOCK_ADMIN_TOKEN": "multihost-test-token"}
USERS_SCALE = 0.07                 # 847 -> 59 flash-sale users: two workers and a master on a shared 2-core machine


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:    # e.g. a container without CAP_NET_ADMIN/CAP_SYS_ADMIN: say so, do not skip
        pytest.fail(f"`ip {' '.join(args)}` failed (exit {done.returncode}): {done.stderr.strip()}")


def _remove_namespaces(names: list[str]) -> None:
    for name in names:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
        for pid in pids:    # what is still running in a namespace of ours was started by this test
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _stale_namespaces() -> list[str]:
    """Namespaces of an earlier run of this test whose process is gone (it was killed before its teardown)."""
    stale = []
    for name in _namespaces():
        if (m := re.fullmatch(r"ltmh(\d+)-\w+", name)) and not Path(f"/proc/{m.group(1)}").exists():
            stale.append(name)
    return stale


@dataclass
class Lan:
    """Three hosts on one switch; every process started on them is stopped at the end."""

    names: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, host: str, cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.names[host], *cmd], cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()


@pytest.fixture
def lan() -> Iterator[Lan]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if shutil.which("ip") is None:
        pytest.fail("`ip` (Debian's iproute2) is missing: `make test` installs it; or apt-get install iproute2")
    _remove_namespaces(_stale_namespaces())
    names = {role: PREFIX + role for role in ("sw", *HOSTS)}
    net = Lan({role: name for role, name in names.items() if role != "sw"})
    try:
        for name in names.values():
            ip("netns", "add", name)
        sw = names["sw"]
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        for role, address in HOSTS.items():
            host = names[role]
            # The veth pair is made inside the switch's namespace with its far end in the host's: no link is ever
            # made in (or named in) the machine's own network namespace.
            ip("-n", sw, "link", "add", f"to-{role}", "type", "veth", "peer", "name", "eth0", "netns", host)
            ip("-n", sw, "link", "set", f"to-{role}", "master", "br0")
            ip("-n", sw, "link", "set", f"to-{role}", "up")
            ip("-n", host, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", host, "link", "set", "eth0", "up")
            ip("-n", host, "link", "set", "lo", "up")
        yield net
    finally:
        net.stop_all()
        _remove_namespaces(list(names.values()))
        left = set(_namespaces()) & set(names.values())
        assert not left, f"network namespaces left behind: {sorted(left)}"


def small_flash_sale(folder: Path) -> Path:
    """The built-in flash sale scaled down: its stages, think time, latency and success thresholds as they are;
    users scaled by USERS_SCALE, and the throughput floor set at half of what those users offer."""
    from loadtest.scenario import scenario_path
    raw = tomllib.loads(scenario_path("flash_sale").read_text())
    raw["name"] = "flash_sale_small"
    for stage in raw["load"]["stages"]:
        stage["users"] = max(5, round(stage["users"] * USERS_SCALE))
    # 59 users thinking 0.5-0.9 s offer about 59 / 0.75 = 79 requests/s; a floor at half that is still judged
    # (a run that lost a worker's requests would miss it) without asking this machine for speed.
    raw["thresholds"]["requests{stage:hold}"] = ["rps>=40"]
    raw.pop("regressions", None)
    # About 1,200 requests in 20 s: too few for the 99.95 % success bound's interval, so the short run is judged
    # on what it observed (the scenario's own --inconclusive observed), and its injected faults are off so that
    # both runs see the same outcomes (at 0.025 % one fault in 1,200 requests would decide the verdict by chance).
    # 100: the scaled surge stage makes only ~200 requests (196 in one run), so a floor of 200 left it
    # "insufficient" by chance.
    raw["gate"] = {"min_samples": 100, "inconclusive": "observed"}
    raw["mock"]["set"] = ["relay.error_rate=0"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flash_sale_small.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def wait_for(text: str | re.Pattern[str], log: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = log.read_text(errors="replace") if log.exists() else ""
        found = re.search(text, out) if isinstance(text, re.Pattern) else (text if text in out else None)
        if found:
            return found.group(0) if isinstance(found, re.Match) else found
        assert proc.poll() is None, f"ended (exit {proc.returncode}) before {text!r}:\n{out}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


@dataclass
class MultiHostRun:
    code: int
    out: str
    summary: dict
    worker_logs: list[str]
    killed: int | None = None


def run_across_hosts(lan: Lan, tmp: Path, *, duration: str, kill_a_worker: bool = False) -> MultiHostRun:
    from loadtest.runner import mock_args
    from loadtest.scenario import load_scenario

    scenario = small_flash_sale(tmp / "b")
    # A: the mock as the scenario's [mock] says (what `loadtest run` would give the mock it starts itself).
    ready = tmp / "a" / "ready.json"
    mock = lan.start("a", [sys.executable, "-m", "mockprovider", "--host", "0.0.0.0", "--port", str(MOCK_PORT),
                           *mock_args(load_scenario(str(scenario))), "--access-log", "--ready-file", str(ready)],
                     tmp / "a.log", tmp / "a", env=ADMIN)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert mock.poll() is None and time.monotonic() < deadline, (tmp / "a.log").read_text()
        time.sleep(0.1)
    # C: a first worker, before there is a master (it waits for one), with the master's default port.
    worker_logs = [tmp / f"c{n}.log" for n in (1, 2)]
    workers = [lan.start("c", [sys.executable, "-m", "loadtest", "worker", "--master-host", HOSTS["b"]],
                         worker_logs[0], tmp / "c")]
    # B: the master, waiting for two workers; its scenario file is gone before the second one starts.
    master_log = tmp / "b.log"
    report = tmp / "b" / "report"
    master = lan.start("b", [sys.executable, "-m", "loadtest", "run", str(scenario), "--duration", duration,
                             "--mock-url", f"http://{HOSTS['a']}:{MOCK_PORT}", "--expect-workers", "2",
                             "--master-bind-host", HOSTS["b"], "--report-dir", str(report)], master_log, tmp / "b",
                      env=ADMIN)
    told = wait_for(re.compile(r"loadtest worker --master-host \S+ --master-port \d+"), master_log, master)
    assert told == f"loadtest worker --master-host {HOSTS['b']} --master-port 5557"
    scenario.unlink()
    # C: the second worker, with the line B printed.
    workers.append(lan.start("c", [sys.executable, "-m", *told.split()], worker_logs[1], tmp / "c"))
    killed = None
    if kill_a_worker:
        wait_for("All users spawned", master_log, master)
        time.sleep(3)
        # `ip netns exec` execs `loadtest worker`, whose one child is Locust's worker: the process lost.
        locust_worker = psutil.Process(workers[0].pid).children()[0]
        assert "--worker" in locust_worker.cmdline()
        locust_worker.kill()
        killed = locust_worker.pid
    code = master.wait(180)
    summary_path = report / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return MultiHostRun(code, master_log.read_text(errors="replace"), summary,
                        [log.read_text(errors="replace") for log in worker_logs], killed)


def run_on_one_host(tmp: Path, duration: str) -> tuple[int, str, dict]:
    scenario = small_flash_sale(tmp / "one")
    report = tmp / "one" / "report"
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", str(scenario), "--duration", duration,
                           "--workers", "2", "--report-dir", str(report)], cwd=tmp / "one", capture_output=True,
                          text=True, timeout=240)
    return proc.returncode, proc.stderr + proc.stdout, json.loads((report / "summary.json").read_text())


def verdicts(summary: dict) -> dict[str, str]:
    return {t["label"]: t["verdict"] for t in summary["thresholds"]}


def test_a_flash_sale_across_three_hosts_has_the_verdict_it_has_on_one(lan: Lan, tmp_path: Path) -> None:
    one_code, one_out, one = run_on_one_host(tmp_path, "20s")
    assert one["run"]["workers"] == 2 and one["run"]["workers_lost"] == [], one_out
    assert one_code == 0 and one["verdict"] == "pass", one_out     # a healthy relay at 59 users holds the SLA

    run = run_across_hosts(lan, tmp_path / "hosts", duration="20s")
    summary = run.summary
    assert summary, run.out
    assert run.code == one_code and summary["verdict"] == one["verdict"], run.out
    assert verdicts(summary) == verdicts(one)       # the same thresholds judged, each with the same verdict
    assert summary["run"]["workers"] == 2 and summary["run"]["workers_lost"] == []
    assert summary["peak_users"] == one["peak_users"] == 59
    assert summary["mock"]["url"] == f"http://{HOSTS['a']}:{MOCK_PORT}" and summary["mock"]["embedded"] is False
    assert run.out.rstrip().splitlines()[-1].startswith("verdict: PASS"), run.out
    # Each worker loaded the master's scenario, with the master's --duration and mock, from the master alone.
    for log in run.worker_logs:
        assert (f"scenario flash_sale_small: target relay (relay, model midjourney-v7) at "
                f"http://{HOSTS['a']}:{MOCK_PORT}/relay/v1; closed model, 20 s") in log, log
    # The load crossed the links: every generation the mock answered came from C, and the master read the
    # mock's record of them from A (each of the client's requests matched on the provider's side).
    access = (tmp_path / "hosts" / "a.log").read_text(errors="replace")
    lines = re.findall(r"aiohttp\.access INFO (\S+) \[[^]]*\] \"(\w+) (/\w+)/", access)
    generations = [sender for sender, method, prefix in lines if (method, prefix) == ("POST", "/relay")]
    assert set(generations) == {HOSTS["c"]} and len(generations) >= summary["requests"], set(generations)
    assert {sender for sender, _, prefix in lines if prefix == "/admin"} == {HOSTS["b"]}
    assert summary["provider_side"]["requests"] >= summary["requests"] > 0
    assert summary["provider_side"]["url"] == f"http://{HOSTS['a']}:{MOCK_PORT}"


def test_a_worker_lost_on_another_host_is_named_and_the_run_proves_nothing(lan: Lan, tmp_path: Path) -> None:
    run = run_across_hosts(lan, tmp_path, duration="60s", kill_a_worker=True)
    summary = run.summary
    assert summary, run.out
    # As on one host: a fault of the suite, never "SLA breached".
    assert run.code == 2 and summary["exit_code"] == 2 and summary["verdict"] == "invalid", run.out
    assert summary["run"]["end"] == "fault" and summary["run"]["elapsed_s"] < 60
    assert summary["run"]["workers"] == 2 and len(summary["run"]["workers_lost"]) == 1
    lost = summary["run"]["workers_lost"][0]
    reasons = "\n".join(r["text"] for r in summary["reasons"])
    # The master cannot see a process on another host die: its heartbeats stop, and the worker is named.
    assert f"Locust worker {lost} was lost (no heartbeat for 4 s)" in run.out, run.out
    assert f"1 of 2 Locust workers were lost during the run ({lost})" in reasons, reasons
    ready = re.findall(r"(\S+) \(index \d\) reported as ready", run.out)
    quit_ = re.findall(r"Worker '(\S+)' \(index \d\) quit", run.out)
    # The one named is the one killed: the other worker was told to quit and did, the killed one never heard it.
    assert len(ready) == 2 and lost in ready and quit_ == [w for w in ready if w != lost], (ready, quit_)
    assert "Got quit message from master" not in run.worker_logs[0]
    assert "Got quit message from master" in run.worker_logs[1]
    last = run.out.rstrip().splitlines()[-1]
    assert last.startswith("verdict: INVALID: this run proves nothing") and "(exit 2)" in last, last
    assert "SLA was breached" not in run.out and "Traceback" not in run.out
