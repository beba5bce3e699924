"""Vertex AI Imagen (`:predict`), as a team's client calls it."""

from __future__ import annotations

from .base import ApiClient, Attempt, error_text, header_cost

# Imagen's sampleCount is 1 to 4: a batch of ten, sent the native way, is three requests (4, 4, 2).
MAX_SAMPLES = 4

VERTEX_PROJECT = "loadtest"
VERTEX_LOCATION = "us-central1"


class VertexImagenClient(ApiClient):
    api = "vertex"
    max_images_per_request = MAX_SAMPLES

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        path = (f"/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/"
                f"{self.target.model}:predict")
        parameters: dict[str, object] = {"sampleCount": n}
        if self.client.aspect_ratio:
            parameters["aspectRatio"] = self.client.aspect_ratio
        payload = {"instances": [{"prompt": prompt}], "parameters": parameters}
        resp, body = self.post(self.base_url + path, payload,
                               {"Authorization": f"Bearer {self.key}", "x-request-id": request_id})
        if isinstance(resp, Attempt):
            return resp
        if resp.status_code == 200:
            images = sum(1 for p in (body or {}).get("predictions", []) if isinstance(p, dict) and
                         p.get("bytesBase64Encoded"))
            if images == n:
                return Attempt(200, True, cost_usd=header_cost(resp), length=len(resp.content or b""), images=n)
            # Vertex leaves filtered images out of a 200 instead of failing the call.
            return Attempt("filtered", False, f"{n - images} of {n} images filtered by the safety filter",
                           images=images)
        # Vertex sends no Retry-After: the backoff schedule decides.
        return Attempt(resp.status_code, False, error_text(resp, body))
