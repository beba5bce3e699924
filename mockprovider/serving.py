"""How the server meets its connections: aiohttp's runner, set up so that no client can hold the
server or make it say more than it should.

- Abandoned requests are cancelled: when a client disconnects, its handler is cancelled at once
  (aiohttp's `handler_cancellation`, off by default), so its call leaves the queue or its slot.
- Connections that stop talking are closed: one with no request in progress (new, or kept alive
  between requests) after `idle_timeout_s`; one that has sent part of a request's head but not all
  of it after `header_timeout_s`. The body has its own deadline (wire/body.py). A request being
  answered is never timed out here, however long its answer takes.
- Requests aiohttp refuses before any handler runs (a malformed header, an unknown method, CONNECT)
  get a short fixed JSON answer, and a one-line log naming the kind of fault, never the raw line
  (a malformed `Authorization` line would otherwise put a key in the log and the answer).

This reaches into aiohttp's RequestHandler (its message queue and error hook), which the tests
pin down: tests/test_mock_refusals.py, test_mock_timeouts.py and test_mock_abandoned.py fail if an
aiohttp upgrade changes what is relied on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    ContentLengthError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from .limits import HEADER_TIMEOUT_S, IDLE_TIMEOUT_S, MAX_HEADER_BYTES, MAX_HEADERS, MAX_LINE_BYTES

log = logging.getLogger("mockprovider")

# What a refused request is told: fixed texts, never the bytes it sent. Most specific first.
_FAULTS: tuple[tuple[type[BaseException], str], ...] = (
    (LineTooLong, f"The request line or a header field is longer than {MAX_LINE_BYTES} bytes."),
    (InvalidHeader, "A header line is malformed."),
    (BadHttpMethod, "The HTTP method is not one this server knows."),
    (BadStatusLine, "The request line is malformed."),
    (InvalidURLError, "The request target is malformed."),
    (ContentEncodingError, "The request body could not be decoded (Content-Encoding)."),
    (TransferEncodingError, "The request body's chunked framing is malformed."),
    (ContentLengthError, "The request body is shorter than its Content-Length."),
    (BadHttpMessage, "The request is malformed."),
)
_CONNECT = "CONNECT is not served here: this server is not a proxy."


def _fault_text(exc: BaseException | None) -> str:
    for kind, text in _FAULTS:
        if isinstance(exc, kind):
            return text
    return "The request is malformed."


class _Connection(RequestHandler):
    """One client connection: aiohttp's handler, with a deadline on request heads and safe refusals."""

    __slots__ = ("_header_timeout_s", "_header_timer")

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        RequestHandler.data_received(self, data)
        if self._messages or self._request_in_progress:
            # The head is complete (the usual case: a whole request in one read), or a body is coming.
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            if self._upgraded:
                self._refuse_connect()
        elif self._header_timer is None and data and self._keepalive and not self._close:
            # Part of a request's head, and no more: it has header_timeout_s to arrive whole. (On a
            # connection closing after its answer, this is the rest of a body aiohttp lingers to read.)
            self._header_timer = self._loop.call_later(self._header_timeout_s, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._header_timer = None
        if not self._messages and not self._request_in_progress and not (self._force_close or self._close):
            log.info("closed a connection whose request head did not arrive within %g s", self._header_timeout_s)
            self.force_close()

    def _refuse_connect(self) -> None:
        # CONNECT asks for a tunnel, which aiohttp would route as a path-less request (a text 404).
        messages = self._messages
        for i, (message, _) in enumerate(messages):
            if isinstance(message, RawRequestMessage) and message.method == "CONNECT":
                messages[i] = (_ErrInfo(status=404, exc=BadHttpMessage(_CONNECT), message=_CONNECT), EMPTY_PAYLOAD)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500 and not isinstance(exc, (BadHttpMessage, RequestPayloadError)):
            log.error("unexpected error answering a request", exc_info=exc)   # a bug of the mock
            text = "The simulated provider hit an internal error."
        elif status == 404:
            log.info("refused a CONNECT request")
            text = _CONNECT
        else:
            text = _fault_text(exc)
            log.info("refused a malformed request (%s)", type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way; the connection is closed instead")
        body = json.dumps({"error": {"code": status, "message": text}})
        response = web.Response(status=status, text=body, content_type="application/json")
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, (BadHttpMessage, RequestPayloadError, ConnectionError)):
            # A body that would not decode, met again as aiohttp drains it after the answer: the client
            # was already told; the connection closes.
            log.debug("closed a connection after a request it could not finish (%s)", type(exc).__name__)
            return
        super().log_exception(*args, **kwargs)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, every_s: float = 10.0) -> None:
    """Out of file descriptors, asyncio's own loop (not uvloop) reports every failed accept with a
    traceback, thousands a second; say it once per `every_s` instead. Idle connections are closed by
    their timeout, which frees descriptors and lets accepting resume."""
    last = [-every_s]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            now = loop.time()
            if now - last[0] >= every_s:
                last[0] = now
                log.warning("cannot accept connections: %s (idle ones close after their timeout)",
                            context.get("exception"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _Server(web.Server):
    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s

    def __call__(self) -> RequestHandler:
        return _Connection(self, loop=self._loop, header_timeout_s=self.header_timeout_s, **self._kwargs)


class MockRunner(web.AppRunner):
    """web.AppRunner serving connections as `_Connection`s, with abandoned handlers cancelled."""

    def __init__(self, app: web.Application, *, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 header_timeout_s: float = HEADER_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(app, handler_cancellation=True, keepalive_timeout=idle_timeout_s,
                         max_line_size=MAX_LINE_BYTES, max_field_size=MAX_HEADER_BYTES, max_headers=MAX_HEADERS,
                         **kwargs)
        self.header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(made.request_handler, request_factory=made.request_factory,
                       handler_cancellation=made.handler_cancellation, loop=made._loop,
                       header_timeout_s=self.header_timeout_s, **made._kwargs)
