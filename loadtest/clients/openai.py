"""OpenAI Images (`/images/generations`), as a team's client calls it."""

from __future__ import annotations

from .base import ApiClient, Attempt, error_text, header_cost, retry_after, short_of_images


class OpenAIImagesClient(ApiClient):
    api = "openai"

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        payload: dict[str, object] = {"model": self.target.model, "prompt": prompt, "n": n,
                                      "size": f"{self.client.width}x{self.client.height}"}
        if not self.target.model.startswith("gpt-image"):
            # The gpt-image models answer base64 only and refuse the parameter, as the real API does.
            payload["response_format"] = "url"
        resp, body = self.post(self.base_url + "/images/generations", payload,
                               {"Authorization": f"Bearer {self.key}", "x-request-id": request_id})
        if isinstance(resp, Attempt):
            return resp
        if resp.status_code == 200:
            if body is None:
                return Attempt("invalid_response", False, "HTTP 200 with a body that is not a JSON object")
            images = sum(1 for d in body.get("data") or [] if isinstance(d, dict) and (d.get("url") or
                                                                                       d.get("b64_json")))
            if images < n:
                return short_of_images(n, images)
            return Attempt(200, True, cost_usd=header_cost(resp), length=len(resp.content or b""), images=images)
        return Attempt(resp.status_code, False, error_text(resp, body), retry_after(resp))
