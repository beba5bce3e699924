"""Midjourney buttons: /mj/submit/action by customId, /submit/change and /simple-change, and
/mj/task/list-by-condition; all through the same capacity model as an IMAGINE."""

from __future__ import annotations

import httpx
import pytest
from mjhelpers import PROMPT, fetch, finished, follow, post, submit
from mockserver import MockServer

GRID_LABELS = ["U1", "U2", "U3", "U4", "", "V1", "V2", "V3", "V4"]


@pytest.fixture(scope="module")
def mj() -> MockServer:
    with MockServer("--latency-scale", "0.01", "--set", "midjourney-v7.error_rate=0") as server:
        yield server


def press(server: MockServer, secret: str, task: dict, custom_id: str, **extra: object) -> dict:
    return submit(server, secret, "/submit/action", taskId=task["id"], customId=custom_id, **extra)


def button(task: dict, label: str) -> str:
    return next(b["customId"] for b in task["buttons"] if b["label"] == label)


def test_a_finished_imagine_is_a_grid_with_the_proxys_buttons(mj: MockServer) -> None:
    grid = finished(mj, "grid-buttons")
    assert grid["status"] == "SUCCESS" and grid["imageUrl"]            # one image URL: the 2x2 grid
    assert [b["label"] for b in grid["buttons"]] == GRID_LABELS
    h = grid["properties"]["messageHash"]
    assert [b["customId"] for b in grid["buttons"]] == (
        [f"MJ::JOB::upsample::{i}::{h}" for i in range(1, 5)] + [f"MJ::JOB::reroll::0::{h}::SOLO"]
        + [f"MJ::JOB::variation::{i}::{h}" for i in range(1, 5)])
    assert all(b["type"] == 2 and b["style"] == 2 for b in grid["buttons"])
    assert grid["buttons"][4]["emoji"] == "\U0001f504"
    # Until it has succeeded, a task has no buttons.
    views = follow(mj, submit(mj, "grid-buttons")["result"], "grid-buttons")
    assert all(v["buttons"] == [] for v in views[:-1]) and len(views[-1]["buttons"]) == 9


def test_upscale_and_variation_by_custom_id(mj: MockServer) -> None:
    grid = finished(mj, "press-buttons", state="order-77")
    answer = press(mj, "press-buttons", grid, button(grid, "U2"), state="order-77-u2")
    assert answer["code"] == 1 and answer["result"] != grid["id"]
    upscale = follow(mj, answer["result"], "press-buttons")[-1]
    assert upscale["status"] == "SUCCESS" and upscale["action"] == "UPSCALE"
    assert upscale["description"] == f"/up {grid['id']} U2" and upscale["prompt"] == PROMPT
    assert upscale["state"] == "order-77-u2" and upscale["imageUrl"] != grid["imageUrl"]
    # One image: no U/V buttons, but the upscaled image's own (v7) buttons, reroll last.
    labels = [b["label"] for b in upscale["buttons"]]
    assert labels[:6] == ["Upscale (Subtle)", "Upscale (Creative)", "Vary (Subtle)", "Vary (Strong)",
                          "Zoom Out 2x", "Zoom Out 1.5x"]
    assert "U1" not in labels and upscale["buttons"][-1]["customId"].startswith("MJ::JOB::reroll::0::")
    # The same upscale again: code 21, the task that already exists.
    again = press(mj, "press-buttons", grid, button(grid, "U2"))
    assert again["code"] == 21 and again["result"] == upscale["id"]
    assert again["properties"] == {"status": "SUCCESS", "imageUrl": upscale["imageUrl"]}

    variation = follow(mj, press(mj, "press-buttons", grid, button(grid, "V3"))["result"], "press-buttons")[-1]
    assert variation["action"] == "VARIATION" and [b["label"] for b in variation["buttons"]] == GRID_LABELS
    reroll = follow(mj, press(mj, "press-buttons", grid, grid["buttons"][4]["customId"])["result"],
                    "press-buttons")[-1]
    assert reroll["status"] == "SUCCESS" and reroll["action"] == "IMAGINE"   # a reroll of an IMAGINE
    # The upscaled image's buttons work in turn: a 2x upscale (one image), a zoom and a pan (grids).
    for label, action, grid_after in (("Upscale (Creative)", "UPSCALE_HD", False), ("Zoom Out 2x", "ZOOM", True),
                                      ("Vary (Strong)", "VARIATION", True)):
        made = follow(mj, press(mj, "press-buttons", upscale, button(upscale, label))["result"], "press-buttons")[-1]
        assert made["status"] == "SUCCESS" and made["action"] == action, label
        assert (made["buttons"][0]["label"] == "U1") is grid_after, label
    pan = next(b["customId"] for b in upscale["buttons"] if "pan_left" in b["customId"])
    assert follow(mj, press(mj, "press-buttons", upscale, pan)["result"], "press-buttons")[-1]["action"] == "PAN"


