"""The Midjourney job API (midjourney-proxy shape): submit, poll, accounts and their isolation, limits."""

from __future__ import annotations

import base64

import httpx
import pytest
from mjhelpers import MJ, PROMPT, fetch, fetch_raw, finished, follow, metrics, post, submit
from mockserver import MockServer

STEADY = '[midjourney-v7]\nlatency = { p50_ms = 5000, p99_ms = 5000, min_ms = 0, max_ms = 60000 }\n'


@pytest.fixture(scope="module")
def mj() -> MockServer:
    """Jobs of about 30 ms, no injected errors: every task succeeds."""
    with MockServer("--latency-scale", "0.01", "--set", "midjourney-v7.error_rate=0",
                    "--set", "midjourney-v7-turbo.error_rate=0") as server:
        yield server


def test_job_moves_through_every_state_under_a_small_capacity(start_mock, tmp_path) -> None:
    """One slot, one running job per account. A (account 1) runs; B (account 1) waits behind its
    own account (NOT_START); C and D (accounts 2, 3) wait for the slot (SUBMITTED). When A ends,
    the slot goes to C, so B, now free of its account's limit, waits for the slot too: NOT_START ->
    SUBMITTED -> IN_PROGRESS -> SUCCESS. Every job takes exactly 500 ms (a profile without
    spread), so each state lasts long enough to be seen."""
    profile = tmp_path / "steady.toml"
    profile.write_text(STEADY)
    server = start_mock("--profiles", str(profile), "--latency-scale", "0.1", "--set", "midjourney-v7.slots=1",
                        "--set", "midjourney-v7.per_key_slots=1", "--set", "midjourney-v7.error_rate=0")
    a = submit(server, "account-0001")
    b = submit(server, "account-0001")
    c = submit(server, "account-0002")
    d = submit(server, "account-0003")
    assert a["code"] == 1 and a["description"] == "Submit success"
    assert [x["code"] for x in (b, c, d)] == [22, 22, 22]      # queued, with the tasks ahead of each
    assert [x["properties"]["numberOfQueues"] for x in (b, c, d)] == [0, 0, 1]
    assert d["description"] == "In queue, there are 1 tasks ahead"
    assert fetch(server, c["result"], "account-0002")["status"] == "SUBMITTED"

    views = follow(server, b["result"], "account-0001")
    states = [v["status"] for v in views]
    order = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert order == ["NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS"]

    progress = [int(v["progress"].rstrip("%")) for v in views]
    assert progress == sorted(progress)                       # never goes back
    assert all(p == 0 for p, v in zip(progress, views) if v["status"] in ("NOT_START", "SUBMITTED"))
    # Progress moves in the steps Discord's progress messages show.
    assert {p for p, v in zip(progress, views) if v["status"] == "IN_PROGRESS"} <= {0, 15, 31, 46, 62, 78, 93}
    done = views[-1]
    assert done["progress"] == "100%" and done["failReason"] is None
    assert done["submitTime"] <= done["startTime"] <= done["finishTime"]
    assert done["action"] == "IMAGINE" and done["description"] == f"/imagine {PROMPT}"
    image = httpx.get(done["imageUrl"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    for task, secret in ((a, "account-0001"), (c, "account-0002"), (d, "account-0003")):
        assert follow(server, task["result"], secret)[-1]["status"] == "SUCCESS"


def test_queue_full_is_code_23_and_an_account_has_its_own_limit(start_mock) -> None:
    # Jobs that take minutes, so none ends while the test submits.
    server = start_mock("--set", "midjourney-v7.latency_multiplier=100", "--set", "midjourney-v7.error_rate=0")
    # The built-in account limit: 3 running and 10 queued per secret (midjourney-proxy's defaults).
    codes = [submit(server, "busy-account")["code"] for _ in range(14)]
    assert codes == [1] * 3 + [22] * 10 + [23]
    assert submit(server, "other-account")["code"] == 1   # another account is not held up


def test_turbo_mode_and_banned_words(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "midjourney-v7-turbo.error_rate=0")
    turbo = submit(server, "turbo-account", mode="TURBO")
    assert turbo["code"] == 1 and turbo["properties"]["model"] == "midjourney-v7-turbo"
    # Scale 0: the job is finished by the time it can be fetched.
    view = fetch(server, turbo["result"], "turbo-account")
    assert view["status"] == "SUCCESS" and view["properties"]["costUsd"] == 0.04
    banned = submit(server, "turbo-account", prompt="nsfw product shot")
    assert banned["code"] == 24 and banned["properties"]["bannedWord"] == "nsfw" and banned["result"] is None


# Accounts

@pytest.mark.parametrize("secret", ["sk-midjourney", "a", "0123456789", "Our proxy's secret, with spaces",
                                    "mj-shaped-secret"])
def test_any_non_empty_secret_is_an_account(mj: MockServer, secret: str) -> None:
    view = finished(mj, secret)
    assert view["status"] == "SUCCESS"
    assert fetch(mj, view["id"], secret)["id"] == view["id"]


@pytest.mark.parametrize("headers", [{}, {"mj-api-secret": ""}])
def test_a_missing_secret_is_401(mj: MockServer, headers: dict[str, str]) -> None:
    r = httpx.post(f"{mj.url}{MJ}/submit/imagine", json={"prompt": PROMPT}, headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == 4 and "mj-api-secret" in r.json()["description"]


def test_mj_secrets_restricts_the_accounts_to_a_list(start_mock, tmp_path) -> None:
    listed = tmp_path / "secrets.txt"
    listed.write_text("# the shop's integrations\nfrom-file-secret\n\n  another-from-file  \n")
    server = start_mock("--latency-scale", "0", "--mj-secrets", "shop-a, shop-b", "--mj-secrets-file", str(listed))
    for secret in ("shop-a", "shop-b", "from-file-secret", "another-from-file"):
        assert submit(server, secret)["code"] == 1, secret
    for secret in ("shop-c", "sk-midjourney", "shop-a-but-longer", "# the shop's integrations"):
        r = post(server, "/submit/imagine", secret, {"prompt": PROMPT})
        assert r.status_code == 401 and r.json()["code"] == 4, secret
        assert secret not in r.text          # the refused secret is masked, never echoed whole
        assert fetch_raw(server, "1", secret).status_code == 401


@pytest.mark.parametrize("args, message", [
    (["--mj-secrets", " , "], "lists no secret"),
    (["--mj-secrets-file", "/nonexistent/secrets"], "No such file"),
    (["--mj-max-tasks", "0"], "--mj-max-tasks"),
    (["--mj-retention-s", "-1"], "--mj-retention-s"),
])
def test_bad_midjourney_options_are_one_clear_error(args: list[str], message: str) -> None:
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "mockprovider", "--port", "0", *args], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr


def test_an_account_sees_only_its_own_tasks(mj: MockServer) -> None:
    """Another account's task answers exactly as a task that never was: fetch HTTP 200 with no body
    (the proxy's fetch returns null), left out of list-by-condition, code 3 for actions."""
    mine = finished(mj, "shop-owner")
    unknown = fetch_raw(mj, "1000000000000000", "shop-intruder")
    foreign = fetch_raw(mj, mine["id"], "shop-intruder")
    assert unknown.status_code == foreign.status_code == 200
    assert unknown.content == foreign.content == b""
    assert set(unknown.headers) - {"date"} == set(foreign.headers) - {"date"}
    assert fetch(mj, mine["id"], "shop-owner")["status"] == "SUCCESS"        # the owner still sees it

    listed = post(mj, "/task/list-by-condition", "shop-intruder", {"ids": [mine["id"]]})
    assert listed.status_code == 200 and listed.json() == []

    button = mine["buttons"][0]["customId"]
    for task in (mine["id"], "1000000000000000"):
        action = post(mj, "/submit/action", "shop-intruder", {"taskId": task, "customId": button})
        assert action.status_code == 404 and action.json()["code"] == 3 and action.json()["result"] is None
        change = post(mj, "/submit/change", "shop-intruder", {"taskId": task, "action": "UPSCALE", "index": 1})
        assert change.status_code == 200 and change.json()["code"] == 3
    # Nothing the intruder sent touched the owner's task.
    assert fetch(mj, mine["id"], "shop-owner") == mine


# Limits

def test_a_prompt_is_at_most_discords_6000_characters(mj: MockServer) -> None:
    assert submit(mj, "long-prompts", prompt="p" * 6000)["code"] == 1
    too_long = submit(mj, "long-prompts", prompt="p" * 6001)
    assert too_long["code"] == 4 and "6,000" in too_long["description"] and too_long["result"] is None
    # Whitespace around a prompt is trimmed first, as the proxy does.
    assert submit(mj, "long-prompts", prompt="  " + "p" * 6000 + "  ")["code"] == 1


def png_data_url(size: int = 64) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * size).decode()


@pytest.mark.parametrize("body, fragment", [
    ({"state": "s" * 4097}, "state"),
    ({"notifyHook": "http://127.0.0.1/" + "h" * 2040}, "notifyHook"),
    ({"notifyHook": "not a url"}, "notifyHook"),
    ({"notifyHook": "ftp://127.0.0.1/hook"}, "http"),
    ({"notifyHook": "http://hooks.example.com/mj"}, "--mj-notify-hosts"),
    ({"notifyHook": "http://10.0.0.8:8080/mj"}, "--mj-notify-hosts"),
    ({"base64Array": [png_data_url()] * 6}, "limit is 5"),
    ({"base64Array": ["iVBORw0KGgo="]}, "data URL"),
    ({"base64Array": ["data:image/png;base64,***"]}, "not valid base64"),
    ({"base64Array": ["data:image/png;base64," + "A" * (14 * 1024 * 1024)]}, "over 10 MB"),
    ({"base64": "data:image/png;base64,%%%"}, "not valid base64"),
])
def test_submit_fields_are_bounded_and_checked(mj: MockServer, body: dict, fragment: str) -> None:
    answer = submit(mj, "bounded-fields", **body)
    assert answer["code"] == 4 and fragment in answer["description"] and answer["result"] is None


def test_good_images_and_loopback_hooks_are_accepted(mj: MockServer) -> None:
    assert submit(mj, "good-images", base64Array=[png_data_url()] * 5, state="s" * 4096)["code"] == 1
    for i, hook in enumerate(("http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]:9/x",
                              "http://127.8.9.10:9/x")):
        assert submit(mj, f"good-hooks-{i}", notifyHook=hook)["code"] == 1, hook   # an account each: none waits


def test_the_store_is_bounded_by_count_the_oldest_finished_go_first(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--no-limits", "--mj-max-tasks", "50")
    ids = [submit(server, "count-bound")["result"] for _ in range(120)]
    held = metrics(server)
    assert held['mock_midjourney_tasks{state="live"}'] + held['mock_midjourney_tasks{state="finished"}'] == 50
    assert held['mock_midjourney_tasks_pruned_total{reason="evicted"}'] == 70
    assert fetch_raw(server, ids[0], "count-bound").content == b""            # evicted: as if unknown
    assert fetch(server, ids[-1], "count-bound")["status"] == "SUCCESS"
    assert fetch(server, ids[-50], "count-bound")["status"] == "SUCCESS"


def test_a_store_full_of_running_tasks_refuses_with_code_23(start_mock) -> None:
    server = start_mock("--set", "midjourney-v7.latency_multiplier=100", "--set", "midjourney-v7.error_rate=0",
                        "--mj-max-tasks", "5")
    codes = [submit(server, f"running-{i}")["code"] for i in range(7)]
    assert codes == [1] * 5 + [23] * 2
    assert submit(server, "running-9")["description"] == "Queue is full, please try again later"


def test_the_store_is_bounded_by_bytes(start_mock) -> None:
    """1 MB holds about 140 tasks with 6,000-character prompts (about 7 KB each, as charged): the
    store keeps under its bytes whatever the prompts weigh."""
    server = start_mock("--latency-scale", "0", "--no-limits", "--mj-max-store-mb", "1")
    for _ in range(300):
        assert submit(server, "byte-bound", prompt="b" * 6000)["code"] == 1
    held = metrics(server)
    assert held["mock_midjourney_store_bytes"] <= 1024 * 1024
    tasks = held['mock_midjourney_tasks{state="finished"}'] + held['mock_midjourney_tasks{state="live"}']
    assert 100 <= tasks < 300
    assert held['mock_midjourney_tasks_pruned_total{reason="evicted"}'] == 300 - tasks


def test_a_finished_task_expires_after_its_retention(start_mock) -> None:
    import time
    server = start_mock("--latency-scale", "0", "--no-limits", "--mj-retention-s", "1")
    task = submit(server, "short-memory")["result"]
    assert fetch(server, task, "short-memory")["status"] == "SUCCESS"
    time.sleep(1.5)
    assert fetch_raw(server, task, "short-memory").content == b""    # gone on time, before any pruning ran
    submit(server, "short-memory")                                   # the next submit prunes it
    assert metrics(server)['mock_midjourney_tasks_pruned_total{reason="expired"}'] == 1
