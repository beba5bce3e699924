"""The Midjourney job API (midjourney-proxy shape): submit, then poll the task until it is done."""

from __future__ import annotations

import time

import httpx
from mockserver import MockServer

PROMPT = "Gold watch on black velvet, dramatic rim light --ar 1:1"


def submit(server: MockServer, secret: str, **body: object) -> dict:
    r = httpx.post(f"{server.url}/midjourney/mj/submit/imagine", json={"prompt": PROMPT, **body},
                   headers={"mj-api-secret": secret}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def fetch(server: MockServer, task: str, secret: str) -> dict:
    r = httpx.get(f"{server.url}/midjourney/mj/task/{task}/fetch", headers={"mj-api-secret": secret}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def follow(server: MockServer, task: str, secret: str, limit_s: float = 30.0) -> list[dict]:
    """Every view of the task, polled until it finishes (the limit only stops a broken run)."""
    views = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        view = fetch(server, task, secret)
        views.append(view)
        if view["status"] in ("SUCCESS", "FAILURE"):
            return views
        time.sleep(0.01)
    raise AssertionError(f"task {task} did not finish: last view {views[-1]}")


def test_job_moves_through_every_state_under_a_small_capacity(start_mock, tmp_path) -> None:
    """One slot, one running job per account. A (account 1) runs; B (account 1) waits behind its
    own account (NOT_START); C (account 2) waits for the slot (SUBMITTED). When A ends, the slot
    goes to C, so B, now free of its account's limit, waits for the slot too: NOT_START ->
    SUBMITTED -> IN_PROGRESS -> SUCCESS. Every job takes exactly 500 ms (a profile without
    spread), so each state lasts long enough to be seen."""
    profile = tmp_path / "steady.toml"
    profile.write_text('[midjourney-v7]\n'
                       'latency = { p50_ms = 5000, p99_ms = 5000, min_ms = 0, max_ms = 60000 }\n')
    server = start_mock("--profiles", str(profile), "--latency-scale", "0.1", "--set", "midjourney-v7.slots=1",
                        "--set", "midjourney-v7.per_key_slots=1", "--set", "midjourney-v7.error_rate=0")
    a = submit(server, "mj-account-0001")
    b = submit(server, "mj-account-0001")
    c = submit(server, "mj-account-0002")
    assert a["code"] == 1 and a["description"] == "Submit success"
    assert b["code"] == 22 and c["code"] == 22                # queued, with the queue length
    assert c["properties"]["numberOfQueues"] == 2
    assert fetch(server, c["result"], "mj-account-0002")["status"] == "SUBMITTED"

    views = follow(server, b["result"], "mj-account-0001")
    states = [v["status"] for v in views]
    order = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert order == ["NOT_START", "SUBMITTED", "IN_PROGRESS", "SUCCESS"]

    progress = [int(v["progress"].rstrip("%")) for v in views]
    assert progress == sorted(progress)                       # never goes back
    assert all(p == 0 for p, v in zip(progress, views) if v["status"] in ("NOT_START", "SUBMITTED"))
    assert all(0 <= p <= 99 for p, v in zip(progress, views) if v["status"] == "IN_PROGRESS")
    done = views[-1]
    assert done["progress"] == "100%" and done["failReason"] is None
    assert done["submitTime"] <= done["startTime"] <= done["finishTime"]
    image = httpx.get(done["imageUrl"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert follow(server, a["result"], "mj-account-0001")[-1]["status"] == "SUCCESS"
    assert follow(server, c["result"], "mj-account-0002")[-1]["status"] == "SUCCESS"


def test_queue_full_is_code_23_and_an_account_has_its_own_limit(start_mock) -> None:
    # Jobs that take minutes, so none ends while the test submits.
    server = start_mock("--set", "midjourney-v7.latency_multiplier=100", "--set", "midjourney-v7.error_rate=0")
    # The built-in account limit: 3 running and 10 queued per secret (midjourney-proxy's defaults).
    codes = [submit(server, "mj-busy-account")["code"] for _ in range(14)]
    assert codes == [1] * 3 + [22] * 10 + [23]
    assert submit(server, "mj-other-account")["code"] == 1   # another account is not held up


def test_turbo_mode_and_banned_words(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "midjourney-v7-turbo.error_rate=0")
    turbo = submit(server, "mj-turbo-account", mode="TURBO")
    assert turbo["code"] == 1 and turbo["properties"]["model"] == "midjourney-v7-turbo"
    # Scale 0: the job is finished by the time it can be fetched.
    view = fetch(server, turbo["result"], "mj-turbo-account")
    assert view["status"] == "SUCCESS" and view["properties"]["costUsd"] == 0.04
    banned = httpx.post(f"{server.url}/midjourney/mj/submit/imagine", json={"prompt": "nsfw product shot"},
                        headers={"mj-api-secret": "mj-turbo-account"}, timeout=10).json()
    assert banned["code"] == 24 and banned["properties"]["bannedWord"] == "nsfw" and banned["result"] is None