@pytest.mark.parametrize("custom_id, fragment", [
    ("MJ::JOB::upsample::1::00000000-0000-0000-0000-000000000000", "is not a button of task"),
    ("MJ::JOB::upsample::5::{h}", "Unknown action type"),
    ("MJ::Inpaint::1::{h}::SOLO", "modal"),
    ("hello", "not a Midjourney button"),
])
def test_a_custom_id_the_task_does_not_have_is_code_4(mj: MockServer, custom_id: str, fragment: str) -> None:
    grid = finished(mj, "wrong-buttons")
    answer = press(mj, "wrong-buttons", grid, custom_id.format(h=grid["properties"]["messageHash"]))
    assert answer["code"] == 4 and fragment in answer["description"] and answer["result"] is None


def test_an_action_needs_both_ids_and_a_task_that_exists(mj: MockServer) -> None:
    grid = finished(mj, "early-press")
    assert submit(mj, "early-press", "/submit/action", customId=button(grid, "U1"))["code"] == 4
    assert submit(mj, "early-press", "/submit/action", taskId=grid["id"])["code"] == 4
    assert submit(mj, "early-press", "/submit/action", taskId=grid["id"], customId="  ")["code"] == 4
    gone = post(mj, "/submit/action", "early-press", {"taskId": "1234", "customId": button(grid, "U1")})
    assert gone.status_code == 404 and gone.json()["code"] == 3
    # The proxy's Jackson binds a number to the String taskId; so does the mock.
    assert submit(mj, "early-press", "/submit/action", taskId=int(grid["id"]), customId=button(grid, "U4"))["code"] == 1


def test_an_action_on_a_task_not_yet_succeeded_is_code_4(start_mock) -> None:
    server = start_mock("--set", "midjourney-v7.latency_multiplier=100", "--set", "midjourney-v7.error_rate=0")
    running = submit(server, "early-press")["result"]
    assert fetch(server, running, "early-press")["status"] == "IN_PROGRESS"
    for path, body in (("/submit/action", {"customId": f"MJ::JOB::upsample::1::{'0' * 8}"}),
                       ("/submit/change", {"action": "UPSCALE", "index": 1})):
        answer = submit(server, "early-press", path, taskId=running, **body)
        assert answer["code"] == 4 and "status" in answer["description"], path


def test_change_and_simple_change(mj: MockServer) -> None:
    grid = finished(mj, "change-api")
    up = submit(mj, "change-api", "/submit/change", taskId=grid["id"], action="UPSCALE", index=3)
    assert up["code"] == 1
    upscale = follow(mj, up["result"], "change-api")[-1]
    assert upscale["action"] == "UPSCALE" and upscale["description"] == f"/up {grid['id']} U3"
    reroll = follow(mj, submit(mj, "change-api", "/submit/change", taskId=grid["id"], action="REROLL")["result"],
                    "change-api")[-1]
    assert reroll["action"] == "REROLL" and reroll["description"] == f"/up {grid['id']} R"
    simple = submit(mj, "change-api", "/submit/simple-change", content=f"{grid['id']} V2")
    variation = follow(mj, simple["result"], "change-api")[-1]
    assert variation["action"] == "VARIATION" and variation["description"] == f"/up {grid['id']} V2"
    # U3 through /change and through /action is the same button: the second is code 21.
    assert press(mj, "change-api", grid, button(grid, "U3"))["code"] == 21

    for body, fragment in (({"action": "UPSCALE", "index": 1}, "taskId"),
                           ({"taskId": grid["id"], "action": "ZOOM", "index": 1}, "action"),
                           ({"taskId": grid["id"], "action": "UPSCALE", "index": 5}, "index"),
                           ({"taskId": grid["id"], "action": "VARIATION"}, "index")):
        answer = submit(mj, "change-api", "/submit/change", **body)
        assert answer["code"] == 4 and fragment in answer["description"], body
    not_a_grid = submit(mj, "change-api", "/submit/change", taskId=upscale["id"], action="VARIATION", index=1)
    assert not_a_grid["code"] == 4 and "does not allow" in not_a_grid["description"]
    assert submit(mj, "change-api", "/submit/change", taskId="999", action="UPSCALE", index=1)["code"] == 3
    for content in ("", f"{grid['id']}", f"{grid['id']} U5", f"{grid['id']} X1", "U1 123"):
        assert submit(mj, "change-api", "/submit/simple-change", content=content)["code"] == 4, content


