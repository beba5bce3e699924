"""Gemini image models on the Gemini Developer API (`models/{model}:generateContent`), as a team calls them.

The answer's image is an `inlineData` part of the first candidate; a filtered image comes back as a
200 whose candidate ends `IMAGE_SAFETY` with no content, which is a failure of the generation.
"""

from __future__ import annotations

from .base import ApiClient, Attempt, error_text, header_cost, retry_after, short_of_images


class GeminiClient(ApiClient):
    api = "gemini"

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        payload = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
                   "generationConfig": {"responseModalities": ["IMAGE"]}}
        resp, body = self.post(f"{self.base_url}/models/{self.target.model}:generateContent", payload,
                               {"x-goog-api-key": self.key, "x-request-id": request_id})
        if isinstance(resp, Attempt):
            return resp
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
