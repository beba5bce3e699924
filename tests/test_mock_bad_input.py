"""Nothing a client sends crashes the mock: every bad input is answered in that provider's own error
shape, and the next good request is still served."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from mockserver import MockServer

PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
FORTY_MB = 40 * 1024 * 1024


@dataclass
class Api:
    name: str
    path: str
    headers: dict[str, str]
    good: dict[str, Any]
    shape: Callable[[int, Any], None]          # asserts an error body is this API's, for an HTTP status
    bad_key: dict[str, str]
    cases: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)   # name -> (request, status)


def openai_shape(status: int, body: Any) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def relay_shape(status: int, body: Any) -> None:
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]) <= {"code", "message", "param"}
    expected = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 413: "request_too_large"}
    assert body["error"]["code"] == expected[status]


def vertex_shape(status: int, body: Any) -> None:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "status"}
    assert body["error"]["code"] == status
    assert body["error"]["status"] == {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
                                       413: "INVALID_ARGUMENT"}[status]


def midjourney_shape(status: int, body: Any) -> None:
    assert set(body) == {"code", "description", "result", "properties"} and body["result"] is None
    assert body["code"] == (3 if status == 404 else 4)   # not found / validation error


VERTEX_PATH = "/vertex/v1/projects/shop/locations/us-central1/publishers/google/models/imagen-4:predict"
APIS = [
    Api("openai", "/openai/v1/images/generations", {"Authorization": "Bearer sk-test-bad-input-0001"},
        {"model": "dall-e-4", "prompt": PROMPT}, openai_shape, {"Authorization": "Bearer hs_wrong_kind_of_key"},
        {"wrong type": ({"json": {"model": "dall-e-4", "prompt": PROMPT, "n": "2"}}, 400),
         "bool for a number": ({"json": {"model": "dall-e-4", "prompt": PROMPT, "n": True}}, 400),
         "n out of range": ({"json": {"model": "dall-e-4", "prompt": PROMPT, "n": 11}}, 400),
         "size out of range": ({"json": {"model": "dall-e-4", "prompt": PROMPT, "size": "4096x4096"}}, 400),
         "unknown model": ({"json": {"model": "dall-e-99", "prompt": PROMPT}}, 400),
         "unknown field": ({"json": {"model": "dall-e-4", "prompt": PROMPT, "colour": "red"}}, 400),
         "prompt too long": ({"json": {"model": "dall-e-4", "prompt": "x" * 4001}}, 400)}),
    Api("relay", "/relay/v1/images/generations", {"Authorization": "Bearer hs_test_bad_input_0001"},
        {"model": "midjourney-v7", "prompt": PROMPT}, relay_shape, {"Authorization": "Bearer sk-wrong-kind"},
        {"wrong type": ({"json": {"prompt": PROMPT, "width": True}}, 400),
         "string for a number": ({"json": {"prompt": PROMPT, "height": "1024"}}, 400),
         "size out of range": ({"json": {"prompt": PROMPT, "width": 4096, "height": 4096}}, 400),
         "n out of range": ({"json": {"prompt": PROMPT, "n": 0}}, 400),
         "seed out of range": ({"json": {"prompt": PROMPT, "seed": 2 ** 40}}, 400),
         "unknown model": ({"json": {"prompt": PROMPT, "model": "stable-diffusion-9"}}, 400),
         "array where a string belongs": ({"json": {"prompt": PROMPT, "style_preset": ["photography"]}}, 400),
         "object where a string belongs": ({"json": {"prompt": {"text": PROMPT}}}, 400)}),
    Api("vertex", VERTEX_PATH, {"Authorization": "Bearer ya29.test-bad-input-0001"},
        {"instances": [{"prompt": PROMPT}]}, vertex_shape, {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
        {"wrong type": ({"json": {"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": "2"}}}, 400),
         "sampleCount out of range": ({"json": {"instances": [{"prompt": PROMPT}],
                                                "parameters": {"sampleCount": 5}}}, 400),
         "bad aspect ratio": ({"json": {"instances": [{"prompt": PROMPT}],
                                        "parameters": {"aspectRatio": "2:1"}}}, 400),
         "instances not a list": ({"json": {"instances": {"prompt": PROMPT}}}, 400),
         "unknown model": ({"json": {"instances": [{"prompt": PROMPT}]},
                            "path": VERTEX_PATH.replace("imagen-4", "imagen-99")}, 404)}),
    Api("midjourney", "/midjourney/mj/submit/imagine", {"mj-api-secret": "mj-test-bad-input"},
        {"prompt": PROMPT}, midjourney_shape, {"mj-api-secret": "not a secret!"},
        {"wrong type": ({"json": {"prompt": 123}}, 200),
         "empty prompt": ({"json": {"prompt": "   "}}, 200),
         "base64Array of numbers": ({"json": {"prompt": PROMPT, "base64Array": [1, 2]}}, 200),
         "unknown model": ({"json": {"prompt": PROMPT, "model": "midjourney-v1"}}, 200),
         "prompt too long": ({"json": {"prompt": "x" * 6001}}, 200),
         "too many images": ({"json": {"prompt": PROMPT, "base64Array": ["data:image/png;base64,AA=="] * 6}}, 200),
         "hook off loopback": ({"json": {"prompt": PROMPT, "notifyHook": "http://203.0.113.9/hook"}}, 200)}),
]

# Bad input every API gets: (request, expected HTTP status; Midjourney answers field errors with 200).
COMMON = {
    "malformed JSON": ({"content": b'{"prompt": "sneaker", '}, 400),
    "a JSON array": ({"content": b'[{"prompt": "sneaker"}]'}, 400),
    "a JSON string": ({"content": b'"sneaker"'}, 400),
    "empty body": ({"content": b""}, 400),
    "not UTF-8": ({"content": b'{"prompt": "\xff\xfe"}'}, 400),
    "nested 100,000 deep": ({"content": b"[" * 100_000 + b"]" * 100_000}, 400),
    "missing key": ({"headers": {}}, 401),
    "undecodable gzip": ({"content": b'{"prompt": "sneaker"}', "extra_headers": {"Content-Encoding": "gzip"}}, 400),
    "undecodable deflate": ({"content": b"\x78\x9c not deflate", "extra_headers": {"Content-Encoding": "deflate"}},
                            400),
    "undecodable brotli": ({"content": b"\xff\xff not brotli", "extra_headers": {"Content-Encoding": "br"}}, 400),
    "unknown route": ({"path_suffix": "/nope"}, 404),
    "wrong method": ({"method": "GET"}, 404),
}


def send(server: MockServer, api: Api, request: dict[str, Any], client: httpx.Client) -> httpx.Response:
    path = request.get("path", api.path + request.get("path_suffix", ""))
    headers = {**request.get("headers", api.headers), **request.get("extra_headers", {})}
    kwargs: dict[str, Any] = {}
    if "content" in request:
        kwargs["content"] = request["content"]
        headers = {**headers, "Content-Type": "application/json"}
    elif request.get("method", "POST") == "POST":
        kwargs["json"] = request.get("json", api.good)
    return client.request(request.get("method", "POST"), server.url + path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def mock():
    args = ["--latency-scale", "0", "--mj-secrets", "mj-test-bad-input"]   # so that another secret is a wrong key
    for name in ("dall-e-4", "midjourney-v7", "imagen-4", "relay"):
        args += ["--set", f"{name}.error_rate=0"]
    with MockServer(*args) as server:
        yield server


def good_request_served(server: MockServer, api: Api, client: httpx.Client) -> None:
    r = send(server, api, {}, client)
    assert r.status_code == 200, r.text
    if api.name == "midjourney":
        assert r.json()["code"] == 1


def cases_for(api: Api) -> list[tuple[str, dict[str, Any], int]]:
    common = {name: (req, 200 if api.name == "midjourney" and status == 400 and "content" not in req
                     else status) for name, (req, status) in COMMON.items()}
    common["wrong key"] = ({"headers": api.bad_key}, 401)
    return [(name, req, status) for name, (req, status) in {**common, **api.cases}.items()]


@pytest.mark.parametrize("api", APIS, ids=[a.name for a in APIS])
def test_every_bad_input_answered_in_the_apis_own_shape(mock: MockServer, api: Api) -> None:
    with httpx.Client(timeout=30) as client:
        good_request_served(mock, api, client)
        for name, request, status in cases_for(api):
            r = send(mock, api, request, client)
            assert r.status_code == status, (name, r.status_code, r.text[:300])
            api.shape(status, r.json())
            good_request_served(mock, api, client)
    assert "Traceback" not in "".join(mock.output)   # bad input is answered, never logged as a crash


@pytest.mark.parametrize("api", APIS, ids=[a.name for a in APIS])
def test_a_40mb_body_is_refused_with_413_and_the_connection_still_serves(mock: MockServer, api: Api) -> None:
    def chunked():
        for _ in range(40):
            yield b"x" * (1024 * 1024)

    with httpx.Client(timeout=60) as client:
        for content in (b"x" * FORTY_MB, chunked()):   # declared length, then chunked
            r = client.post(mock.url + api.path, content=content, headers=api.headers)
            assert r.status_code == 413, r.text[:200]
            api.shape(413, r.json())
            good_request_served(mock, api, client)


def test_a_lone_surrogate_in_a_prompt_is_a_clear_error(mock: MockServer) -> None:
    # JSON text must be Unicode; an escaped half of a surrogate pair is not text.
    body = b'{"prompt": "sneaker \\ud800 on marble, studio light", "seed": 1}'
    r = httpx.post(f"{mock.url}/relay/v1/images/generations", content=body,
                   headers={"Authorization": "Bearer hs_test_bad_input_0001"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    assert "not valid JSON" in r.json()["error"]["message"]
    with httpx.Client(timeout=10) as client:
        good_request_served(mock, next(a for a in APIS if a.name == "relay"), client)


def test_unknown_paths_outside_any_api_get_a_json_404(mock: MockServer) -> None:
    r = httpx.get(f"{mock.url}/v2/images", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{mock.url}/healthz", timeout=10).json()["status"] == "ok"
