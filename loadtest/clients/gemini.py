"""Gemini image models on the Gemini Developer API (`models/{model}:generateContent`), as a team calls them.

The request is what google-genai's `generate_content` sends: `contents` with the user's parts and a
`generationConfig` asking for the IMAGE modality, with `imageConfig` (`aspectRatio`, `imageSize`)
when the scenario sets them. An edit sends the catalog's product photo as an `inlineData` part after
the prompt, as Google's image-editing examples do; its JSON is built once per photo, not per request.
The answer's image is an `inlineData` part of the first candidate; a filtered image comes back as a
200 whose candidate ends `IMAGE_SAFETY` with no content, which is a failure of the generation.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from . import uploads
from .base import ApiClient, Attempt, error_text, header_cost, json_body, retry_after, short_of_images, transport_error


@cache
def _inline_part(photo: uploads.Photo) -> str:
    return json.dumps({"inlineData": {"mimeType": photo.mimetype, "data": photo.b64}})


class GeminiClient(ApiClient):
    api = "gemini"
    max_images_per_request = 1      # candidateCount above 1 is refused for image models

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        c = self.client
        config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        image_config = {k: v for k, v in (("aspectRatio", c.aspect_ratio), ("imageSize", c.image_size)) if v}
        if image_config:
            config["imageConfig"] = image_config
        self.config_json = json.dumps(config)
        self.photos = (uploads.catalog(c.edit.photos, c.edit.width, c.edit.height, c.edit.format)
                       if c.operation == "edit" else ())

    def body(self, prompt: str) -> str:
        parts = json.dumps({"text": prompt})
        if self.photos:
            parts += "," + _inline_part(self.photos[(self.generations - 1) % len(self.photos)])
        return f'{{"contents":[{{"role":"user","parts":[{parts}]}}],"generationConfig":{self.config_json}}}'

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        resp = self.session.post(f"{self.base_url}/models/{self.target.model}:generateContent", data=self.body(prompt),
                                 headers={"x-goog-api-key": self.key, "x-request-id": request_id,
                                          "Content-Type": "application/json"})
        bad = transport_error(resp)
        if bad:
            return bad
        body = json_body(resp)
        if resp.status_code == 200:
            candidates = (body or {}).get("candidates") or []
            first = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
            parts = (first.get("content") or {}).get("parts") or []
            images = sum(1 for p in parts if isinstance(p, dict) and (p.get("inlineData") or {}).get("data"))
            if images:
                return Attempt(200, True, cost_usd=header_cost(resp), length=len(resp.content or b""),
                               images=images)
            if first.get("finishReason") in ("IMAGE_SAFETY", "SAFETY", "PROHIBITED_CONTENT"):
                return Attempt("filtered", False, f"the image was filtered ({first.get('finishReason')})")
            return short_of_images(max(1, n), 0)
        return Attempt(resp.status_code, False, error_text(resp, body), retry_after(resp))
