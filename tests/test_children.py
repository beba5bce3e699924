"""What the suite's children do when the suite itself is killed outright: they end too (no gateway or mock is
left holding a port after a CI job's timeout SIGKILLs the runner)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

PARENT = """
import subprocess, sys, time
from loadtest.children import own_session
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], preexec_fn=own_session())
print(child.pid, flush=True)
time.sleep(120)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_child_of_the_suite_ends_when_the_suite_is_killed() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=root)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        child_proc = psutil.Process(child)
        assert child_proc.is_running() and os.getsid(child) == child     # a session of its own
        parent.send_signal(signal.SIGKILL)                                # no handler, no cleanup
        parent.wait(10)
        deadline = time.monotonic() + 20       # bounded wait, not a timing assertion
        while time.monotonic() < deadline and not gone(child):
            time.sleep(0.05)
        assert gone(child), "the child outlived the suite"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)
