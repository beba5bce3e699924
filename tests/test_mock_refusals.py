"""What aiohttp refuses before any handler runs (malformed lines, unknown methods, CONNECT) and what
the routes refuse about framing (Expect, Content-Encoding) is answered in JSON with a fixed text:
never the bytes the client sent (a malformed Authorization line carries a key), never a traceback."""

from __future__ import annotations

import gzip
import socket
import zlib

import brotli
import httpx
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mockserver import MockServer

SECRET = "sk-live-SECRET0123456789abcdef"
PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
RELAY = "/relay/v1/images/generations"


def raw(server: MockServer, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` on a fresh connection; everything the server answers until it closes or goes quiet."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.settimeout(1.0)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except TimeoutError:
            pass   # a kept-alive connection: the answer is complete
    return answer


def status_and_body(answer: bytes) -> tuple[int, bytes, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


# name -> (raw request, status)
RAW: dict[str, tuple[bytes, int]] = {
    "a header line without a colon, carrying a key": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {SECRET}\r\n\r\n".encode(), 400),
    "a header name with a control byte": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Key\x01: {SECRET}\r\n\r\n".encode(), 400),
    "a header past 8190 bytes": (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}{'x' * 9000}\r\n\r\n".encode(), 400),
    "a request line past 8190 bytes": (f"GET /{SECRET}{'x' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "too many headers": (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        f"X-{i}: {SECRET}\r\n".encode() for i in range(200)) + b"\r\n", 400),
    "an unknown method": (f"BREW /relay/v1/images/generations?k={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400),
    "TLS on the plain port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET.encode() + b"\r\n\r\n", 400),
    "CONNECT to a path": (b"CONNECT /admin/providers HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "CONNECT to an authority": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 404),
    "OPTIONS *": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    "broken chunked framing": (
        b"POST /relay/v1/images/generations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        + SECRET.encode() + b"\r\n", 400),
    "Content-Length and chunked at once": (
        b"POST /relay/v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
}


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0", "--set", "relay.error_rate=0") as server:
        yield server


def log_of(server: MockServer) -> str:
    return "".join(server.output)


@pytest.mark.parametrize("case", sorted(RAW))
def test_what_aiohttp_refuses_is_json_and_never_echoed(mock: MockServer, case: str) -> None:
    request, status = RAW[case]
    got, head, body = status_and_body(raw(mock, request))
    assert got == status, (head, body[:200])
    assert b"content-type: application/json" in head.lower(), head
    assert SECRET.encode() not in body and b"SECRET" not in body
    assert b"error" in body
    log = log_of(mock)
    assert SECRET not in log and "Traceback" not in log
    assert httpx.get(mock.url + "/healthz", timeout=10).status_code == 200


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_whatever_a_header_line_holds_its_key_is_not_echoed(mock: MockServer, junk: bytes) -> None:
    request = (b"POST " + RELAY.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
               + junk + SECRET.encode() + b"\r\n\r\n{}")
    got, head, body = status_and_body(raw(mock, request))
    assert got in (400, 401), (head, body[:200])   # refused as malformed, or served and refused the key
    assert b"content-type: application/json" in head.lower()
    assert SECRET.encode() not in body
    assert SECRET not in log_of(mock) and "Traceback" not in log_of(mock)


def test_an_unknown_expectation_is_refused_in_the_apis_shape_without_echo(mock: MockServer) -> None:
    headers = {"Authorization": "Bearer hs_test_refusals_0001", "Expect": f"bogus-{SECRET}"}
    r = httpx.post(mock.url + RELAY, json={"prompt": PROMPT}, headers=headers, timeout=10)
    assert r.status_code == 417 and r.json()["error"]["code"] == "expectation_failed"
    assert SECRET not in r.text
    r = httpx.patch(mock.url + "/admin/providers/relay", json={"slots": 2}, headers={"Expect": "nope"}, timeout=10)
    assert r.status_code == 417 and r.json()["error"]["code"] == 417
    assert r.headers["content-type"].startswith("application/json")
    # The one expectation HTTP/1.1 defines still works: the body follows the 100 Continue.
    port = int(mock.url.rsplit(":", 1)[1])
    body = f'{{"prompt": "{PROMPT}"}}'.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST " + RELAY.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hs_test_refusals_0001"
                  b"\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        assert s.recv(100).startswith(b"HTTP/1.1 200 OK")


def test_a_compressed_body_that_decodes_is_served(mock: MockServer) -> None:
    body = f'{{"prompt": "{PROMPT}"}}'.encode()
    for encoding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body)),
                             ("br", brotli.compress(body))):
        r = httpx.post(mock.url + RELAY, content=packed, timeout=10,
                       headers={"Authorization": "Bearer hs_test_refusals_0001", "Content-Encoding": encoding,
                                "Content-Type": "application/json"})
        assert r.status_code == 200, (encoding, r.text)
        assert r.json()["data"][0]["revised_prompt"] == PROMPT


def test_a_compression_bomb_is_a_413_and_holds_no_memory(mock: MockServer) -> None:
    """1 GiB of zeros in about 1 MB of gzip: decoded bytes count against the body limit as they come."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)   # 31: the gzip container
    zeros = bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(1024)) + packer.flush()
    rss = psutil.Process(mock.proc.pid).memory_info().rss if mock.proc else 0
    r = httpx.post(mock.url + RELAY, content=bomb, timeout=60,
                   headers={"Authorization": "Bearer hs_test_refusals_0001", "Content-Encoding": "gzip"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert mock.proc is not None
    assert psutil.Process(mock.proc.pid).memory_info().rss - rss < 64 * 2**20   # the limit is 16 MB
    assert httpx.get(mock.url + "/healthz", timeout=10).status_code == 200
