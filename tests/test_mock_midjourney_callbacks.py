"""notifyHook: the task's JSON POSTed at each change, to a real HTTP server on 127.0.0.1; bounded when
the hook is slow, dead or failing, and never in the way of answering."""

from __future__ import annotations

import socket

import httpx
from mjhelpers import HookServer, SilentServer, fetch, follow, metrics, submit

STEPS = [0, 15, 31, 46, 62, 78, 93]


def steady(tmp_path, extra: str = "") -> str:
    """Every grid takes exactly 5 s (x the latency scale): progress steps far enough apart to be seen."""
    profile = tmp_path / "steady.toml"
    profile.write_text('[midjourney-v7]\nlatency = { p50_ms = 5000, p99_ms = 5000, min_ms = 0, max_ms = 60000 }\n'
                       + extra)
    return str(profile)


def changes(bodies: list[dict]) -> list[tuple[str, str]]:
    return [(b["status"], b["progress"]) for b in bodies]


def test_a_task_is_called_back_at_each_change(start_mock, tmp_path) -> None:
    server = start_mock("--profiles", steady(tmp_path), "--latency-scale", "0.1", "--set", "midjourney-v7.error_rate=0")
    with HookServer() as hook:
        task = submit(server, "hooked", notifyHook=hook.url, state="cart-42")["result"]
        bodies = hook.wait_for(task, "SUCCESS")
        final = fetch(server, task, "hooked")
    got = changes(bodies)
    assert got[0] == ("SUBMITTED", "0%") and got[-1] == ("SUCCESS", "100%")
    progress = [int(p.rstrip("%")) for s, p in got if s == "IN_PROGRESS"]
    assert progress[0] == 0 and progress == sorted(set(progress)) and set(progress) <= set(STEPS)
    # Every change was either sent or, if the hook was still busy with the one before, replaced by a
    # newer progress: none went missing.
    counted = metrics(server)
    assert counted['mock_midjourney_callbacks_total{outcome="sent"}'] == len(bodies)
    assert len(bodies) + counted['mock_midjourney_callbacks_total{outcome="superseded"}'] == 2 + len(STEPS)
    assert counted['mock_midjourney_callbacks_total{outcome="dropped"}'] == 0
    assert all(ct == "application/json" for ct in hook.content_types)
    # Each callback is the task's JSON as the proxy sends it: the same fields as a fetch.
    assert all(set(b) == set(final) for b in bodies)
    assert all(b["id"] == task and b["state"] == "cart-42" and b["properties"]["notifyHook"] == hook.url
               for b in bodies)
    assert bodies[-1] == final and len(final["buttons"]) == 9
    assert all(b["buttons"] == [] and b["imageUrl"] is None for b in bodies[:-1])


def test_queued_tasks_are_called_back_once_submitted_and_failures_too(start_mock, tmp_path) -> None:
    """One slot. A runs; B (A's account) waits in its account's queue: NOT_START, no callback yet; C
    (another account) waits for the slot: SUBMITTED, called back at once. A task that fails is called
    back with FAILURE and its reason."""
    failing = ("faults = { error_rate = 0.0, mix = { server_error = 1.0, overloaded = 0.0, content_policy = 0.0, "
               "timeout = 0.0 } }\n")
    server = start_mock("--profiles", steady(tmp_path, failing), "--latency-scale", "0.05",
                        "--set", "midjourney-v7.slots=1", "--set", "midjourney-v7.per_key_slots=1")
    with HookServer() as hook:
        a = submit(server, "acct-a", notifyHook=hook.url)["result"]
        b = submit(server, "acct-a", notifyHook=hook.url)["result"]
        c = submit(server, "acct-c", notifyHook=hook.url)["result"]
        assert changes(hook.wait_for(c, "SUBMITTED")) == [("SUBMITTED", "0%")]
        assert fetch(server, c, "acct-c")["startTime"] is None
        assert hook.of(b) == [] and fetch(server, b, "acct-a")["status"] == "NOT_START"
        for task in (a, b, c):
            got = changes(hook.wait_for(task, "SUCCESS"))
            assert got[0] == ("SUBMITTED", "0%") and got.count(("SUBMITTED", "0%")) == 1, task
        server.admin("midjourney-v7", error_rate=1.0)
        answer = submit(server, "acct-f", notifyHook=hook.url)
        failed = answer["result"]
        assert failed, answer
        bodies = hook.wait_for(failed, "FAILURE")
    assert changes(bodies)[0] == ("SUBMITTED", "0%")
    assert bodies[-1]["failReason"] == "Internal error" and bodies[-1]["imageUrl"] is None
    assert bodies[-1] == follow(server, failed, "acct-f")[-1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_or_failing_hook_is_counted_and_costs_the_tasks_nothing(start_mock) -> None:
    server = start_mock("--latency-scale", "0.01", "--set", "midjourney-v7.error_rate=0")
    dead = f"http://127.0.0.1:{closed_port()}/gone"
    with HookServer(status=500) as failing:
        tasks = [submit(server, "dead-hooks", notifyHook=url)["result"] for url in (dead, failing.url) * 3]
        assert all(follow(server, t, "dead-hooks")[-1]["status"] == "SUCCESS" for t in tasks)
        failing.wait_for(tasks[-1], "SUCCESS")
    counted = metrics(server)
    # Three changes a task at least (SUBMITTED, IN_PROGRESS 0%, SUCCESS), none of them delivered.
    assert counted['mock_midjourney_callbacks_total{outcome="failed"}'] >= 3 * len(tasks)
    assert counted['mock_midjourney_callbacks_total{outcome="sent"}'] == 0


def test_a_hook_that_never_answers_cannot_pile_up_callbacks_or_hold_up_answers(start_mock) -> None:
    """Ten posts hang (the proxy's notify pool) and a thousand tasks wait for them; every change past
    that is dropped and counted, while every submit and fetch is still answered."""
    server = start_mock("--latency-scale", "0", "--no-limits")
    with SilentServer() as silent:
        answers = [submit(server, f"flood-{i % 50}", notifyHook=silent.url) for i in range(1300)]
        assert [a["code"] for a in answers] == [1] * 1300
        assert fetch(server, answers[-1]["result"], "flood-49")["status"] == "SUCCESS"
        assert httpx.get(f"{server.url}/healthz", timeout=10).json()["status"] == "ok"
        counted = metrics(server)
        assert counted["mock_midjourney_callbacks_waiting"] <= 1000
        assert counted['mock_midjourney_callbacks_total{outcome="dropped"}'] >= 3 * (1300 - 1010 - 10 * 2)
        server.stop()                           # shutting down with posts in flight is clean
    log = "".join(server.output)
    assert "Traceback" not in log and "Unclosed" not in log and "was destroyed" not in log
