"""The images the simulated providers hand out: real PNGs of the size asked, made cheaply, behind URLs
that expire.

Size. An image has the pixel dimensions its request asked for and about as many bytes as a real PNG
of that resolution (the provider's `kb_per_megapixel` setting, from its profile; `--image-kb` fixes
one size for every image), capped at MAX_IMAGE_BYTES.

Cost. Every image of one (width, height, bytes) shares one *base*: all its pixel rows but the first,
deflated once (rows of noise stored as they are, so the file has its size, then a flat background
that compresses to almost nothing) and kept base64-encoded beside. An image adds only its first row
(a colour from its digest), a comment naming the digest and the stream's checksum: a few kilobytes
of work, whatever the file's size. Bases are built in a worker thread, never on the event loop, and
kept in a cache bounded by bytes (`--image-cache-mb`, default DEFAULT_CACHE_MB).

URLs. An image URL names the provider, the digest, the size and an expiry time (`se`, the
provider's `url_ttl_s` from now), signed with a key of this process (`sig`), so the server keeps no
state per image and a URL cannot be edited into another size or a later expiry. An expired, forged
or malformed URL answers as the blob storage behind OpenAI's URLs does: 403 AuthenticationFailed in
Azure's XML error shape; one the `image_not_found` toxic broke answers 404 BlobNotFound. URLs start
with the configured public URL (`--public-url`) or the address the server is bound to; only a
server bound to every interface uses the request's Host header, and then only a plain host[:port].
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import math
import os
import re
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as json_string  # C; escapes to plain ASCII
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from aiohttp import web
from cachetools import LRUCache
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from xxhash import xxh3_64_hexdigest, xxh3_64_intdigest, xxh3_128_hexdigest

from .wire.parts import BodyParts
from .wire.toxic_answer import answer_with_toxics

if TYPE_CHECKING:
    from .provider import Provider

MAX_SIDE = 4096                          # pixels a side
MAX_IMAGE_BYTES = 16 * 1024 * 1024       # 16 MiB: a 3840x2160 PNG at about 1.9 MB per megapixel
DEFAULT_CACHE_MB = 128
SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STORED_MAX = 65535                      # bytes in one stored deflate block
_BACKGROUND = bytes((244, 243, 240))     # a studio-white backdrop, as product shots have
_NOISE_BYTES = 1 << 20


def digest_for(prompt: str, seed: int | str) -> str:
    """32 hex digits naming an image: the same prompt and seed always name the same image."""
    # xxh3: a name, not a secret, and a cryptographic hash costs several times more per answer.
    # Plain UTF-8 is enough: the body parser refuses a lone surrogate ("\ud800") before a prompt gets here.
    return xxh3_128_hexdigest(f"{seed}\x00{prompt}".encode())


# --- PNG bytes -----------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """The Adler-32 of A+B from those of A and B (zlib's adler32_combine, which Python's zlib lacks)."""
    base = 65521
    rem = len2 % base
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % base
    sum1 = (sum1 + (adler2 & 0xFFFF) + base - 1) % base
    sum2 = (sum2 + ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + base - rem) % base
    return sum1 | (sum2 << 16)


_noise: bytes | None = None


def _noise_tile() -> bytes:
    """1 MiB of fixed pseudo-random bytes: the same in every process, so images repeat across runs."""
    global _noise
    if _noise is None:
        _noise = hashlib.shake_256(b"imagegen-loadtest image noise").digest(_NOISE_BYTES)
    return _noise


def _stored(raw: bytes | memoryview) -> list[bytes | memoryview]:
    """`raw` as non-final stored deflate blocks."""
    view = memoryview(raw)
    parts: list[bytes | memoryview] = []
    for pos in range(0, len(view), _STORED_MAX):
        piece = view[pos:pos + _STORED_MAX]
        parts += (b"\x00" + struct.pack("<HH", len(piece), len(piece) ^ 0xFFFF), piece)
    return parts


def _text_chunk_size(digest_len: int = 32) -> int:
    return 12 + len(b"Comment\x00imagegen-loadtest image ") + digest_len + 2   # + up to 2 bytes of padding


@dataclass(frozen=True)
class Base:
    """What every image of one (width, height, size) shares; `png` and `b64` add one digest's part."""

    width: int
    height: int
    ihdr: bytes            # the IHDR chunk
    shared: bytes          # IDAT chunk: rows 1.. of the stream (a multiple of 3 bytes, so base64 splices)
    shared_b64: bytes      # base64 of `shared`
    tail_data: bytes       # the stream's last 0-2 bytes, which did not fit `shared` at a multiple of 3
    shared_adler: int      # Adler-32 of rows 1.. as raw scanlines
    shared_raw_len: int

    @property
    def held_bytes(self) -> int:
        return len(self.shared) + len(self.shared_b64) + len(self.ihdr) + 200

    def _parts(self, digest: str) -> tuple[bytes, bytes]:
        """The image's own bytes: (everything before `shared`, everything after it)."""
        row = b"\x00" + bytes.fromhex(digest[:6]) * self.width   # the first scanline: the digest's colour
        head = b"\x78\x01" + b"\x00" + struct.pack("<HH", len(row), len(row) ^ 0xFFFF) + row
        text = b"Comment\x00imagegen-loadtest image " + digest.encode()
        before = len(SIGNATURE) + len(self.ihdr) + 12 + len(text) + 12 + len(head)
        text += b" " * (-before % 3)   # so that `shared` starts at a multiple of 3 bytes and base64 splices
        prefix = SIGNATURE + self.ihdr + _chunk(b"tEXt", text) + _chunk(b"IDAT", head)
        adler = adler32_combine(zlib.adler32(row), self.shared_adler, self.shared_raw_len)
        suffix = _chunk(b"IDAT", self.tail_data + struct.pack(">I", adler)) + _IEND
        return prefix, suffix

    def png(self, digest: str) -> bytes:
        return b"".join(self.png_parts(digest))

    def png_parts(self, digest: str) -> tuple[bytes, bytes, bytes]:
        prefix, suffix = self._parts(digest)
        return prefix, self.shared, suffix

    def b64(self, digest: str) -> bytes:
        return b"".join(self.b64_parts(digest))

    def b64_parts(self, digest: str) -> tuple[bytes, bytes, bytes]:
        """The image's base64 in three pieces, to splice into a body without joining them first."""
        prefix, suffix = self._parts(digest)
        return base64.b64encode(prefix), self.shared_b64, base64.b64encode(suffix)


