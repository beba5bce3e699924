"""The images the simulated providers hand out: small real PNGs, deterministic in prompt+seed.

An image's URL carries the digest of (prompt, seed) and the payload size, so the
server keeps no state for it: the same digest always renders the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import zlib
from functools import lru_cache

from aiohttp import web
from xxhash import xxh3_128_hexdigest

MIN_KB, MAX_KB = 1, 8192


def digest_for(prompt: str, seed: int | str) -> str:
    """32 hex digits naming an image: the same prompt and seed always name the same image."""
    # xxh3: a name, not a secret, and a cryptographic hash costs several times more per answer.
    # Plain UTF-8 is enough: the body parser refuses a lone surrogate ("\ud800") before a prompt gets here.
    return xxh3_128_hexdigest(f"{seed}\x00{prompt}".encode())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@lru_cache(maxsize=2048)
def render_png(digest: str, kb: int) -> bytes:
    """An RGB PNG of about `kb` kilobytes: a colour from the digest, with hashed noise.

    Stored uncompressed so its size is what was asked for (bandwidth is part of
    what a load test measures).
    """
    side = max(8, int(math.sqrt(kb * 1024 / 3)))
    seed = bytes.fromhex(digest)
    noise = hashlib.shake_256(seed).digest(side * side * 3)
    r, g, b = seed[0], seed[1], seed[2]
    rows = bytearray()
    for y in range(side):
        rows.append(0)  # filter: none
        row = bytearray(noise[y * side * 3:(y + 1) * side * 3])
        for x in range(0, side * 3, 3):
            row[x] = (row[x] >> 3) + r * 7 // 8
            row[x + 1] = (row[x + 1] >> 3) + g * 7 // 8
            row[x + 2] = (row[x + 2] >> 3) + b * 7 // 8
        rows += row
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(rows), 0))
            + _chunk(b"IEND", b""))


@lru_cache(maxsize=2048)
def render_b64(digest: str, kb: int) -> str:
    return base64.b64encode(render_png(digest, kb)).decode()


def image_path(digest: str, kb: int) -> str:
    return f"/images/{digest}.png?kb={kb}"


async def serve_image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    digest = name.removesuffix(".png")
    if len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest) or not name.endswith(".png"):
        return web.json_response({"error": {"message": "No such image.", "code": "not_found"}}, status=404)
    try:
        kb = int(request.query.get("kb", request.app["mock"].image_kb))
    except ValueError:
        kb = -1
    if not MIN_KB <= kb <= MAX_KB:
        return web.json_response({"error": {"message": f"kb must be {MIN_KB}..{MAX_KB}", "code": "invalid_request"}},
                                 status=400)
    body = render_png(digest, kb)
    return web.Response(body=body, content_type="image/png",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})
