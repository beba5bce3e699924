"""The admin API takes only what it can serve: every bad value is a JSON 400 naming the setting and
its range, nothing a client sends is a 500 or a traceback, and a good value is applied exactly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mockserver import MockServer

from mockprovider.limits import SETTING_RANGES, WHOLE_SETTINGS

PATH = "/admin/providers/relay"

# name -> (body bytes, extra headers, status)
BAD: dict[str, tuple[bytes, dict[str, str], int]] = {
    "a 400-digit integer (float overflow)": (b'{"slots": ' + b"9" * 400 + b"}", {}, 400),
    "a 5,000-digit integer (past Python's digit limit)": (b'{"queue": ' + b"9" * 5000 + b"}", {}, 400),
    "an exponent past any float": (b'{"burst": 1e400}', {}, 400),
    "a charset no codec knows": (b'{"slots": 2}', {"Content-Type": "application/json; charset=xyz-bogus"}, 400),
    "a charset that is not UTF-8": (b'{"slots": 2}', {"Content-Type": "application/json; charset=latin-1"}, 400),
    "a string for a boolean": (b'{"outage": "yes"}', {}, 400),
    "a number for a boolean": (b'{"outage": 1}', {}, 400),
    "null for a boolean": (b'{"limits": null}', {}, 400),
    "a boolean for a number": (b'{"slots": true}', {}, 400),
    "a string for a number": (b'{"error_rate": "0.5"}', {}, 400),
    "an array for a number": (b'{"slots": [4]}', {}, 400),
    "a queue of millions": (b'{"queue": 5000000}', {}, 400),
    "slots past the range": (b'{"slots": 10001}', {}, 400),
    "no slots": (b'{"slots": 0}', {}, 400),
    "a fraction of a slot": (b'{"capacity": {"slots": 1.5}}', {}, 400),
    "a negative burst": (b'{"rate_limit": {"burst": -1}}', {}, 400),
    "requests per minute below one an hour": (b'{"requests_per_minute": 0.001}', {}, 400),
    "no requests per minute": (b'{"requests_per_minute": 0}', {}, 400),
    "a latency multiplier of a billion": (b'{"latency_multiplier": 1e9}', {}, 400),
    "a negative error rate": (b'{"error_rate": -0.1}', {}, 400),
    "per-key slots past the range": (b'{"per_key_slots": 5000}', {}, 400),
    "an unknown setting": (b'{"colour": "red"}', {}, 400),
    "not UTF-8": (b'{"outage": "\xff\xfe"}', {}, 400),
    "NaN": (b'{"error_rate": NaN}', {}, 400),
    "an empty object": (b"{}", {}, 400),
    "a body over 64 KB": (b'{"slots": 2, "pad": "' + b"x" * 70_000 + b'"}', {}, 413),
}

# Each range's ends are accepted.
EDGES = {name: [lo, hi] for name, (lo, hi) in SETTING_RANGES.items()}


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0") as server:
        yield server


def relay_settings(server: MockServer) -> dict[str, Any]:
    return httpx.get(server.url + PATH, timeout=10).json()["settings"]


def assert_json_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_admin_value_is_a_json_error_and_changes_nothing(mock: MockServer, case: str) -> None:
    content, headers, status = BAD[case]
    before = relay_settings(mock)
    r = httpx.patch(mock.url + PATH, content=content, timeout=10,
                    headers={"Content-Type": "application/json", **headers})
    message = assert_json_error(r, status)
    assert len(message) < 300   # a 5,000-digit number is not echoed back whole
    assert relay_settings(mock) == before
    assert "Traceback" not in "".join(mock.output)


def test_every_range_edge_is_accepted_and_a_step_past_it_is_not(mock: MockServer) -> None:
    for name, edges in EDGES.items():
        for value in edges:
            r = httpx.patch(mock.url + PATH, json={name: value}, timeout=10)
            assert r.status_code == 200, (name, value, r.text)
            assert r.json()["settings"][name] == value
        lo, hi = edges
        step = 1 if name in WHOLE_SETTINGS else max(hi * 1e-6, 1e-9)
        for value in (lo - step, hi + step):
            r = httpx.patch(mock.url + PATH, json={name: value}, timeout=10)
            assert name in assert_json_error(r, 400), (name, value)
    assert httpx.post(mock.url + "/admin/reset", timeout=10).status_code == 200


JSON_VALUES = st.one_of(
    st.booleans(), st.none(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.lists(st.integers(), max_size=2))
SETTING_NAMES = st.sampled_from([*SETTING_RANGES, "outage", "limits", "colour"])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(SETTING_NAMES, JSON_VALUES, min_size=1, max_size=4))
def test_any_patch_is_applied_exactly_or_refused_whole(mock: MockServer, changes: dict[str, Any]) -> None:
    before = relay_settings(mock)
    r = httpx.patch(mock.url + PATH, content=json.dumps(changes).encode(), timeout=10,
                    headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400), r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    after = relay_settings(mock)
    if r.status_code == 400:
        assert after == before   # a change set is applied whole or not at all
        return
    for name, value in changes.items():
        assert isinstance(value, bool) == (name in ("outage", "limits"))
        if name in SETTING_RANGES:
            lo, hi = SETTING_RANGES[name]
            assert lo <= value <= hi and (name not in WHOLE_SETTINGS or float(value).is_integer())
            assert after[name] == value
        else:
            assert after[name] is value


def test_set_keeps_its_text_forms(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.outage=yes", "--set", "relay.limits=off",
                        "--set", "relay.slots=12", "--set", "relay.requests_per_minute=0.5")
    s = relay_settings(server)
    assert s["outage"] is True and s["limits"] is False and s["slots"] == 12 and s["requests_per_minute"] == 0.5


def test_an_undecodable_token_is_a_json_401(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--admin-token", "s3cret-admin-token")
    for auth in (b"Bearer \xff\xfe", b"Bearer s3cret-admin-token\xff", b"\xc3\x28"):
        r = httpx.patch(server.url + PATH, json={"slots": 2}, headers={"Authorization": auth}, timeout=10)
        assert_json_error(r, 401)
    good = httpx.patch(server.url + PATH, json={"slots": 2}, timeout=10,
                       headers={"Authorization": "Bearer s3cret-admin-token"})
    assert good.status_code == 200 and good.json()["settings"]["slots"] == 2
    assert "Traceback" not in "".join(server.output)
