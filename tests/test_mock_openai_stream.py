"""`stream=True` through the official `openai` SDK: partial images, then the image, spread over the
generation time the latency behaviour decided; refusals before the stream, failures inside it."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import httpx
import openai
import pytest
from mockserver import MockServer
from openai.types import ImageGenCompletedEvent, ImageGenPartialImageEvent
from PIL import Image

KEY = "sk-test-stream-0001"
PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
# gpt-image-1 with a fixed generation time: P50 = P99 gives a log-normal of zero spread, so a medium
# 1024x1024 image takes exactly 2 s and the schedule of the events is known.
FIXED = ('[gpt-image-1]\nlatency = { p50_ms = 2000, p99_ms = 2000, min_ms = 0, max_ms = 60000, '
         'per_extra_image = 0.5, size_exponent = 1.0, quality_factors = { low = 0.25, medium = 1.0, high = 2.5 } }\n'
         'faults = { error_rate = 0.0 }\n')


@pytest.fixture(scope="module")
def fixed(tmp_path_factory) -> MockServer:
    path = tmp_path_factory.mktemp("profiles") / "fixed.toml"
    path.write_text(FIXED)
    with MockServer("--profiles", str(path), "--latency-scale", "1", "--seed", "0") as server:
        yield server


def client(server: MockServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{server.url}/openai/v1", max_retries=0)


def test_partial_images_then_the_image_over_the_generation_time(fixed: MockServer) -> None:
    sent = time.monotonic()
    stream = client(fixed).images.generate(model="gpt-image-1", prompt=PROMPT, stream=True, partial_images=3,
                                           quality="medium", size="1024x1024")
    events = []
    for event in stream:
        events.append((time.monotonic() - sent, event))
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["ImageGenPartialImageEvent"] * 3 + ["ImageGenCompletedEvent"]
    partials = [e for _, e in events if isinstance(e, ImageGenPartialImageEvent)]
    assert [p.partial_image_index for p in partials] == [0, 1, 2]
    assert all(p.type == "image_generation.partial_image" for p in partials)
    assert len({p.b64_json for p in partials}) == 3              # each partial is an image of its own
    done = events[-1][1]
    assert isinstance(done, ImageGenCompletedEvent) and done.type == "image_generation.completed"
    assert (done.size, done.quality, done.background, done.output_format) == ("1024x1024", "medium", "opaque", "png")
    assert done.usage.output_tokens == 1056 and done.usage.total_tokens == done.usage.input_tokens + 1056
    assert Image.open(io.BytesIO(base64.b64decode(done.b64_json))).format == "PNG"
    # The server sends event k of 4 no sooner than k/4 of the 2 s: never early.
    for k, (at, _) in enumerate(events, 1):
        assert at >= 2.0 * k / 4 - 0.01, (k, at)
    # Spread, not bunched at the end: the first partial comes 1.5 s before the image is due; a
    # stall of up to 0.75 s on this machine still passes.
    assert events[-1][0] - events[0][0] >= 0.75


def test_no_partials_is_one_event_and_quality_scales_the_time(fixed: MockServer) -> None:
    sent = time.monotonic()
    events = list(client(fixed).images.generate(model="gpt-image-1", prompt=PROMPT, stream=True,
                                                partial_images=0, quality="high"))
    took = time.monotonic() - sent
    assert [e.type for e in events] == ["image_generation.completed"]
    assert took >= 2.0 * 2.5 - 0.01    # high quality is 2.5 times the medium image's 2 s


def test_stream_headers_come_with_the_raw_response(fixed: MockServer) -> None:
    with client(fixed).images.with_streaming_response.generate(model="gpt-image-1", prompt=PROMPT, stream=True,
                                                               partial_images=1, quality="low") as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.headers["x-ratelimit-limit-requests"] == "250"
        assert int(raw.headers["openai-processing-ms"]) >= 0
        text = "".join(raw.iter_text())
    assert text.count("event: image_generation.partial_image\n") == 1
    assert text.count("event: image_generation.completed\n") == 1


def test_a_queued_stream_waits_for_its_slot_and_a_full_queue_refuses_before_streaming(start_mock,
                                                                                        tmp_path) -> None:
    """One slot and a queue of one: the first stream runs (low quality: 0.25 x 2 s = 0.5 s), the second
    waits for it and streams after it, the third finds the queue full and gets an HTTP 503."""
    path = tmp_path / "fixed.toml"
    path.write_text(FIXED)
    server = start_mock("--profiles", str(path), "--latency-scale", "1", "--set", "gpt-image-1.slots=1",
                        "--set", "gpt-image-1.queue=1")
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=f"{server.url}/openai/v1", max_retries=0)

    async def one() -> list[float]:
        sent = time.monotonic()
        stream = await sdk.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True, partial_images=1,
                                           quality="low")
        return [time.monotonic() - sent async for _ in stream]

    async def go() -> tuple[list[float], list[float], BaseException | list[float]]:
        first = asyncio.create_task(one())
        await asyncio.sleep(0.1)
        second = asyncio.create_task(one())
        await asyncio.sleep(0.1)
        third = await asyncio.gather(one(), return_exceptions=True)
        return await first, await second, third[0]

    first, second, third = asyncio.run(go())
    assert len(first) == 2 and len(second) == 2
    # The second was sent 0.1 s after the first, waited for the first's 0.5 s, then ran its own 0.5 s:
    # its partial (due halfway through its 0.5 s) came no sooner than 0.4 + 0.25 s after it was sent.
    assert second[0] >= 0.4 + 0.25 - 0.01
    assert isinstance(third, openai.InternalServerError) and third.status_code == 503


def test_a_client_that_leaves_mid_stream_frees_its_slot(start_mock, tmp_path) -> None:
    path = tmp_path / "fixed.toml"
    path.write_text(FIXED)
    server = start_mock("--profiles", str(path), "--latency-scale", "1", "--set", "gpt-image-1.slots=1",
                        "--set", "gpt-image-1.queue=0")
    # Ten high-quality images: 5 s x (1 + 9 x 0.5) = 27.5 s in all, an event every 0.69 s.
    body = {"model": "gpt-image-1", "prompt": PROMPT, "stream": True, "partial_images": 3, "quality": "high",
            "n": 10}
    with httpx.stream("POST", f"{server.url}/openai/v1/images/generations", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status_code == 200
        first = next(r.iter_lines())
        assert first == "event: image_generation.partial_image"
    # The generation is dropped at the server's next write, not run to its end 27 s on: the slot is
    # free within the 10 s this looks for it.
    running = None
    for _ in range(50):
        running = httpx.get(f"{server.url}/admin/providers/gpt-image-1", timeout=10).json()["running"]
        if running == 0:
            break
        time.sleep(0.1)
    assert running == 0
    done = client(server).images.generate(model="gpt-image-1", prompt=PROMPT, quality="low")
    assert done.data


def test_refusals_come_before_the_stream_as_the_sdks_exceptions(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "gpt-image-1.requests_per_minute=1",
                        "--set", "gpt-image-1.burst=1", "--set", "gpt-image-1.error_rate=0")
    sdk = client(server)
    assert [e.type for e in sdk.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True)] == \
        ["image_generation.completed"]
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True)
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"
    server.admin("gpt-image-1", outage=True)
    with pytest.raises(openai.InternalServerError) as down:
        sdk.images.generate(model="gpt-image-1", prompt=PROMPT, stream=True)
    assert down.value.status_code == 503 and down.value.code == "service_unavailable"


def test_a_failure_while_generating_ends_the_stream_with_an_error_event(start_mock) -> None:
    server = start_mock("--latency-scale", "0.01", "--set", "gpt-image-1.error_rate=1",
                        "--set", "gpt-image-1.requests_per_minute=100000", "--set", "gpt-image-1.burst=100000")
    # With every request failing, the mix sends some at once (refused: an HTTP error) and some after
    # the generation (a server error inside the stream); the seed fixes which, so look for both.
    inside = before = 0
    for _ in range(20):
        try:
            for _event in client(server).images.generate(model="gpt-image-1", prompt=PROMPT, stream=True,
                                                         partial_images=2, quality="low"):
                pass
        except openai.APIStatusError:
            before += 1
        except openai.APIError as err:
            assert isinstance(err.body, dict) and err.body["type"] == "server_error"
            inside += 1
    assert inside >= 1 and before >= 1


def test_edit_streams_too_as_image_edit_events(fixed: MockServer) -> None:
    png = io.BytesIO()
    Image.new("RGBA", (256, 256), (200, 10, 10, 255)).save(png, "PNG")
    events = list(client(fixed).images.edit(model="gpt-image-1", image=("shoe.png", png.getvalue(), "image/png"),
                                            prompt="Put the shoe on a beach", stream=True, partial_images=2,
                                            quality="low"))
    assert [e.type for e in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert events[-1].usage.input_tokens_details.image_tokens > 0


def test_the_stream_is_plain_server_sent_events(fixed: MockServer) -> None:
    r = httpx.post(f"{fixed.url}/openai/v1/images/generations", timeout=30,
                   headers={"Authorization": f"Bearer {KEY}"},
                   json={"model": "gpt-image-1", "prompt": PROMPT, "stream": True, "partial_images": 1,
                         "quality": "low"})
    blocks = [b for b in r.text.split("\n\n") if b]
    assert [b.splitlines()[0] for b in blocks] == ["event: image_generation.partial_image",
                                                    "event: image_generation.completed"]
    assert all(b.splitlines()[1].startswith("data: {") for b in blocks)
