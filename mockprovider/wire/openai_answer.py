"""The bodies the OpenAI Images API answers with: an `ImagesResponse`, and the events of a stream.

Shapes follow openai-python's `types/images_response.py`, `image_gen_partial_image_event.py`,
`image_gen_completed_event.py` and their `image_edit_*` twins, so the SDK's own types parse them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from typing import Any

from aiohttp import web
from PIL import Image

from ..images import Base, ImageStore, digest_for
from ..provider import Provider
from .openai_models import ModelRules, usage
from .openai_params import ImageRequest

PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}


def reencoded_b64(png: bytes, output_format: str, compression: int | None) -> str:
    """The mock's PNG re-encoded with Pillow (JPEG, WebP), `output_compression` read as the encoder's
    quality (100 when not given, as the API defaults). Not kept: every answer's images have digests
    of their own. Run in a worker thread: decoding and encoding megapixels would hold the event loop."""
    with Image.open(io.BytesIO(png)) as im:
        out = io.BytesIO()
        im.convert("RGB").save(out, PIL_FORMATS[output_format], quality=100 if compression is None else compression)
    return base64.b64encode(out.getvalue()).decode()


class Answer:
    """What one successful request answers: its images, usage and echoed settings.

    Its images are the size asked (`req.width` x `req.height`, ImageStore sizes their bytes by the
    provider's settings); `ready()` makes sure their shared bytes exist before any body is made."""

    def __init__(self, req: ImageRequest, rules: ModelRules, *, salt: str, images: ImageStore,
                 provider: Provider, request: web.Request, image_tokens: int = 0, edit: bool = False) -> None:
        self.req = req
        self.rules = rules
        self.salt = salt
        self.images = images
        self.provider = provider
        self.request = request
        self.image_tokens = image_tokens
        self.event_prefix = "image_edit" if edit else "image_generation"
        self.created = int(time.time())
        self._base: Base | None = None

    async def ready(self) -> None:
        """The images' shared bytes, from the store's cache or built off the event loop."""
        if self._base is None and (self.req.response_format != "url" or self.req.stream):
            r, images = self.req, self.images
            nbytes = images.nbytes(self.provider, r.width, r.height)
            self._base = images.base_now(r.width, r.height, nbytes) or await images.base(r.width, r.height, nbytes)

    def _digest(self, i: int, partial: int | None = None) -> str:
        seed = f"{self.salt}:{i}" if partial is None else f"{self.salt}:{i}:partial:{partial}"
        return digest_for(self.req.prompt, seed)

    async def _b64(self, digest: str) -> str:
        await self.ready()
        assert self._base is not None
        r = self.req
        if r.output_format not in PIL_FORMATS:
            return self._base.b64(digest).decode("ascii")
        return await asyncio.to_thread(reencoded_b64, self._base.png(digest), r.output_format, r.output_compression)

    def usage(self, n: int, *, details: bool = True) -> dict[str, Any]:
        r = self.req
        return usage(r.prompt, r.rendered_quality, r.width, r.height, n, self.image_tokens, details=details)

    async def body(self) -> str:
        """The whole answer, an `ImagesResponse`."""
        r = self.req
        data: list[dict[str, Any]] = []
        for i in range(r.n):
            digest = self._digest(i)
            item: dict[str, Any] = {}
            if r.response_format == "url":
                item["url"] = self.images.url(self.request, self.provider, digest, r.width, r.height)
            else:
                item["b64_json"] = await self._b64(digest)
            if self.rules.revised_prompt:
                item["revised_prompt"] = r.prompt
            data.append(item)
        doc: dict[str, Any] = {"created": self.created, "data": data}
        if self.rules.gpt_image:
            doc.update(background=r.rendered_background, output_format=r.output_format,
                       quality=r.rendered_quality, size=r.rendered_size, usage=self.usage(r.n))
        if r.safety_identifier:
            doc["safety_identifier"] = r.safety_identifier
        return json.dumps(doc)

    async def _event(self, kind: str, i: int, partial: int | None = None) -> dict[str, Any]:
        r = self.req
        return {"type": f"{self.event_prefix}.{kind}", "b64_json": await self._b64(self._digest(i, partial)),
                "background": r.rendered_background, "created_at": int(time.time()),
                "output_format": r.output_format, "quality": r.rendered_quality, "size": r.rendered_size}

    async def partial_event(self, i: int, index: int) -> bytes:
        event = await self._event("partial_image", i, index)
        event["partial_image_index"] = index
        return sse(event["type"], event)

    async def completed_event(self, i: int) -> bytes:
        event = await self._event("completed", i)
        event["usage"] = self.usage(1, details=False)
        if self.req.safety_identifier:
            event["safety_identifier"] = self.req.safety_identifier
        return sse(event["type"], event)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def error_event(error: dict[str, Any]) -> bytes:
    """A failure after the stream began: the SDK raises an APIError carrying `error`."""
    return sse("error", {"type": "error", "error": error})