_IEND = _chunk(b"IEND", b"")


def build_base(width: int, height: int, nbytes: int) -> Base:
    """The shared part of every `width` x `height` RGB image of about `nbytes` bytes.

    Deflate cannot make noise smaller and makes a flat colour almost vanish, so the first rows after
    the digest's are noise, stored as they are, and the rest is flat: the number of noise rows sets
    the size. A size below what the dimensions need (one stored row and the flat rest) gets that
    floor; one above the uncompressed size (3 bytes a pixel) gets that ceiling.
    """
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"image dimensions must be 1..{MAX_SIDE} a side, got {width}x{height}")
    row_len = 1 + 3 * width
    rows = height - 1
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    fixed = (len(SIGNATURE) + len(ihdr) + _text_chunk_size() + (12 + 2 + 5 + row_len)   # up to the digest row
             + 12 + (12 + 2 + 4) + len(_IEND))                                          # shared chunk, tail
    stored_row = row_len * (1 + 5 / _STORED_MAX)
    flat_row = b"\x00" + _BACKGROUND * width

    def flat(count: int) -> bytes:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        return deflate.compress(flat_row * count) + deflate.flush()

    noise_rows = max(0, min(rows, int((nbytes - fixed) / stored_row)))
    flat_z = flat(rows - noise_rows)
    over = fixed + noise_rows * stored_row + len(flat_z) - nbytes
    if over > 0 and noise_rows:   # the flat part's own bytes: take as many noise rows off
        noise_rows = max(0, noise_rows - math.ceil(over / stored_row))
        flat_z = flat(rows - noise_rows)

    tile, span = memoryview(_noise_tile()), 3 * width
    parts: list[bytes | memoryview] = []
    for i in range(noise_rows):
        offset = (i * 3 * 7919) % (len(tile) - span)   # a prime stride: rows do not line up
        parts += (b"\x00", tile[offset:offset + span])
    noise_raw = b"".join(parts)
    stream = b"".join([*_stored(noise_raw), flat_z])
    adler = zlib.adler32(flat_row * (rows - noise_rows), zlib.adler32(noise_raw))
    cut = len(stream) - len(stream) % 3
    shared = _chunk(b"IDAT", stream[:cut])   # 12 + cut bytes: a multiple of 3
    return Base(width, height, ihdr, shared, base64.b64encode(shared), stream[cut:], adler,
                len(noise_raw) + row_len * (rows - noise_rows))


