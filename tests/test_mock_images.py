"""The images the mock hands out: real PNGs, the same for the same prompt and seed, of the size asked."""

from __future__ import annotations

import struct
import zlib

import httpx
import pytest
from mockserver import MockServer

PROMPT = "Leather handbag on a walnut table, warm window light"
HEADERS = {"Authorization": "Bearer hs_test_images_0001"}


def parse_png(data: bytes) -> tuple[int, int, bytes]:
    """Check a PNG byte by byte (signature, chunk CRCs, IHDR, IDAT inflates to the right size);
    return (width, height, raw scanlines)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"CRC of {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data), "no bytes after the last chunk"
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)   # 8-bit RGB, plain
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * (1 + 3 * width)] == 0 for y in range(height)), "filter byte of every scanline"
    return width, height, raw


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0", "--seed", "0", "--set", "relay.error_rate=0") as server:
        yield server


def relay_image(server: MockServer, seed: int | None, prompt: str = PROMPT) -> tuple[str, bytes]:
    body = {"prompt": prompt, "model": "imagen-4", "width": 1024, "height": 1024}
    if seed is not None:
        body["seed"] = seed
    r = httpx.post(f"{server.url}/relay/v1/images/generations", json=body, headers=HEADERS, timeout=10)
    assert r.status_code == 200
    url = r.json()["data"][0]["url"]
    image = httpx.get(url, timeout=10)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    return url, image.content


def test_served_image_is_a_valid_png(mock: MockServer) -> None:
    _, data = relay_image(mock, seed=1)
    width, height, _ = parse_png(data)
    assert width == height >= 8


def test_same_prompt_and_seed_same_bytes_other_seed_other_bytes(mock: MockServer) -> None:
    url_a, a = relay_image(mock, seed=42)
    url_b, b = relay_image(mock, seed=42)
    assert url_a == url_b and a == b
    _, c = relay_image(mock, seed=43)
    _, d = relay_image(mock, seed=42, prompt=PROMPT + " at dusk")
    assert c != a and d != a
    # Without a seed every answer is a new image.
    assert relay_image(mock, seed=None)[1] != relay_image(mock, seed=None)[1]


@pytest.mark.parametrize("kb", [1, 4, 64])
def test_image_size_honours_image_kb(start_mock, kb: int) -> None:
    server = start_mock("--latency-scale", "0", "--image-kb", str(kb), "--set", "relay.error_rate=0")
    _, data = relay_image(server, seed=5)
    parse_png(data)
    # Stored uncompressed, so the payload is the square image that fits the size asked for.
    assert abs(len(data) - kb * 1024) <= max(0.05 * kb * 1024, 200)


def test_unknown_or_malformed_image_urls_are_refused(mock: MockServer) -> None:
    assert httpx.get(f"{mock.url}/images/not-a-digest.png", timeout=10).status_code == 404
    url, _ = relay_image(mock, seed=9)
    assert httpx.get(url.replace("kb=4", "kb=0"), timeout=10).status_code == 400
    assert httpx.get(url.replace("kb=4", "kb=lots"), timeout=10).status_code == 400
