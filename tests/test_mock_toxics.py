"""The faults gateways trip on, as real clients see them: the official `openai` SDK and httpx against a
mock whose toxics are switched on at start (--set), through the admin API, and off again."""

from __future__ import annotations

import gc
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import psutil
import pytest
from mockserver import MockServer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

KEY = "sk-test-toxics-0001"
PROMPT = "Ceramic mug on a linen tablecloth, soft morning light"
OPENAI = "/openai/v1/images/generations"
RELAY = "/relay/v1/images/generations"
RELAY_HEADERS = {"Authorization": "Bearer hs_test_toxics_0001"}
B64 = {"prompt": PROMPT, "model": "dall-e-4", "response_format": "b64_json"}


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    # Small images (16 KB) keep b64 bodies short; no injected errors, so every answer is a 200.
    with MockServer("--latency-scale", "0", "--seed", "0", "--image-kb", "16",
                    *(f"--set={p}.error_rate=0" for p in ("dall-e-4", "relay", "imagen-4", "midjourney-v7",
                                                           "gpt-image-1", "gemini-2.5-flash-image"))) as s:
        yield s


@pytest.fixture
def mock(server: MockServer) -> Iterator[MockServer]:
    yield server
    assert httpx.post(f"{server.url}/admin/reset", timeout=10).status_code == 200


def toxic(mock: MockServer, provider: str = "dall-e-4", **settings: Any) -> dict[str, Any]:
    r = httpx.patch(f"{mock.url}/admin/providers/{provider}", json=settings, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def sdk(mock: MockServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{mock.url}/openai/v1", **{"max_retries": 0, **kwargs})


def fired(mock: MockServer, provider: str, name: str) -> float:
    text = httpx.get(f"{mock.url}/metrics", timeout=10).text
    return next((s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "mock_toxics_total" and s.labels == {"provider": provider, "toxic": name}), 0.0)


def raw_read(mock: MockServer, body: dict[str, Any] | None = None, timeout: float = 10.0,
             path: str = OPENAI) -> tuple[httpx.Response, bytes, int, BaseException | None]:
    """POST and read the body as it comes: (response, bytes read, reads, the error that ended it)."""
    got, reads, error = b"", 0, None
    with httpx.Client(timeout=timeout) as client:
        headers = RELAY_HEADERS if path == RELAY else {"Authorization": f"Bearer {KEY}"}
        with client.stream("POST", mock.url + path, json=body or B64, headers=headers) as r:
            try:
                for chunk in r.iter_raw():
                    got += chunk
                    reads += 1
            except httpx.TransportError as exc:
                error = exc
    return r, got, reads, error


# --- silent success ------------------------------------------------------------------------------


def test_empty_data_is_a_200_with_no_image(mock: MockServer) -> None:
    toxic(mock, empty_data=1)
    answer = sdk(mock).images.generate(model="dall-e-4", prompt=PROMPT, n=3)
    assert answer.data == [] and answer.created > 0          # the SDK's own type parses it: nothing to catch
    relay = httpx.post(mock.url + RELAY, json={"prompt": PROMPT, "model": "dall-e-4"}, headers=RELAY_HEADERS)
    assert relay.status_code == 200 and relay.json()["data"] != []   # another provider: untouched, no toxic on
    assert fired(mock, "dall-e-4", "empty_data") == 1


def test_fewer_images_leaves_one_out(mock: MockServer) -> None:
    toxic(mock, fewer_images=1)
    assert len(sdk(mock).images.generate(model="dall-e-4", prompt=PROMPT, n=3).data) == 2
    assert len(sdk(mock).images.generate(model="dall-e-4", prompt=PROMPT, n=1).data) == 0
    toxic(mock, "relay", fewer_images=1)
    r = httpx.post(mock.url + RELAY, json={"prompt": PROMPT, "model": "imagen-4", "n": 4, "response_format":
                                           "b64_json"}, headers=RELAY_HEADERS, timeout=30)
    assert r.status_code == 200 and len(r.json()["data"]) == 3


def test_vertex_silent_successes(mock: MockServer) -> None:
    url = f"{mock.url}/vertex/v1/projects/p/locations/us-central1/publishers/google/models/imagen-4:predict"

    def predictions(count: int) -> list[Any]:
        r = httpx.post(url, json={"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": count}},
                       headers={"Authorization": "Bearer ya29.test"}, timeout=30)
        assert r.status_code == 200
        return r.json()["predictions"]

    toxic(mock, "imagen-4", fewer_images=1)
    assert len(predictions(3)) == 2
    toxic(mock, "imagen-4", empty_data=1)
    assert predictions(3) == []


def test_edits_and_gpt_image_take_their_provider_s_toxics(mock: MockServer) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 120, 200)).save(out, "PNG")
    upload = ("product.png", out.getvalue(), "image/png")
    toxic(mock, "gpt-image-1", fewer_images=1)
    with sdk(mock) as client:
        edited = client.images.edit(model="gpt-image-1", image=[upload], prompt=PROMPT, n=2, quality="low")
        assert len(edited.data or []) == 1 and edited.usage is not None   # the rest of the answer as it was
        generated = client.images.generate(model="gpt-image-1", prompt=PROMPT, n=3, quality="low")
        assert len(generated.data or []) == 2
        toxic(mock, "gpt-image-1", fewer_images=0, reset_peer=1)
        with pytest.raises(openai.APIConnectionError):
            client.images.edit(model="gpt-image-1", image=[upload], prompt=PROMPT, quality="low")
    assert fired(mock, "gpt-image-1", "reset_peer") == 1


