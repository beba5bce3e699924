"""The suite's clients speak today's request shapes to the real mock: gpt-image generate with its options,
streams read event by event (time to first image), multipart edits with a product photo and its mask,
Gemini generateContent with imageConfig and an inline photo, and batches sent the providers' own way."""

from __future__ import annotations

import io
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from locust.contrib.fasthttp import FastHttpSession
from locust.event import EventHook
from mockserver import MockServer
from PIL import Image

from loadtest.clients import CLIENTS, ApiClient, sse, uploads
from loadtest.clients.base import Share
from loadtest.scenario import Client, EditInputs, Target

KEYS = {"openai": "sk-test-clients-0001", "gemini": "AIzaSyTestClients01", "vertex": "ya29.test-clients",
        "relay": "hs_test_clients_01", "midjourney": "mj-test-clients"}
PREFIX = {"openai": "/openai/v1", "gemini": "/gemini/v1beta", "vertex": "/vertex/v1", "relay": "/relay/v1",
          "midjourney": "/midjourney"}
PROMPT = "Minimalist white sneaker on a marble surface, studio lighting"
# gpt-image-1 with a fixed generation time (P50 = P99: no spread), as tests/test_mock_openai_stream.py uses
# it: a medium 1024x1024 image takes exactly 2 s, so when each event is due is known.
FIXED = ('[gpt-image-1]\nlatency = { p50_ms = 2000, p99_ms = 2000, min_ms = 0, max_ms = 60000, '
         'per_extra_image = 0.5, size_exponent = 1.0, quality_factors = { low = 0.25, medium = 1.0, high = 2.5 } }\n'
         'faults = { error_rate = 0.0 }\n'
         # every generation fails after its time was spent: the stream ends with an error event
         '[failing-image]\nbase = "gpt-image-1"\nfamily = "gpt-image-1"\n'
         'latency = { p50_ms = 300, p99_ms = 300, min_ms = 0, max_ms = 60000 }\n'
         'faults = { error_rate = 1.0, mix = { server_error = 1.0 } }\n')


@pytest.fixture(scope="module")
def fixed(tmp_path_factory) -> Iterator[MockServer]:
    path = tmp_path_factory.mktemp("profiles") / "fixed.toml"
    path.write_text(FIXED)
    with MockServer("--profiles", str(path), "--latency-scale", "1", "--seed", "0") as server:
        yield server


def session(base_url: str, timeout: float = 30.0) -> FastHttpSession:
    return FastHttpSession(base_url=base_url, request_event=EventHook(), user=None, network_timeout=timeout,
                           connection_timeout=timeout)


FAMILY = {"failing-image": "gpt-image-1"}


def make(server: MockServer, api: str, model: str, **client: object) -> ApiClient:
    base = server.url + PREFIX[api]
    family = FAMILY.get(model, model) if api == "openai" else ""
    target = Target(name=model, api=api, model=model, base_url=base, family=family)
    return CLIENTS[api](session(base), target, KEYS[api], Client(**client), random.Random(1))   # type: ignore[arg-type]


# -- the SSE reader on its own ---------------------------------------------------------------------

STREAM = (b"event: image_generation.partial_image\ndata: {\"type\": \"a\", \"b64_json\": \"QUJD\"}\n\n"
          b": a comment line\r\n"
          b"event: image_generation.completed\r\ndata: {\"b64_json\":\r\ndata: \"REVG\"}\r\n\r\n"
          b"data: {\"type\": \"image_generation.completed\"}\n\n"
          b"event: error\ndata: {\"error\": {\"code\": \"server_error\"}}")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_are_the_same_however_the_bytes_arrive(size: int) -> None:
    chunks = (STREAM[i:i + size] for i in range(0, len(STREAM), size))
    events = list(sse.events(iter(chunks)))
    assert [e.name for e in events] == ["image_generation.partial_image", "image_generation.completed", "message",
                                        "error"]
    assert events[1].data == b"{\"b64_json\":\n\"REVG\"}"           # data lines joined, CRLF or LF
    assert events[3].data == b"{\"error\": {\"code\": \"server_error\"}}"   # the last one, unterminated
    assert sum(e.size for e in events[:3]) == STREAM.index(b"event: error")


def test_a_long_event_is_read_in_linear_time() -> None:
    # A 6 MB data line in 4 KB pieces, as a real image arrives: one pass, not a rescan per piece.
    big = b"event: image_generation.completed\ndata: {\"b64_json\": \"" + b"A" * 6_000_000 + b"\"}\n\n"
    pieces = [big[i:i + 4096] for i in range(0, len(big), 4096)]
    (event,) = list(sse.events(iter(pieces)))
    assert len(event.data) == len(big) - len(b"event: image_generation.completed\ndata: ") - 2


