"""Writing an answer through a provider's toxics (mockprovider/toxics.py), at the response layer.

Every wire's guard (common.py) and the image route hand their finished answer here when the
provider has a toxic switched on; with none on, nothing here runs. Content toxics edit the JSON of a
200; connection toxics take over writing it: `ToxicResponse` writes the head and the body through
the toxics' pipes onto the connection, then keeps it for the next request or ends it (close, or
reset), and aiohttp, told the connection is gone, lets it go. Streamed answers (already written by
their handler) pass unchanged.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict

from ..toxics import Answer, Ending, ProviderToxics, Toxic
from .parts import BodyParts

FLUSH_WAIT_S = 30.0   # the longest a reset waits for the kernel to take what was written before it


async def answer_with_toxics(request: web.Request, response: web.StreamResponse, toxics: ProviderToxics,
                             gone_url: Callable[[str], tuple[str, str | None]] | None) -> web.StreamResponse:
    """The answer as the provider's toxics would have it written."""
    if not isinstance(response, web.Response) or response.prepared or request.method == "HEAD":
        return response
    body = response.body
    if isinstance(body, BodyParts):
        body = body.joined()
    if not isinstance(body, (bytes, bytearray)):
        return response
    active = toxics.active()
    values = toxics.values
    doc = None
    content = [t for t in active if not t.connection]
    if content and response.status == 200 and response.content_type == "application/json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
    answer = Answer(doc, len(body), gone_url)
    if doc is not None:
        for toxic in content:
            if toxic.edit(answer, values, toxics.draw(toxic)):
                toxics.fired[toxic.name] += 1
                answer.edited = True
        if answer.edited:
            body = orjson.dumps(doc)
            answer.body_length = len(body)
    fired = [t for t in active if t.connection and toxics.draw(t)(None)]
    for toxic in fired:
        toxic.edit(answer, values, toxics.draw(toxic))
        toxics.fired[toxic.name] += 1
    if fired:
        return ToxicResponse(response, bytes(body), answer, fired, toxics)
    if answer.edited:
        return web.Response(body=body, status=response.status, reason=response.reason,
                            headers=_without(response.headers, hdrs.CONTENT_LENGTH))
    return response


def _without(headers: Any, *names: str) -> CIMultiDict[str]:
    out: CIMultiDict[str] = CIMultiDict(headers)
    for name in names:
        out.popall(name, None)
    return out


class ToxicResponse(web.StreamResponse):
    """An answer written by the toxics that fired for it (aiohttp calls `prepare`, then `write_eof`)."""

    def __init__(self, original: web.Response, body: bytes, answer: Answer, fired: Sequence[Toxic],
                 toxics: ProviderToxics) -> None:
        super().__init__(status=original.status, reason=original.reason,
                         headers=_without(original.headers, hdrs.CONTENT_LENGTH, hdrs.TRANSFER_ENCODING))
        self._body_bytes = b"" if answer.silent else body
        self._answer = answer
        self._fired = fired
        self._toxics = toxics
        self._ran = False

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self._ran:   # aiohttp's own call after the handler: the answer is already written
            return None
        self._ran = True
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client left before the answer")
        answer = self._answer
        if answer.silent:
            pass
        elif answer.close_delimited:
            transport.write(self._head(request))
            async for chunk in self._chunks():
                if transport.is_closing():
                    raise ConnectionResetError("the client left during the answer")
                transport.write(chunk)
                await request.writer.drain()
        else:
            self.content_length = len(self._body_bytes)
            await super().prepare(request)
            async for chunk in self._chunks():
                await self.write(chunk)
            if answer.ending is None:
                await self.write_eof()
                return None
        assert answer.ending is not None
        await _end(transport, answer.ending)
        # aiohttp takes a ConnectionError from prepare as a client gone: it writes nothing more, closes.
        raise ConnectionResetError("the connection was ended by a toxic")

    async def _chunks(self) -> AsyncIterator[bytes]:
        async def whole() -> AsyncIterator[bytes]:
            if self._body_bytes:
                yield self._body_bytes

        chunks = whole()
        values = self._toxics.values
        for toxic in self._fired:
            chunks = toxic.pipe(chunks, self._answer, values, self._toxics.rngs[toxic.name])
        async for chunk in chunks:
            if chunk:
                yield chunk

    def _head(self, request: web.BaseRequest) -> bytes:
        """Status line and headers of a body that ends when the connection does (no length, no chunks)."""
        headers = _without(self.headers, hdrs.CONNECTION)
        headers[hdrs.CONNECTION] = "close"
        headers.setdefault(hdrs.DATE, formatdate(usegmt=True))
        headers.setdefault(hdrs.SERVER, SERVER_SOFTWARE)
        version = request.version
        lines = [f"HTTP/{version.major}.{version.minor} {self.status} {self.reason}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _hold(transport: asyncio.BaseTransport, seconds: float) -> None:
    """Wait `seconds`, or until the client closes its end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not transport.is_closing():
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(0.1, left))


async def _flushed(transport: asyncio.WriteTransport) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FLUSH_WAIT_S
    while transport.get_write_buffer_size() and not transport.is_closing() and loop.time() < deadline:
        await asyncio.sleep(0.005)


async def _end(transport: asyncio.Transport, ending: Ending) -> None:
    if ending.reset:
        await _flushed(transport)   # a reset drops what the kernel has not sent: let the first half go first
    await _hold(transport, ending.after_s)
    if transport.is_closing():
        return
    if ending.reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:   # linger on, timeout 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    else:
        transport.close()