def test_gemini_generate_content_loses_its_image_part_not_its_text(mock: MockServer) -> None:
    def parts(prefix: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        r = httpx.post(f"{mock.url}{prefix}/models/gemini-2.5-flash-image:generateContent", headers=headers,
                       json={"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                             "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["candidates"][0]["content"]["parts"]

    gemini = ("/gemini/v1beta", {"x-goog-api-key": "AIzaSy-test-toxics-0001"})
    vertex = ("/vertex/v1/projects/p/locations/us-central1/publishers/google",
              {"Authorization": "Bearer ya29.test"})
    assert [sorted(p) for p in parts(*gemini)] == [["text"], ["inlineData"]]
    toxic(mock, "gemini-2.5-flash-image", empty_data=1)
    for route in (gemini, vertex):
        assert [sorted(p) for p in parts(*route)] == [["text"]]   # a 200 with the caption and no image
    assert fired(mock, "gemini-2.5-flash-image", "empty_data") == 2


def test_image_not_found_gives_a_url_that_404s(mock: MockServer) -> None:
    toxic(mock, image_not_found=1)
    answer = sdk(mock).images.generate(model="dall-e-4", prompt=PROMPT, n=2, response_format="url")
    assert len(answer.data) == 2
    for image in answer.data:
        assert image.url is not None
        r = httpx.get(image.url, timeout=30)
        assert r.status_code == 404 and r.headers["x-ms-error-code"] == "BlobNotFound"
        assert "<Code>BlobNotFound</Code>" in r.text


def test_image_not_found_is_drawn_per_image(mock: MockServer) -> None:
    toxic(mock, "relay", image_not_found=0.5)
    r = httpx.post(mock.url + RELAY, json={"prompt": PROMPT, "model": "imagen-4", "n": 10, "seed": 8},
                   headers=RELAY_HEADERS, timeout=30)
    status = [httpx.get(item["url"], timeout=30).status_code for item in r.json()["data"]]
    # A seeded prompt and seed name the same ten images every run, so the same draws: both kinds appear.
    assert set(status) == {200, 404}
    assert fired(mock, "relay", "image_not_found") == 1   # counted per answer it changed


def test_midjourney_silent_successes_hold_for_every_poll(mock: MockServer) -> None:
    headers = {"mj-api-secret": "mj-toxics-account"}

    def finished_task() -> dict[str, Any]:
        submit = httpx.post(f"{mock.url}/midjourney/mj/submit/imagine", json={"prompt": PROMPT}, headers=headers)
        task = submit.json()["result"]
        for _ in range(200):
            view = httpx.get(f"{mock.url}/midjourney/mj/task/{task}/fetch", headers=headers).json()
            if view["status"] in ("SUCCESS", "FAILURE"):
                return view
            time.sleep(0.02)
        raise AssertionError("the task did not finish")

    toxic(mock, "midjourney-v7", empty_data=1)
    done = finished_task()
    assert done["status"] == "SUCCESS" and done["imageUrl"] is None
    httpx.post(f"{mock.url}/admin/providers/midjourney-v7/reset")
    toxic(mock, "midjourney-v7", image_not_found=1)
    done = finished_task()
    again = httpx.get(f"{mock.url}/midjourney/mj/task/{done['id']}/fetch", headers=headers).json()
    assert done["imageUrl"] == again["imageUrl"]   # every poll names the same (dead) image
    assert httpx.get(done["imageUrl"], timeout=30).status_code == 404


def test_toxicity_is_a_probability_drawn_from_the_seed(start_mock) -> None:
    def pattern() -> list[bool]:
        # --no-limits: no rate limit or injected error in the way; toxics act all the same.
        server = start_mock("--latency-scale", "0", "--seed", "7", "--no-limits", "--set", "relay.empty_data=0.3")
        with httpx.Client(timeout=30) as client:
            out = [client.post(server.url + RELAY, json={"prompt": PROMPT, "model": "imagen-4"},
                               headers=RELAY_HEADERS).json()["data"] == [] for _ in range(300)]
        server.stop()
        return out

    first = pattern()
    # 300 draws at 0.3: mean 90, sd 7.9; 4 sd either side is a 1 in 15,000 miss for a fair draw.
    assert 58 <= sum(first) <= 122
    assert pattern() == first   # the same seed, the same answers emptied


# --- connection faults ---------------------------------------------------------------------------


def test_reset_peer_resets_the_connection_mid_body(mock: MockServer) -> None:
    toxic(mock, reset_peer=1)
    r, got, _, error = raw_read(mock)
    length = int(r.headers["content-length"])
    assert r.status_code == 200 and 0 < len(got) <= length // 2
    assert isinstance(error, httpx.ReadError) and "reset" in str(error).lower()
    with pytest.raises(openai.APIConnectionError) as caught:
        sdk(mock).images.generate(**B64)
    assert type(caught.value.__cause__).__name__ == "ReadError"   # the SDK's own httpx (httpx2 in 3.x)


def test_the_sdk_retries_a_reset_twice_so_the_fault_triples_the_load(mock: MockServer) -> None:
    toxic(mock, reset_peer=1)
    before = fired(mock, "dall-e-4", "reset_peer")
    with pytest.raises(openai.APIConnectionError):
        sdk(mock, max_retries=2).images.generate(**B64)
    assert fired(mock, "dall-e-4", "reset_peer") - before == 3


def test_limit_data_truncates_the_body_and_closes(mock: MockServer) -> None:
    toxic(mock, limit_data=1, limit_data_bytes=100)
    r, got, _, error = raw_read(mock)
    assert r.status_code == 200 and int(r.headers["content-length"]) > 100
    assert len(got) == 100
    assert isinstance(error, httpx.RemoteProtocolError) and "complete message body" in str(error)
    with pytest.raises(json.JSONDecodeError):
        json.loads(got)                     # the truncated JSON a client reading to EOF would have
    with pytest.raises(openai.APIConnectionError) as caught:
        sdk(mock).images.generate(**B64)
    assert type(caught.value.__cause__).__name__ == "RemoteProtocolError"


def test_timeout_answers_nothing_until_the_client_gives_up(mock: MockServer) -> None:
    # SDK clients of earlier tests, never closed, hold idle keep-alive connections until the cyclic
    # collector frees them: let them go first, so that only what the toxic holds is counted below.
    gc.collect()
    toxic(mock, timeout=1, timeout_ms=600_000)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(mock.url + OPENAI, json=B64, headers={"Authorization": f"Bearer {KEY}"}, timeout=1.0)
    with pytest.raises(openai.APITimeoutError):
        sdk(mock, timeout=1.0).images.generate(**B64)
    # The clients gave up: the mock lets their connections go rather than hold them for ten minutes.
    assert mock.proc is not None
    port = int(mock.url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        held = [c for c in psutil.Process(mock.proc.pid).net_connections(kind="tcp")
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED]
        if not held:
            break
        time.sleep(0.1)
    assert held == []


def test_timeout_closes_without_an_answer_once_its_time_is_up(mock: MockServer) -> None:
    toxic(mock, timeout=1, timeout_ms=300)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.post(mock.url + OPENAI, json=B64, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert time.monotonic() - started >= 0.3
    toxic(mock, timeout_ms=0)               # 0: an empty reply at once
    with pytest.raises(openai.APIConnectionError) as caught:
        sdk(mock).images.generate(**B64)
    assert type(caught.value.__cause__).__name__ == "RemoteProtocolError"


def test_slow_close_ends_the_body_only_when_the_connection_closes(mock: MockServer) -> None:
    toxic(mock, slow_close=1, slow_close_delay_ms=1000)
    started = time.monotonic()
    r, got, _, error = raw_read(mock)
    assert error is None and r.status_code == 200
    assert "content-length" not in r.headers and r.headers["connection"] == "close"
    assert json.loads(got)["data"][0]["b64_json"]
    assert time.monotonic() - started >= 1.0   # the body was whole only once the delayed close came
    started = time.monotonic()
    assert len(sdk(mock).images.generate(**B64).data) == 1
    assert time.monotonic() - started >= 1.0


def test_slicer_writes_the_body_in_small_pieces(mock: MockServer) -> None:
    toxic(mock, slicer=1, slicer_average_size=1000, slicer_size_variation=200, slicer_delay_us=20_000)
    r, got, reads, error = raw_read(mock)
    assert error is None and r.status_code == 200 and len(got) == int(r.headers["content-length"])
    # About 22 slices 20 ms apart; unsliced, the 22 KB body arrives in one or two reads. A client would have
    # to stall past 20 ms between reads to merge two slices, so at least a quarter of them stay apart.
    assert reads >= len(got) // 1200 // 4 >= 4
    assert json.loads(got)["data"][0]["b64_json"]
    assert len(sdk(mock).images.generate(**B64).data) == 1


def test_bandwidth_caps_the_rate_per_connection(mock: MockServer) -> None:
    toxic(mock, bandwidth=1, bandwidth_kb_per_s=16)
    started = time.monotonic()
    r, got, _, error = raw_read(mock)
    elapsed = time.monotonic() - started
    assert error is None and len(got) == int(r.headers["content-length"]) > 15_000
    assert elapsed >= 0.9 * len(got) / (16 * 1024)   # the mock paces it: at least the time the rate allows
    # The connection stays usable: the next answer on it comes whole.
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            again = client.post(mock.url + OPENAI, json=B64, headers={"Authorization": f"Bearer {KEY}"})
            assert again.status_code == 200 and again.json()["data"]


def test_connection_toxics_reach_image_downloads(mock: MockServer) -> None:
    url = httpx.post(mock.url + RELAY, json={"prompt": PROMPT, "model": "imagen-4"}, headers=RELAY_HEADERS,
                     timeout=30).json()["data"][0]["url"]
    toxic(mock, "relay", limit_data=1, limit_data_bytes=1000)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, timeout=30)


def test_connection_toxics_reach_midjourney_image_downloads(mock: MockServer) -> None:
    headers = {"mj-api-secret": "mj-toxics-download"}
    task = httpx.post(f"{mock.url}/midjourney/mj/submit/imagine", json={"prompt": PROMPT}, headers=headers,
                      timeout=10).json()["result"]
    for _ in range(200):
        view = httpx.get(f"{mock.url}/midjourney/mj/task/{task}/fetch", headers=headers, timeout=10).json()
        if view["status"] == "SUCCESS":
            break
        time.sleep(0.02)
    assert view["status"] == "SUCCESS" and "w=2048&h=2048" in view["imageUrl"]   # the grid's pixels
    assert httpx.get(view["imageUrl"], timeout=30).status_code == 200
    toxic(mock, "midjourney-v7", limit_data=1, limit_data_bytes=1000)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(view["imageUrl"], timeout=30)


def test_errors_pass_through_connection_toxics_too(mock: MockServer) -> None:
    toxic(mock, reset_peer=1, error_rate=1)
    r, got, _, error = raw_read(mock)   # an injected error (the profile's mix), reset halfway like any answer
    assert r.status_code in (400, 500, 503, 504) and isinstance(error, httpx.ReadError)


# --- switching them on and off -------------------------------------------------------------------


def test_toxics_set_at_start_show_in_the_admin_api_and_reset_off(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "dall-e-4.error_rate=0", "--set", "dall-e-4.reset_peer=1",
                        "--set", "dall-e-4.reset_peer_timeout_ms=50")
    status = httpx.get(f"{server.url}/admin/providers/dall-e-4", timeout=10).json()
    assert status["toxics"] == ["reset_peer"] and status["settings"]["reset_peer_timeout_ms"] == 50
    with pytest.raises(openai.APIConnectionError):
        sdk(server).images.generate(model="dall-e-4", prompt=PROMPT)
    reset = httpx.post(f"{server.url}/admin/providers/dall-e-4/reset", timeout=10).json()
    assert reset["toxics"] == [] and reset["settings"]["reset_peer"] == 0
    assert len(sdk(server).images.generate(model="dall-e-4", prompt=PROMPT).data) == 1


def test_nested_patch_and_every_setting_listed(mock: MockServer) -> None:
    status = toxic(mock, toxics={"slicer": 0.5, "slicer_delay_us": 10}, image={"url_ttl_s": 60})
    assert status["toxics"] == ["slicer"]
    settings = status["settings"]
    assert (settings["slicer"], settings["slicer_delay_us"], settings["url_ttl_s"]) == (0.5, 10, 60)
    for name in ("empty_data", "fewer_images", "image_not_found", "timeout", "timeout_ms", "reset_peer",
                 "reset_peer_timeout_ms", "limit_data", "limit_data_bytes", "slicer", "slicer_average_size",
                 "slicer_size_variation", "slicer_delay_us", "bandwidth", "bandwidth_kb_per_s", "slow_close",
                 "slow_close_delay_ms", "kb_per_megapixel", "url_ttl_s"):
        assert name in settings


@pytest.mark.parametrize("change, wording", [
    ({"reset_peer": 1.5}, "between 0 and 1"),
    ({"reset_peers": 1}, "unknown setting 'reset_peers'"),
    ({"limit_data_bytes": 1.5}, "whole number"),
    ({"timeout_ms": 10**30}, "between 0 and 600000"),
    ({"bandwidth_kb_per_s": 0}, "between 1 and"),
    ({"slicer": True}, "must be a number"),
    ({"url_ttl_s": "soon"}, "must be a number"),
    ({"kb_per_megapixel": 5000}, "between 1 and 3000"),
])
def test_bad_toxic_settings_are_refused(mock: MockServer, change: dict[str, Any], wording: str) -> None:
    r = httpx.patch(f"{mock.url}/admin/providers/dall-e-4", json=change, timeout=10)
    assert r.status_code == 400 and wording in r.json()["error"]["message"]
    assert httpx.get(f"{mock.url}/admin/providers/dall-e-4", timeout=10).json()["toxics"] == []


def test_a_bad_toxic_setting_at_start_is_a_clear_error(start_mock) -> None:
    with pytest.raises(RuntimeError, match="reset_peer must be between 0 and 1"):
        start_mock("--set", "dall-e-4.reset_peer=2")