# -- streams against the mock ------------------------------------------------------------------------

def test_a_stream_is_read_as_it_arrives_and_its_first_image_is_timed(fixed: MockServer) -> None:
    c = make(fixed, "openai", "gpt-image-1", stream=True, partial_images=3, quality="medium", size="1024x1024")
    started = time.perf_counter()
    g = c.generate(PROMPT)
    took = time.perf_counter() - started
    assert (g.ok, g.status, g.images, g.error) == (True, 200, 1, None)
    assert g.first_image_at is not None
    first = g.first_image_at - started
    # The first partial image is due at 2 s / 4 and the image at 2 s: never early (the server's schedule) ...
    assert first >= 0.5 - 0.01 and took >= 2.0 - 0.01
    # ... and read when it came, not when the stream ended: 1.5 s apart, so a stall of 0.75 s still passes.
    assert took - first >= 0.75
    assert g.cost_usd > 0 and g.length > 0


def test_the_fast_path_reads_geventhttpclient_as_it_is_pinned(fixed: MockServer) -> None:
    s = session(fixed.url + "/openai/v1")
    resp = s.post("/images/generations", json={"model": "gpt-image-1", "prompt": PROMPT, "stream": True,
                                               "partial_images": 1, "quality": "low"},
                  headers={"Authorization": f"Bearer {KEYS['openai']}", "Accept-Encoding": "identity"}, stream=True)
    assert resp.status_code == 200
    # If an upgrade renames what the fast path reads (sse.INTERNALS), streams still work through readline,
    # but slowly on large images: this names the change.
    assert sse.fast_path(resp), [n for n in sse.INTERNALS if not hasattr(sse.raw_response(resp), n)]
    names = [e.name for e in sse.events(sse.chunks(resp))]
    assert names == ["image_generation.partial_image", "image_generation.completed"]
    # Read to its end, the connection went back to the pool and carries the next request.
    again = s.post("/images/generations", json={"model": "gpt-image-1", "prompt": PROMPT, "quality": "low"},
                   headers={"Authorization": f"Bearer {KEYS['openai']}"})
    assert again.status_code == 200


def test_several_images_and_no_partials(fixed: MockServer) -> None:
    g = make(fixed, "openai", "gpt-image-1", stream=True, partial_images=0, quality="low").generate(PROMPT, 2)
    assert (g.ok, g.images) == (True, 2) and g.first_image_at is not None


def test_an_error_event_fails_the_generation_with_its_status_and_keeps_its_first_image(fixed: MockServer) -> None:
    c = make(fixed, "openai", "failing-image", stream=True, partial_images=2, quality="medium")
    g = c.generate(PROMPT)
    assert (g.ok, g.status) == (False, 500), g.error
    assert g.error is not None and g.error.startswith("stream error event")
    assert g.first_image_at is not None            # the partial images came before the failure
    ok = make(fixed, "openai", "gpt-image-1", stream=True, quality="low")
    ok.session = c.session                          # the connection the error event left is not reused broken
    assert ok.generate(PROMPT).ok


def test_a_refusal_before_the_stream_is_an_ordinary_error(fixed: MockServer) -> None:
    g = make(fixed, "openai", "gpt-image-1", stream=True, quality="superb").generate(PROMPT)
    assert (g.ok, g.status) == (False, 400) and "'superb'" in (g.error or "")


