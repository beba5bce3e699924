"""Server-Sent Events read as they arrive, from a streamed response of Locust's FastHttpSession.

`session.post(..., stream=True)` answers once the headers are in; the body is then read here,
event by event, so a client knows the moment its first partial image arrived (the time to first
image), not when the whole stream ended.

Why not geventhttpclient's own reads: `read(n)` waits until n bytes are in (an event shorter than
n would wait for the next one, seconds later), and `readline()` rescans a line from its start at
every 4 KB received, which is quadratic on the multi-megabyte `data:` line of a real image. So
`chunks()` takes the bytes the response has parsed so far, or waits for the next packet, the way
geventhttpclient's own `readline` does, through the same attributes (`INTERNALS`); where they are
missing (another geventhttpclient), it falls back to `readline`, which is correct but slower, and
`fast_path(resp)` says which one a response gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The attributes of geventhttpclient's HTTPSocketPoolResponse the fast path uses (checked by a test).
INTERNALS = ("_body_buffer", "_sock", "_pool", "message_complete", "feed", "block_size")


class StreamBroken(ConnectionError):
    """The connection closed before the stream's end."""


@dataclass(frozen=True, slots=True)
class Event:
    name: str       # the `event:` field ("message" when absent, as the SSE spec says)
    data: bytes     # the `data:` lines, joined with newlines
    size: int       # bytes the event took on the wire


def raw_response(resp: Any) -> Any:
    """geventhttpclient's response under Locust's FastResponse."""
    return getattr(resp, "_response", None)


def fast_path(resp: Any) -> bool:
    raw = raw_response(resp)
    return raw is not None and all(hasattr(raw, name) for name in INTERNALS)


def close(resp: Any) -> None:
    """Give up a response read only in part: its connection cannot carry another request."""
    raw = raw_response(resp)
    if raw is None:
        return
    sock, pool = getattr(raw, "_sock", None), getattr(raw, "_pool", None)
    if sock is None:
        return
    raw._sock = None
    if hasattr(raw, "_pool"):
        raw._pool = None
    if pool is not None:
        pool.release_socket(sock)   # closes it and frees its place in the pool
    else:
        sock.close()


def close_unless_complete(resp: Any) -> None:
    """After reading: a stream left before its end (an error event, a failure) gives up its connection;
    one read to its end has handed it back to the pool already."""
    raw = raw_response(resp)
    if raw is not None and not getattr(raw, "message_complete", True):
        close(resp)


def chunks(resp: Any) -> Iterator[bytes]:
    """The body as it arrives. Raises StreamBroken if the connection ends before the body does, and
    the socket's own timeout (the client's network timeout) if nothing arrives for that long."""
    raw = raw_response(resp)
    if raw is None:
        if resp.content:
            yield bytes(resp.content)
        return
    if not fast_path(resp):
        while line := raw.readline(b"\n"):
            yield bytes(line)
        return
    buffer = raw._body_buffer
    while True:
        if buffer:
            data = bytes(buffer)
            del buffer[:]
            yield data
            continue
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise StreamBroken("the connection closed before the end of the stream")
        try:
            received = sock.recv(raw.block_size)
        except BaseException:
            close(resp)
            raise
        if not received:
            close(resp)
            raise StreamBroken("the connection closed before the end of the stream")
        raw.feed(received)   # completes the message (and hands the connection back) at its end


def events(source: Iterator[bytes]) -> Iterator[Event]:
    """SSE events from body chunks: blank-line separated (LF or CRLF), `event:` and `data:` fields.
    Linear in the bytes read, however long one event's data is."""
    pending = bytearray()
    scanned = 0
    for chunk in source:
        pending += chunk
        while True:
            end, sep = _boundary(pending, scanned)
            if end < 0:
                # The separator may straddle the next chunk: rescan only the last three bytes.
                scanned = max(0, len(pending) - 3)
                break
            block = bytes(pending[:end])
            del pending[:end + sep]
            scanned = 0
            event = _parse(block, end + sep)
            if event is not None:
                yield event
    if pending.strip():
        event = _parse(bytes(pending), len(pending))
        if event is not None:
            yield event


def _boundary(buf: bytearray, start: int) -> tuple[int, int]:
    lf = buf.find(b"\n\n", start)
    crlf = buf.find(b"\r\n\r\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, 4
    return (lf, 2) if lf >= 0 else (-1, 0)


def _parse(block: bytes, size: int) -> Event | None:
    name = "message"
    data: list[bytes] = []
    for line in block.splitlines():
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            name = value.decode("utf-8", "replace")
        elif field == b"data":
            data.append(value)
    if not data and name == "message":
        return None
    return Event(name, b"\n".join(data), size)
