"""The images the mock hands out: real PNGs of the resolution asked and a realistic size, the same for
the same prompt and seed, behind signed URLs that expire, answered as blob storage answers."""

from __future__ import annotations

import base64
import calendar
import io
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest
from mockserver import MockServer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from mockprovider.images import MAX_IMAGE_BYTES, adler32_combine, build_base

PROMPT = "Leather handbag on a walnut table, warm window light"
HEADERS = {"Authorization": "Bearer hs_test_images_0001"}
DIGEST = "0123456789abcdef0123456789abcdef"


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
    idats = [i for i, k in enumerate(kinds) if k == b"IDAT"]
    assert idats == list(range(idats[0], idats[-1] + 1)), "IDAT chunks are consecutive"
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)   # 8-bit RGB, plain
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))   # checks the Adler-32
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * (1 + 3 * width)] == 0 for y in range(height)), "filter byte of every scanline"
    return width, height, raw


def decoded(data: bytes) -> Image.Image:
    """The PNG as Pillow's decoder reads it: a second, independent decoder."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0", "--seed", "0", "--set", "relay.error_rate=0",
                    "--set", "imagen-4.error_rate=0") as server:
        yield server


def relay(server: MockServer, seed: int | None = None, prompt: str = PROMPT, **fields) -> httpx.Response:
    body = {"prompt": prompt, "model": "imagen-4", "width": 1024, "height": 1024, **fields}
    if seed is not None:
        body["seed"] = seed
    r = httpx.post(f"{server.url}/relay/v1/images/generations", json=body, headers=HEADERS, timeout=30)
    assert r.status_code == 200, r.text
    return r


def relay_image(server: MockServer, seed: int | None, prompt: str = PROMPT, **fields) -> tuple[str, bytes]:
    url = relay(server, seed, prompt, **fields).json()["data"][0]["url"]
    image = httpx.get(url, timeout=30)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    return url, image.content


def metric(server: MockServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


# --- the bytes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width, height, nbytes, kind", [
    (1024, 1024, 1_887 * 1024, "asked"), (1536, 1024, 2_800 * 1024, "asked"), (300, 200, 60_000, "asked"),
    (1024, 1792, 5 * 1024, "floor"),      # below what one stored row and the flat rest need
    (64, 48, 10**6, "ceiling"),           # above the uncompressed size
    (1, 1, 1024, "ceiling"),           # a single pixel cannot be a kilobyte
])
def test_every_base_makes_valid_pngs_of_the_size_asked(width: int, height: int, nbytes: int, kind: str) -> None:
    base = build_base(width, height, nbytes)
    png = base.png(DIGEST)
    assert parse_png(png)[:2] == (width, height)
    image = decoded(png)
    assert image.size == (width, height) and image.mode == "RGB"
    assert image.getpixel((0, 0)) == (0x01, 0x23, 0x45)   # the first row: the digest's colour
    assert base64.b64decode(base.b64(DIGEST)) == png        # base64 spliced from parts is the PNG's
    raw = height * (1 + 3 * width)
    if kind == "asked":
        assert abs(len(png) - nbytes) <= 1 + 3 * width      # within one scanline
    elif kind == "floor":
        assert nbytes < len(png) < 20 * 1024 + 3 * width
    else:
        assert raw < len(png) < raw * 1.001 + 300


def test_a_base_varies_only_the_digest_s_own_bytes() -> None:
    base = build_base(256, 256, 100 * 1024)
    one, other = base.png(DIGEST), base.png("f" * 32)
    assert one != other and len(one) == len(other)
    assert base.shared in one and base.shared in other   # the shared part, byte for byte


def test_adler32_combine_is_zlib_s() -> None:
    for a, b in ((b"", b""), (b"x" * 100_003, b"y"), (bytes(range(256)) * 999, b"\xff" * 70_000)):
        assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def test_served_image_has_the_resolution_asked_and_a_realistic_size(mock: MockServer) -> None:
    _, data = relay_image(mock, seed=1, width=1024, height=1792, model="dall-e-4")
    assert parse_png(data)[:2] == (1024, 1792)
    assert decoded(data).size == (1024, 1792)
    # The relay's profile: 1,800 KB per megapixel, so 1024x1792 is about 3.2 MiB (real ones run 1.5-3 MB a 1024^2).
    expected = 1800 * 1024 * 1024 * 1792 / 1e6
    assert len(data) == pytest.approx(expected, rel=0.01)


def test_same_prompt_and_seed_same_bytes_other_seed_other_bytes(mock: MockServer) -> None:
    url_a, a = relay_image(mock, seed=42)
    url_b, b = relay_image(mock, seed=42)
    assert a == b and url_a.split("&sig=")[0].split("?")[0] == url_b.split("&sig=")[0].split("?")[0]
    _, c = relay_image(mock, seed=43)
    _, d = relay_image(mock, seed=42, prompt=PROMPT + " at dusk")
    assert c != a and d != a
    # Without a seed every answer is a new image.
    assert relay_image(mock, seed=None)[1] != relay_image(mock, seed=None)[1]


def test_b64_answers_carry_the_whole_image(mock: MockServer) -> None:
    r = relay(mock, seed=7, response_format="b64_json")
    png = base64.b64decode(r.json()["data"][0]["b64_json"])
    assert parse_png(png)[:2] == (1024, 1024)
    assert len(png) == pytest.approx(1800 * 1024 * 1024 * 1024 / 1e6, rel=0.01)   # about 1.8 MiB
    assert len(r.content) > 2_400_000                                              # and the body with it
    # The same image as the URL serves, byte for byte.
    _, by_url = relay_image(mock, seed=7)
    assert by_url == png


def test_vertex_images_have_the_aspect_ratio_s_pixels(mock: MockServer) -> None:
    r = httpx.post(f"{mock.url}/vertex/v1/projects/p/locations/us-central1/publishers/google/models/imagen-4:predict",
                   json={"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": 2, "aspectRatio": "16:9"}},
                   headers={"Authorization": "Bearer ya29.test"}, timeout=30)
    assert r.status_code == 200
    for prediction in r.json()["predictions"]:
        image = decoded(base64.b64decode(prediction["bytesBase64Encoded"]))
        assert image.size == (1408, 768)


@pytest.mark.parametrize("kb", [16, 64, 512])
def test_image_kb_fixes_every_image_s_size(start_mock, kb: int) -> None:
    server = start_mock("--latency-scale", "0", "--image-kb", str(kb), "--set", "relay.error_rate=0")
    _, data = relay_image(server, seed=5)
    assert parse_png(data)[:2] == (1024, 1024)
    # Within one scanline (3 KB at 1024 wide) of the size asked.
    assert abs(len(data) - kb * 1024) <= 1 + 3 * 1024


def test_the_size_follows_the_profile_and_the_live_setting(start_mock, tmp_path: Path) -> None:
    profile = tmp_path / "small.toml"
    profile.write_text("[relay]\nimage = { kb_per_megapixel = 300 }\n")
    server = start_mock("--latency-scale", "0", "--profiles", str(profile), "--set", "relay.error_rate=0")
    megapixels = 1024 * 1024 / 1e6
    assert len(relay_image(server, seed=1)[1]) == pytest.approx(300 * 1024 * megapixels, rel=0.01)
    r = httpx.patch(f"{server.url}/admin/providers/relay", json={"kb_per_megapixel": 900}, timeout=10)
    assert r.status_code == 200 and r.json()["settings"]["kb_per_megapixel"] == 900
    assert len(relay_image(server, seed=1)[1]) == pytest.approx(900 * 1024 * megapixels, rel=0.01)


def test_the_cache_stays_within_its_byte_budget(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--image-cache-mb", "8", "--set", "relay.error_rate=0")
    assert metric(server, "mock_image_cache_limit_bytes") == 8 * 1024 * 1024
    sizes = [(512, 512), (768, 768), (1024, 1024), (1024, 1792), (1792, 1024)]   # each base 1-6 MB
    for width, height in sizes:
        relay(server, seed=1, width=width, height=height, response_format="b64_json")
    assert 0 < metric(server, "mock_image_cache_bytes") <= 8 * 1024 * 1024
    assert metric(server, "mock_image_cache_entries") < len(sizes)   # the oldest were let go
    # and what was let go is built again when asked for, the same bytes
    assert relay_image(server, seed=1, width=512, height=512)[1] == relay_image(server, seed=1, width=512,
                                                                                    height=512)[1]


# --- the URLs ------------------------------------------------------------------------------------


def test_urls_expire_after_url_ttl_s(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0", "--set", "relay.url_ttl_s=1")
    url = relay(server, seed=3).json()["data"][0]["url"]
    assert httpx.get(url, timeout=30).status_code == 200   # fetched at once: good
    left = seconds_left(url)
    assert 0.5 <= left <= 2.1               # url_ttl_s to a second more (less the time the fetch took)
    time.sleep(left + 0.1)
    late = httpx.get(url, timeout=30)
    assert late.status_code == 403
    assert late.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert late.headers["content-type"].startswith("application/xml")
    assert "<Code>AuthenticationFailed</Code>" in late.text and "Signature not valid in the specified time frame" \
        in late.text


def test_a_ttl_of_zero_has_expired_by_the_first_fetch(mock: MockServer) -> None:
    assert httpx.patch(f"{mock.url}/admin/providers/relay", json={"url_ttl_s": 0}, timeout=10).status_code == 200
    try:
        url = relay(mock, seed=3).json()["data"][0]["url"]
        assert httpx.get(url, timeout=30).status_code == 403
    finally:
        httpx.post(f"{mock.url}/admin/providers/relay/reset", timeout=10)


def seconds_left(url: str) -> float:
    return calendar.timegm(time.strptime(re.search(r"se=([^&]+)", url)[1], "%Y-%m-%dT%H:%M:%SZ")) - time.time()


def test_openai_urls_live_an_hour_and_midjourney_s_a_day(mock: MockServer) -> None:
    r = httpx.post(f"{mock.url}/openai/v1/images/generations", json={"prompt": PROMPT, "model": "dall-e-4"},
                   headers={"Authorization": "Bearer sk-test-images-0001"}, timeout=30)
    url = r.json()["data"][0]["url"]
    assert "/images/dall-e-4/img-" in url and 3600 - 1 <= seconds_left(url) <= 3602
    secret = {"mj-api-secret": "mj-images-account"}
    task = httpx.post(f"{mock.url}/midjourney/mj/submit/imagine", json={"prompt": PROMPT}, headers=secret).json()
    for _ in range(200):
        view = httpx.get(f"{mock.url}/midjourney/mj/task/{task['result']}/fetch", headers=secret).json()
        if view["status"] == "SUCCESS":
            break
        time.sleep(0.02)
    assert "/images/midjourney-v7/img-" in view["imageUrl"] and 86400 - 60 <= seconds_left(view["imageUrl"]) <= 86402


@pytest.mark.parametrize("tamper", [
    lambda u: u.replace("w=1024", "w=1025"),                        # another size
    lambda u: re.sub(r"se=(\d{4})", lambda m: f"se={int(m[1]) + 1}", u),   # a later expiry
    lambda u: u[:-1] + ("0" if u[-1] != "0" else "1"),              # another signature
    lambda u: u.split("&sig=")[0],                                  # no signature
    lambda u: u.split("?")[0],                                      # no query at all
    lambda u: u.replace("/images/relay/", "/images/dall-e-4/"),     # another provider's
])
def test_an_edited_url_is_refused_as_storage_refuses_it(mock: MockServer, tamper) -> None:
    url = relay(mock, seed=11).json()["data"][0]["url"]
    r = httpx.get(tamper(url), timeout=30)
    assert r.status_code == 403 and r.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert r.text.lstrip("\ufeff").startswith('<?xml version="1.0" encoding="utf-8"?><Error>')


def test_unknown_images_are_not_found(mock: MockServer) -> None:
    for path in ("/images/not-a-digest.png", "/images/relay/img-zz.png", "/images/nobody/img-" + DIGEST + ".png",
                 "/images/" + DIGEST + ".png?kb=8192", "/images/relay/img-" + DIGEST + ".png/more"):
        r = httpx.get(mock.url + path, timeout=10)
        assert r.status_code == 404 and r.headers["x-ms-error-code"] == "BlobNotFound", path


def test_a_url_of_an_earlier_server_is_refused(start_mock) -> None:
    first = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0")
    url = relay(first, seed=1).json()["data"][0]["url"]
    first.stop()
    second = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0")
    r = httpx.get(url.replace(first.url, second.url), timeout=30)
    assert r.status_code == 403


def test_largest_image_bound_is_documented_and_enforced() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"{MAX_IMAGE_BYTES // (1024 * 1024)} MiB" in readme
    with pytest.raises(ValueError):
        build_base(4097, 16, 1024)


# --- the Host header -----------------------------------------------------------------------------


HOSTILE = ['evil.example.com', 'x"><script>', "evil.example.com:1/../../", "a" * 300]


@pytest.mark.parametrize("host", HOSTILE)
def test_a_hostile_host_header_never_reaches_an_answer(mock: MockServer, host: str) -> None:
    answers = [
        httpx.post(f"{mock.url}/relay/v1/images/generations", json={"prompt": PROMPT, "model": "imagen-4"},
                   headers={**HEADERS, "Host": host}, timeout=30),
        httpx.post(f"{mock.url}/openai/v1/images/generations", json={"prompt": PROMPT, "model": "dall-e-4"},
                   headers={"Authorization": "Bearer sk-test-images-0001", "Host": host}, timeout=30),
    ]
    for r in answers:
        assert r.status_code == 200
        assert r.json()["data"][0]["url"].startswith(mock.url + "/images/")
        assert "evil" not in r.text and "script" not in r.text


def test_public_url_names_where_images_are(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0",
                        "--public-url", "https://images.mock.example:8443/")
    url = relay(server, seed=1).json()["data"][0]["url"]
    assert url.startswith("https://images.mock.example:8443/images/relay/img-")
    # The server answers the URL's path, wherever the name points.
    assert httpx.get(server.url + url.removeprefix("https://images.mock.example:8443"), timeout=30).status_code == 200


def test_bound_to_every_interface_only_a_plain_host_is_used(start_mock) -> None:
    server = start_mock("--host", "0.0.0.0", "--admin-token", "t0ken", "--latency-scale", "0",
                        "--set", "relay.error_rate=0")
    port = server.url.rsplit(":", 1)[1]

    def url_with(host: str) -> str:
        r = httpx.post(f"http://127.0.0.1:{port}/relay/v1/images/generations",
                       json={"prompt": PROMPT, "model": "imagen-4"}, headers={**HEADERS, "Host": host}, timeout=30)
        return r.json()["data"][0]["url"]

    assert url_with(f"mock.internal:{port}").startswith(f"http://mock.internal:{port}/images/")
    assert url_with(f"[::1]:{port}").startswith(f"http://[::1]:{port}/images/")
    assert url_with('x"><script>').startswith(f"http://127.0.0.1:{port}/images/")
    assert url_with("evil.example.com/..").startswith(f"http://127.0.0.1:{port}/images/")


@pytest.mark.parametrize("option, value", [
    ("--public-url", "ftp://x"), ("--public-url", "not a url"), ("--public-url", "http://x/?q=1"),
    ("--image-kb", "0"), ("--image-kb", str(MAX_IMAGE_BYTES // 1024 + 1)),
    ("--image-cache-mb", "0"), ("--image-cache-mb", "65537"),
])
def test_bad_image_options_are_refused_at_start(option: str, value: str) -> None:
    run = subprocess.run([sys.executable, "-m", "mockprovider", "--port", "0", option, value],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and option in run.stderr


def test_bad_image_profile_fields_are_refused_at_start(tmp_path: Path) -> None:
    for table, wording in (("image = { kb_per_megapixel = 0 }", "kb_per_megapixel must be >= 1"),
                           ("image = { url_ttl_s = -1 }", "url_ttl_s must be >= 0"),
                           ("image = { url_tll_s = 60 }", "unknown field(s) url_tll_s")):
        profile = tmp_path / "bad.toml"
        profile.write_text(f"[relay]\n{table}\n")
        run = subprocess.run([sys.executable, "-m", "mockprovider", "--port", "0", "--profiles", str(profile)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and wording in run.stderr, run.stderr
