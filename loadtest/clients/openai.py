"""OpenAI Images (`/images/generations`, `/images/edits`), as a team's client calls them today.

The request carries what the scenario's `[client]` asks for in OpenAI's own names (`quality`,
`size`, `output_format`, `output_compression`, `background`, `moderation`, `input_fidelity`), as
the official SDK sends them. gpt-image models answer base64 only and refuse `response_format`; the
DALL-E models are asked for URLs. With `stream`, the answer is Server-Sent Events read as they
arrive (`sse.py`): `image_generation.partial_image` events, then `image_generation.completed`
(`image_edit.*` for edits), and the moment the first of them arrives is the generation's time to
first image. An edit is multipart: the catalog's product photo as `image` (`image[]` for several),
its mask, and the fields, encoded by urllib3.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .. import apioptions
from ..scenario import Target
from . import sse, uploads
from .base import ApiClient, Attempt, error_text, header_cost, json_body, retry_after, short_of_images, transport_error

# The options sent as they are named in [client] (None: left to the API's default).
FIELDS = ("quality", "output_format", "output_compression", "background", "moderation")
# An error event's code or type -> the HTTP status it would have had, so retry policies read alike.
EVENT_STATUS = {"rate_limit_exceeded": 429, "server_error": 500, "timeout": 504, "service_unavailable": 503}


class OpenAIImagesClient(ApiClient):
    api = "openai"
    max_images_per_request = 10

    @classmethod
    def most_images(cls, target: Target) -> int:
        rules = apioptions.openai_rules(target.model, target.family or None)
        return rules.max_n if rules is not None else cls.max_images_per_request

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rules = apioptions.openai_rules(self.target.model, self.target.family or None)
        self.gpt_image = rules.gpt_image if rules is not None else self.target.model.startswith("gpt-image")
        c = self.client
        self.photos = (uploads.catalog(c.edit.photos, c.edit.width, c.edit.height, c.edit.format)
                       if c.operation == "edit" else ())

    def _fields(self, prompt: str, n: int) -> dict[str, Any]:
        c = self.client
        body: dict[str, Any] = {"model": self.target.model, "prompt": prompt, "n": n, "size": c.size_text}
        for name in FIELDS:
            value = getattr(c, name)
            if value is not None:
                body[name] = value
        if c.operation == "edit" and c.input_fidelity is not None:
            body["input_fidelity"] = c.input_fidelity
        if not self.gpt_image:
            # The gpt-image models answer base64 only and refuse the parameter, as the real API does.
            body["response_format"] = "url"
        if c.stream:
            body["stream"] = True
            if c.partial_images is not None:
                body["partial_images"] = c.partial_images
        return body

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        headers = {"Authorization": f"Bearer {self.key}", "x-request-id": request_id}
        fields = self._fields(prompt, n)
        data: bytes | str
        if self.client.operation == "edit":
            url = self.base_url + "/images/edits"
            data, ctype = self._multipart(fields)
            headers["Content-Type"] = ctype
        else:
            url = self.base_url + "/images/generations"
            data = json.dumps(fields)
            headers["Content-Type"] = "application/json"
        if self.client.stream:
            return self._stream(url, data, headers, n)
        resp = self.session.post(url, data=data, headers=headers)
        bad = transport_error(resp)
        if bad:
            return bad
        body = json_body(resp)
        if resp.status_code == 200:
            if body is None:
                return Attempt("invalid_response", False, "HTTP 200 with a body that is not a JSON object")
            images = sum(1 for d in body.get("data") or [] if isinstance(d, dict) and (d.get("url") or
                                                                                       d.get("b64_json")))
            if images < n:
                return short_of_images(n, images)
            return Attempt(200, True, cost_usd=header_cost(resp), length=len(resp.content or b""), images=images)
        return Attempt(resp.status_code, False, error_text(resp, body), retry_after(resp))

    def _multipart(self, fields: dict[str, Any]) -> tuple[bytes, str]:
        """The edit's form: its text fields, then the product photo(s) and the mask, as the SDK sends them."""
        # Imported here, not at the top: urllib3 imports ssl, and a process that imports the clients before
        # gevent patches ssl (a test session, `loadtest compare`) would then break Locust's SSL contexts.
        from urllib3 import encode_multipart_formdata
        c = self.client
        count = len(self.photos)
        chosen = [self.photos[(self.generations - 1 + k) % count] for k in range(c.edit.images)]
        parts: list[tuple[str, Any]] = [(name, str(value).lower() if isinstance(value, bool) else str(value))
                                        for name, value in fields.items()]
        image_field = "image" if len(chosen) == 1 else "image[]"
        parts += [(image_field, (p.filename, p.data, p.mimetype)) for p in chosen]
        if c.edit.mask:
            parts.append(("mask", (f"{chosen[0].name}-mask.png", chosen[0].mask, "image/png")))
        return encode_multipart_formdata(parts)

    def _stream(self, url: str, data: bytes | str, headers: dict[str, str], n: int) -> Attempt:
        # identity: the events are read off the wire as they come, not through a decompressor
        resp = self.session.post(url, data=data, headers={**headers, "Accept-Encoding": "identity",
                                                          "Accept": "text/event-stream"}, stream=True)
        bad = transport_error(resp)
        if bad:
            return bad
        if resp.status_code != 200:   # a refusal comes before the stream, as an ordinary error
            return Attempt(resp.status_code, False, error_text(resp, json_body(resp)), retry_after(resp))
        ctype = (resp.headers or {}).get("content-type", "")
        if not ctype.startswith("text/event-stream"):
            sse.close(resp)
            return Attempt("invalid_response", False, f"asked to stream, the answer was {ctype or 'untyped'}")
        first_at: float | None = None
        completed = length = 0
        try:
            for event in sse.events(sse.chunks(resp)):
                length += event.size
                kind = _kind(event)
                if kind == "error":
                    failed = _error_event(event)
                    failed.first_image_at = first_at
                    return failed
                if kind in ("partial_image", "completed"):
                    if first_at is None:
                        first_at = time.perf_counter()
                    if kind == "completed" and _has_image(event.data):
                        completed += 1
        except TimeoutError as exc:
            return Attempt("timeout", False, f"timeout: the stream stalled ({exc!r})", first_image_at=first_at)
        except sse.StreamBroken as exc:
            return Attempt("connection_error", False, f"connection_error: {exc}", first_image_at=first_at)
        except (OSError, ValueError) as exc:   # a reset, or bytes the HTTP parser cannot read
            return Attempt("connection_error", False, f"connection_error: {exc!r}", first_image_at=first_at)
        finally:
            sse.close_unless_complete(resp)
        if completed < n:
            attempt = short_of_images(n, completed)
            attempt.error = f"the stream ended after {completed} of {n} images"
            attempt.first_image_at = first_at
            return attempt
        return Attempt(200, True, cost_usd=header_cost(resp), length=length, images=completed,
                       first_image_at=first_at)


def _has_image(data: bytes) -> bool:
    """Whether an event's JSON carries a non-empty b64_json, without parsing megabytes of it."""
    at = data.find(b'"b64_json"')
    if at < 0:
        return False
    head = data[at + 10:at + 24].lstrip(b" \t:")
    return head.startswith(b'"') and not head.startswith(b'""')


def _kind(event: sse.Event) -> str:
    """partial_image, completed or error, from the event's name (or its JSON type when it has none)."""
    name = event.name
    if name == "message":
        try:
            name = str(json.loads(event.data).get("type", ""))
        except (ValueError, AttributeError):
            return ""
    return name.rpartition(".")[2]


def _error_event(event: sse.Event) -> Attempt:
    try:
        error = json.loads(event.data).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code") or error.get("type") or ""
    status = EVENT_STATUS.get(str(code), 500)
    return Attempt(status, False, f"stream error event {code}: {error.get('message', '')}".strip())
