"""`loadtest run --expect-workers` and `loadtest worker`, without root: what is refused before anything starts,
what a master does when its workers never come, and the locustfile the master writes for them.

The run across hosts itself (network namespaces, as root) is tests/test_multihost.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.remote import LOCUSTFILE_NAME, write_locustfile


def loadtest(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "loadtest", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stderr + proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "2", "--expect-workers", "2", "--mock-url", "http://127.0.0.1:9"],
     "--workers starts Locust workers on this host, --expect-workers waits for workers started on others"),
    (["--expect-workers", "2"],
     "workers on other hosts cannot reach the mock this command would start on 127.0.0.1"),
    (["--expect-workers", "-1"], "--expect-workers must be 0 or more, got -1"),
    (["--expect-workers", "1", "--mock-url", "http://127.0.0.1:9", "--master-bind-port", "70000"],
     "--master-bind-port must be 0..65535"),
    (["--expect-workers", "1", "--mock-url", "http://127.0.0.1:9", "--expect-workers-max-wait", "0"],
     "--expect-workers-max-wait must be more than 0 s"),
])
def test_what_remote_workers_could_not_do_is_refused_before_anything_starts(tmp_path: Path, args: list[str],
                                                                              message: str) -> None:
    code, out = loadtest(tmp_path, "run", "single", *args, "--report-dir", str(tmp_path / "report"))
    assert code == 2 and message in out, out
    assert "Starting Locust" not in out and "Traceback" not in out
    assert not (tmp_path / "report" / "summary.json").exists()


def test_a_gateway_the_run_would_start_itself_is_refused(tmp_path: Path) -> None:
    code, out = loadtest(tmp_path, "run", "gateway_outage", "--expect-workers", "1", "--mock-url",
                         "http://127.0.0.1:9", "--report-dir", str(tmp_path / "report"))
    assert code == 2 and "the gateway under test ([sut]) is started on this host's loopback" in out, out


def test_loadtest_worker_needs_the_master_host(tmp_path: Path) -> None:
    code, out = loadtest(tmp_path, "worker")
    assert code == 2 and "--master-host" in out and "required" in out, out
    code, out = loadtest(tmp_path, "worker", "--master-host", "10.0.0.2", "--master-port", "0")
    assert code == 2 and "--master-port must be 1..65535" in out, out


def test_the_workers_locustfile_carries_a_scenario_file_and_the_options(tmp_path: Path) -> None:
    scenario = tmp_path / "mine.toml"
    scenario.write_text('name = "mine"\n[target]\nname = "relay"\n')
    path = write_locustfile(tmp_path, str(scenario), {"duration": "20s", "mock_url": "http://10.0.0.1:8000",
                                                       "embedded_mock": False, "target": None, "baseline": "x.json"})
    assert path.name == LOCUSTFILE_NAME
    text = path.read_text()
    compile(text, str(path), "exec")
    assert repr(scenario.read_text()) in text and "scenario_name='mine.toml'" in text
    assert "{'duration': '20s', 'mock_url': 'http://10.0.0.1:8000'}" in text    # only what a worker loads with
    assert "baseline" not in text and str(tmp_path) not in text                  # nothing of the master's paths


def test_the_workers_locustfile_names_a_builtin_scenario(tmp_path: Path) -> None:
    text = write_locustfile(tmp_path, "flash_sale", {}).read_text()
    assert "scenario_name='flash_sale', scenario_text=None" in text


@pytest.mark.slow
def test_a_master_whose_workers_never_come_gives_up_and_proves_nothing(tmp_path: Path, fast_mock) -> None:
    code, out = loadtest(tmp_path, "run", "single", "--duration", "5s", "--mock-url", fast_mock.url,
                         "--expect-workers", "1", "--master-bind-host", "127.0.0.1", "--master-bind-port", "0",
                         "--expect-workers-max-wait", "3", "--report-dir", str(tmp_path / "report"))
    assert code == 2, out
    assert "loadtest worker --master-host 127.0.0.1 --master-port " in out     # what to run was said
    assert "Gave up waiting for workers to connect" in out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("verdict: INVALID") and "(exit 2)" in last, last
