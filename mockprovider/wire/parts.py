"""A response body written as the pieces it is made of."""

from __future__ import annotations

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload


class BodyParts(Payload):
    """A body written as the pieces it is made of: a large answer (an image, its base64 in a JSON
    body) goes out without being joined into one copy first."""

    def __init__(self, parts: tuple[bytes, ...], content_type: str) -> None:
        super().__init__(parts, content_type=content_type)
        self._size = sum(len(p) for p in parts)

    @property
    def parts(self) -> tuple[bytes, ...]:
        parts: tuple[bytes, ...] = self._value
        return parts

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.joined().decode(encoding, errors)

    def joined(self) -> bytes:
        return b"".join(self.parts)

    async def write(self, writer: AbstractStreamWriter) -> None:
        for part in self.parts:
            await writer.write(part)