def _cut_server(payload: bytes) -> tuple[socket.socket, threading.Thread]:
    """A server that answers 200 text/event-stream, sends `payload` and closes mid-stream."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(2):
            conn, _ = srv.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                time.sleep(0.2)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv, thread


def test_a_stream_cut_mid_way_is_a_connection_error_and_frees_its_connection() -> None:
    partial = b"event: image_generation.partial_image\ndata: {\"b64_json\": \"QUJD\"}\n\nevent: image_gen"
    srv, thread = _cut_server(partial)
    try:
        base = f"http://127.0.0.1:{srv.getsockname()[1]}/v1"
        target = Target(name=base, api="openai", model="gpt-image-1", base_url=base)
        c = CLIENTS["openai"](session(base, timeout=5), target, KEYS["openai"], Client(stream=True), random.Random(1))
        for _ in range(2):     # the second request gets a connection of its own: the cut one was given up
            g = c.generate(PROMPT)
            assert (g.ok, g.status) == (False, "connection_error"), g
            assert "closed before the end of the stream" in (g.error or "")
            assert g.first_image_at is not None
    finally:
        srv.close()
        thread.join(timeout=5)


# -- edits: multipart with the catalog's photos -------------------------------------------------------

def test_an_edit_sends_the_photo_and_its_mask_as_the_sdk_does(fixed: MockServer) -> None:
    c = make(fixed, "openai", "gpt-image-1", operation="edit", quality="low", input_fidelity="high",
             output_format="jpeg", edit=EditInputs(photos=3, images=2, width=512, height=512))
    for _ in range(3):     # the catalog's photos in turn, each with the first photo's mask
        g = c.generate("Replace the background with a marble surface")
        assert (g.ok, g.status, g.images) == (True, 200, 1), g.error
    streamed = make(fixed, "openai", "gpt-image-1", operation="edit", stream=True, partial_images=1, quality="low",
                    edit=EditInputs(photos=1))
    g = streamed.generate("Replace the background with a wooden table")
    assert g.ok and g.first_image_at is not None


def test_dall_e_2_edits_a_square_png(fast_mock: MockServer) -> None:
    g = make(fast_mock, "openai", "dall-e-2", operation="edit", size="512x512",
             edit=EditInputs(photos=1, width=512, height=512, format="png")).generate("Replace the background")
    assert (g.ok, g.images) == (True, 1), g.error


def test_the_photos_are_realistic_deterministic_and_their_masks_mark_the_background() -> None:
    photos = uploads.catalog(2, 768, 512, "jpeg")
    again = (uploads._photo(0, 768, 512, "jpeg"), uploads._photo(1, 768, 512, "jpeg"))
    assert [p.data for p in photos] == [p.data for p in again]              # the same seed, the same bytes
    for p in photos:
        with Image.open(io.BytesIO(p.data)) as im:
            assert (im.format, im.size, im.mode) == ("JPEG", (768, 512), "RGB")
        with Image.open(io.BytesIO(p.mask)) as mask:
            assert (mask.format, mask.size, mask.mode) == ("PNG", (768, 512), "RGBA")
            alpha = mask.getchannel("A")
            assert alpha.getpixel((5, 5)) == 0                             # a corner: background, to repaint
            assert alpha.getpixel((384, 300)) == 255                       # the product, kept
        # noise: the JPEG compresses as a photograph does, not as a flat drawing
        assert len(p.data) > 768 * 512 * 0.08


# -- Google ------------------------------------------------------------------------------------------

def test_gemini_generates_with_image_config_and_edits_with_the_photo_inline(fast_mock: MockServer) -> None:
    fixed = fast_mock
    g = make(fixed, "gemini", "gemini-2.5-flash-image", aspect_ratio="4:3").generate(PROMPT)
    assert (g.ok, g.images) == (True, 1), g.error
    e = make(fixed, "gemini", "gemini-3.1-flash-image", operation="edit", image_size="2K",
             edit=EditInputs(photos=2, width=512, height=512))
    g = e.generate("Replace the background with a wooden table")
    assert (g.ok, g.images) == (True, 1), g.error
    assert '"mimeType": "image/jpeg"' in e.body("x") and '"imageSize": "2K"' in e.body("x")
    bad = make(fixed, "gemini", "gemini-2.5-flash-image", image_size="4K").generate(PROMPT)
    assert (bad.ok, bad.status) == (False, 400)          # the mock checks what the suite sends


# -- batches the providers' own way -------------------------------------------------------------------

def test_native_plans_follow_each_apis_limit_per_request() -> None:
    def plan(api: str, model: str, images: int, family: str = "") -> list[Share]:
        return CLIENTS[api].plan(Target(model, api, model, family=family), images)
    assert plan("openai", "dall-e-4", 10) == [Share(10, 10)]
    assert plan("openai", "dall-e-3", 3) == [Share(1, 1)] * 3                  # dall-e-3 takes n = 1 only
    assert plan("openai", "house-model", 3, family="dall-e-3") == [Share(1, 1)] * 3   # by its family
    assert plan("relay", "midjourney-v7", 10) == [Share(10, 10)]
    assert plan("vertex", "imagen-4", 10) == [Share(4, 4), Share(4, 4), Share(2, 2)]
    assert plan("midjourney", "midjourney-v7", 10) == [Share(1, 4), Share(1, 4), Share(1, 2)]
    assert plan("gemini", "gemini-2.5-flash-image", 2) == [Share(1, 1)] * 2


def test_a_native_request_carries_its_images(fast_mock: MockServer) -> None:
    g = make(fast_mock, "vertex", "imagen-4", aspect_ratio="16:9").generate(PROMPT, 4)
    assert (g.ok, g.images) == (True, 4), g.error
    g = make(fast_mock, "openai", "dall-e-4").generate(PROMPT, 10)
    assert (g.ok, g.images) == (True, 10), g.error
    g = make(fast_mock, "relay", "dall-e-4", size="1792x1024", quality="hd").generate(PROMPT, 10)
    assert (g.ok, g.images) == (True, 10), g.error