def test_actions_go_through_the_accounts_capacity(start_mock) -> None:
    """Actions are tasks of the account like any other: 3 running and 10 queued, then code 23."""
    server = start_mock("--latency-scale", "0.01", "--set", "midjourney-v7.error_rate=0")
    grid = finished(server, "busy-buttons")
    server.admin("midjourney-v7", latency_multiplier=1000)    # from now on, nothing finishes during the test
    codes = [press(server, "busy-buttons", grid, button(grid, label))["code"]
             for label in ("V1", "V2", "V3", "V4") * 4][:14]
    assert codes == [1] * 3 + [22] * 10 + [23]
    assert submit(server, "busy-buttons")["code"] == 23                      # an IMAGINE waits behind them
    status = httpx.get(f"{server.url}/admin/providers/midjourney-v7", timeout=10).json()
    assert status["running"] == 3 and status["queued"] == 10


def test_an_upscale_takes_a_quarter_of_a_grids_time(start_mock, tmp_path) -> None:
    """The simulated generation times, not this machine's speed: with a profile without spread every
    grid takes 1,600 ms, so an upscale takes 400 ms and a 2x upscale 3,200 ms. Only lower bounds are
    absolute (a task never ends early); the upscale's upper bound leaves 400 ms for scheduling."""
    profile = tmp_path / "steady.toml"
    profile.write_text('[midjourney-v7]\nlatency = { p50_ms = 8000, p99_ms = 8000, min_ms = 0, max_ms = 60000 }\n')
    server = start_mock("--profiles", str(profile), "--latency-scale", "0.2", "--set", "midjourney-v7.error_rate=0")
    grid = finished(server, "timed")
    upscale = follow(server, press(server, "timed", grid, button(grid, "U1"))["result"], "timed")[-1]
    hd = follow(server, press(server, "timed", upscale, button(upscale, "Upscale (Subtle)"))["result"], "timed")[-1]

    def took(task: dict) -> int:
        return task["finishTime"] - task["startTime"]

    assert took(grid) >= 1590
    assert took(upscale) >= 390 and took(upscale) < took(grid) / 2
    assert took(hd) >= 3190
    assert upscale["properties"]["costUsd"] == 0.0 and hd["properties"]["costUsd"] == pytest.approx(0.16)


def test_list_by_condition_answers_the_accounts_own_tasks(mj: MockServer) -> None:
    one, two = finished(mj, "lister"), finished(mj, "lister")
    theirs = finished(mj, "someone-else")
    r = post(mj, "/task/list-by-condition", "lister",
             {"ids": [two["id"], "404404404", one["id"], theirs["id"], two["id"], f" {one['id']} "]})
    assert r.status_code == 200
    assert [t["id"] for t in r.json()] == [two["id"], one["id"]]     # unknown, foreign and repeated left out
    assert r.json()[0] == fetch(mj, two["id"], "lister")              # each as fetch shows it
    alias = post(mj, "/task/list-by-ids", "lister", {"ids": [one["id"]]})
    assert [t["id"] for t in alias.json()] == [one["id"]]
    assert post(mj, "/task/list-by-condition", "lister", {}).json() == []
    assert post(mj, "/task/list-by-condition", "lister", {"ids": []}).json() == []
    for bad in ({"ids": "123"}, {"ids": [1, 2]}, {"ids": ["1"] * 1001}):
        r = post(mj, "/task/list-by-condition", "lister", bad)
        assert r.status_code == 400 and r.json()["code"] == 4 and "ids" in r.json()["description"]
    assert post(mj, "/task/list-by-condition", "lister", {"ids": ["1"] * 1000}).json() == []