# --- the store: sizes, bases, URLs -------------------------------------------------

# A Host header worth putting in a URL: a DNS name or an IPv4 or bracketed IPv6 address, and a port.
_SAFE_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                        r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?\Z")
_FILE = re.compile(r"^img-([0-9a-f]{32})\.png\Z")
_QUERY = re.compile(r"^w=([0-9]{1,4})&h=([0-9]{1,4})&kb=([0-9]{1,5})&se=([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
                    r"[0-9]{2}:[0-9]{2}Z)\Z")


@dataclass(slots=True)
class UrlForm:
    """What a provider's image URLs of one size share within one second."""

    second: str          # the Unix second, as text
    base: str
    kb_per_megapixel: float
    url_ttl_s: float
    prefix: str          # the URL up to the digest
    json_prefix: str     # the same JSON-escaped, opening quote included, for answers formatted directly
    query: str           # w, h, kb, se: everything before the signature
    seed: int            # see ImageStore._query_seed


def signature(seed: int, digest: str) -> str:
    return xxh3_64_hexdigest(digest.encode(), seed=seed)


class ImageStore:
    """Image bytes and URLs for every provider of one server (`MockContext.images`)."""

    def __init__(self, *, cache_bytes: int = DEFAULT_CACHE_MB * 1024 * 1024, image_kb: int | None = None,
                 public_url: str | None = None) -> None:
        self.image_kb = image_kb   # fixed size for every image, or None: each provider's own
        self.public_url = public_url.rstrip("/") if public_url else None
        self.fallback_url = "http://127.0.0.1"   # for a Host header not worth trusting (set on bind)
        self._bases: LRUCache[tuple[int, int, int], Base] = LRUCache(maxsize=cache_bytes,
                                                                     getsizeof=lambda b: b.held_bytes)
        self._building: dict[tuple[int, int, int], asyncio.Future[Base]] = {}
        self._pool: ThreadPoolExecutor | None = None
        # Per process: a URL from an earlier run is a forgery to this one, as a rotated key makes it.
        self._key = int.from_bytes(os.urandom(8), "big")
        self._gone_key = self._key ^ 0x5A5A5A5A5A5A5A5A   # signs URLs the image_not_found toxic broke
        self._forms: dict[tuple[str, int, int], UrlForm] = {}   # (provider, width, height) -> this second's
        self._hosts: dict[str, str] = {}   # Host header -> the base URL it gives

    # sizes and bytes

    def nbytes(self, provider: Provider, width: int, height: int) -> int:
        """How many bytes an image of this resolution from this provider has (about)."""
        if self.image_kb is not None:
            return self.image_kb * 1024
        size = provider.settings.kb_per_megapixel * 1024 * width * height / 1e6
        return max(1024, min(MAX_IMAGE_BYTES, int(size) // 1024 * 1024))

    def base_now(self, width: int, height: int, nbytes: int) -> Base | None:
        return self._bases.get((width, height, nbytes))

    async def base(self, width: int, height: int, nbytes: int) -> Base:
        """The base for this size: from the cache, or built in the worker thread (one build per size)."""
        key = (width, height, nbytes)
        found = self._bases.get(key)
        if found is not None:
            return found
        pending = self._building.get(key)
        if pending is None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mock-images")
            pending = self._building[key] = asyncio.get_running_loop().run_in_executor(
                self._pool, build_base, width, height, nbytes)
            pending.add_done_callback(lambda fut: self._built(key, fut))
        return await asyncio.shield(pending)

    def _built(self, key: tuple[int, int, int], fut: asyncio.Future[Base]) -> None:
        self._building.pop(key, None)
        if not fut.cancelled() and fut.exception() is None:
            try:
                self._bases[key] = fut.result()
            except ValueError:   # bigger than the whole cache: served, not kept
                pass

    async def b64(self, provider: Provider, digest: str, width: int, height: int) -> str:
        """The image as base64 text, for a `b64_json` or `bytesBase64Encoded` field."""
        nbytes = self.nbytes(provider, width, height)
        base = self.base_now(width, height, nbytes) or await self.base(width, height, nbytes)
        return base.b64(digest).decode("ascii")

    def collector(self) -> Collector:
        return _CacheFigures(self)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # URLs

    def base_url(self, request: web.Request) -> str:
        """Where this server is, for URLs in answers: never an unchecked Host header."""
        if self.public_url:
            return self.public_url
        host = request.host
        base = self._hosts.get(host)
        if base is None:
            if len(self._hosts) >= 64:
                self._hosts.clear()
            base = self._hosts[host] = f"{request.scheme}://{host}" if _SAFE_HOST.match(host) else self.fallback_url
        return base

    def url_form(self, request: web.Request, provider: Provider, width: int, height: int,
                 now: str | None = None) -> UrlForm:
        """How this provider's URLs of this size read this second (see UrlForm); made once a second.
        `now`: the Unix second as text, when the caller has it (a clock read is a share of a cheap answer)."""
        if now is None:
            now = str(int(time.time()))
        base = self.public_url or self.base_url(request)
        settings = provider.settings
        form = self._forms.get((provider.name, width, height))
        if (form is None or form.second != now or form.base is not base
                or form.kb_per_megapixel != settings.kb_per_megapixel or form.url_ttl_s != settings.url_ttl_s):
            if len(self._forms) >= 4096:
                self._forms.clear()
            # Made once a second, so a URL lives url_ttl_s to one second more; 0 has expired when it is fetched.
            # ':' needs no escaping in a query (RFC 3986), so the URL reads the same decoded or not.
            ttl, second = settings.url_ttl_s, int(now)
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                   time.gmtime(second + 1 + math.ceil(ttl) if ttl > 0 else second))
            kb = self.nbytes(provider, width, height) // 1024
            query = f"w={width}&h={height}&kb={kb}&se={expiry}"
            prefix = f"{base}/images/{quote(provider.name, safe='')}/img-"
            form = self._forms[provider.name, width, height] = UrlForm(
                now, base, settings.kb_per_megapixel, ttl, prefix, json_string(prefix)[:-1], query,
                self._query_seed(provider.name, query))
        return form

    def _query_seed(self, provider_name: str, query: str, *, gone: bool = False) -> int:
        """A URL's signature is its digest hashed with this seed, itself the provider and query hashed with the
        server's key: one short hash per image."""
        return xxh3_64_intdigest(f"{provider_name}?{query}".encode(), seed=self._gone_key if gone else self._key)

    def sign(self, provider_name: str, digest: str, query: str, *, gone: bool = False) -> str:
        return signature(self._query_seed(provider_name, query, gone=gone), digest)

    def url(self, request: web.Request, provider: Provider, digest: str, width: int, height: int) -> str:
        """A signed, expiring URL of this image."""
        form = self.url_form(request, provider, width, height)
        return f"{form.prefix}{digest}.png?{form.query}&sig={signature(form.seed, digest)}"

    def gone(self, url: str) -> tuple[str, str | None]:
        """The URL re-signed as an image that no longer exists, and its digest (None if not ours)."""
        path, sep, sig = url.rpartition("&sig=")
        found = re.search(r"/images/([^/?]+)/img-([0-9a-f]{32})\.png\?(.*)\Z", path)
        if not sep or found is None:
            return url, None
        name, digest, query = unquote(found[1]), found[2], found[3]
        return f"{path}&sig={self.sign(name, digest, query, gone=True)}", digest

    # the route

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /images/{provider}/img-{digest}.png?w=&h=&kb=&se=&sig=: the image, as blob storage serves it."""
        name = request.match_info.get("provider", "")
        found = _FILE.match(request.match_info.get("file", ""))
        providers = request.app["mock"].providers
        if found is None or name not in providers:
            return storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        digest = found[1]
        query, sep, sig = request.query_string.rpartition("&sig=")
        fields = _QUERY.match(query)
        if not sep or fields is None or not re.fullmatch(r"[0-9a-f]{16}", sig):
            return storage_error(403, "AuthenticationFailed", _AUTH_FAILED, "Signature fields not well formed.")
        good = sig == self.sign(name, digest, query)
        if not good and sig != self.sign(name, digest, query, gone=True):
            return storage_error(403, "AuthenticationFailed", _AUTH_FAILED, "Signature did not match.")
        expiry = calendar.timegm(time.strptime(fields[4], "%Y-%m-%dT%H:%M:%SZ"))
        if time.time() >= expiry:
            return storage_error(403, "AuthenticationFailed", _AUTH_FAILED,
                                 "Signature not valid in the specified time frame: "
                                 f"Expiry [{_http_date(expiry)}] - Current [{_http_date(time.time())}]")
        if not good:
            return storage_error(404, "BlobNotFound", "The specified blob does not exist.")
        width, height, kb = int(fields[1]), int(fields[2]), int(fields[3])
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and 1 <= kb * 1024 <= MAX_IMAGE_BYTES):
            return storage_error(403, "AuthenticationFailed", _AUTH_FAILED, "Signature fields not well formed.")
        base = self.base_now(width, height, kb * 1024) or await self.base(width, height, kb * 1024)
        response = web.Response(body=BodyParts(base.png_parts(digest), "image/png"), headers={
            "ETag": f'"0x{sig.upper()}"', "x-ms-blob-type": "BlockBlob", "x-ms-version": _MS_VERSION,
            "x-ms-request-id": str(uuid.uuid4()), "Accept-Ranges": "bytes"})
        toxics = providers.with_toxics.get(name)
        if toxics is not None:   # the provider's connection faults (bandwidth, resets, ...) reach its downloads
            return await answer_with_toxics(request, response, toxics, None)
        return response


class _CacheFigures(Collector):
    def __init__(self, store: ImageStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        cache = self.store._bases
        yield GaugeMetricFamily("mock_image_cache_bytes", "Bytes the image bases in memory hold",
                                value=cache.currsize)
        yield GaugeMetricFamily("mock_image_cache_limit_bytes", "The most they may hold (--image-cache-mb)",
                                value=cache.maxsize)
        yield GaugeMetricFamily("mock_image_cache_entries", "Image bases in memory (one per resolution and size)",
                                value=len(cache))


_MS_VERSION = "2021-08-06"
_AUTH_FAILED = ("Server failed to authenticate the request. Make sure the value of Authorization header is "
                "formed correctly including the signature.")


def _http_date(epoch: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))


def storage_error(status: int, code: str, message: str, detail: str | None = None) -> web.Response:
    """An error in Azure Blob Storage's shape: XML, the code again in x-ms-error-code."""
    request_id = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    extra = f"<AuthenticationErrorDetail>{detail}</AuthenticationErrorDetail>" if detail else ""
    body = (f'\ufeff<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
            f"RequestId:{request_id}\nTime:{stamp}</Message>{extra}</Error>")
    return web.Response(text=body, status=status, reason=message, content_type="application/xml",
                        headers={"x-ms-error-code": code, "x-ms-request-id": request_id, "x-ms-version": _MS_VERSION})
