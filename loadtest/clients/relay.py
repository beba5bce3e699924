"""The aggregating relay, called the way the seed's client calls it."""

from __future__ import annotations

from typing import Any

from .base import ApiClient, Attempt, error_text, header_cost, retry_after, short_of_images


class RelayClient(ApiClient):
    api = "relay"
    max_images_per_request = 10     # the relay's n

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        payload: dict[str, Any] = {"prompt": prompt, "model": self.target.model}
        if self.client.size:        # OpenAI's size, which the relay takes in place of width and height
            payload["size"] = self.client.size
        else:
            payload["width"], payload["height"] = self.client.width, self.client.height
        if self.client.quality:
            payload["quality"] = self.client.quality
        if n > 1:
            payload["n"] = n
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
            return Attempt(200, True, cost_usd=header_cost(resp), failover="x-relay-failover" in (resp.headers or {}),
                           length=len(resp.content or b""), images=images)
        return Attempt(resp.status_code, False, error_text(resp, body), retry_after(resp))
