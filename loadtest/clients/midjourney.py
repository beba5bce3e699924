"""Midjourney jobs (midjourney-proxy): submit, then poll; the whole job is one generation."""

from __future__ import annotations

import time

import gevent

from ..scenario import Target
from .base import ApiClient, Attempt, Share, error_text, json_body, retry_after, transport_error

# An IMAGINE answers one 2x2 grid: four images at one imageUrl (midjourney-proxy; GRID_IMAGES on the mock).
GRID_IMAGES = 4

# midjourney-proxy answers with HTTP 200 and an outcome code; these map it onto HTTP meanings
# so retry policies (429, 503, ...) read the same for every API.
_MJ_CODES = {1: 200, 22: 200, 21: 200, 23: 429, 24: 400, 4: 400, 3: 404, 9: 503}


class MidjourneyClient(ApiClient):
    api = "midjourney"

    @classmethod
    def plan(cls, target: Target, images: int) -> list[Share]:
        """Midjourney's own batching is its grid: ten images are three IMAGINE jobs (4 + 4 + 2 of 12)."""
        full, rest = divmod(images, GRID_IMAGES)
        return [Share(1, GRID_IMAGES)] * full + ([Share(1, rest)] if rest else [])

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        headers = {"mj-api-secret": self.key, "x-request-id": request_id}
        resp, body = self.post(self.base_url + "/mj/submit/imagine",
                               {"prompt": prompt, "model": self.target.model}, headers)
        if isinstance(resp, Attempt):
            return resp
        if body is None or "code" not in body:
            return Attempt(resp.status_code if resp.status_code != 200 else "invalid_response", False,
                           error_text(resp, body), retry_after(resp))
        code = body.get("code")
        status = _MJ_CODES.get(code, 500) if resp.status_code == 200 else resp.status_code
        if status != 200:
            return Attempt(status, False, f"submit code {code}: {body.get('description', '')}", retry_after(resp))
        task_id = body.get("result")
        deadline = time.monotonic() + self.client.job_timeout_s
        while time.monotonic() < deadline:
            gevent.sleep(self.client.poll_interval_s)
            poll = self.session.get(f"{self.base_url}/mj/task/{task_id}/fetch", headers=headers)
            bad = transport_error(poll)
            if bad:
                return bad
            job = json_body(poll)
            if poll.status_code != 200 or job is None:
                return Attempt(poll.status_code or "invalid_response", False, f"poll: {error_text(poll, job)}")
            if job.get("status") == "SUCCESS":
                if not job.get("imageUrl"):
                    return Attempt("empty_success", False, "job SUCCESS without an imageUrl")
                cost = float((job.get("properties") or {}).get("costUsd", 0) or 0)
                return Attempt(200, True, cost_usd=cost, length=len(poll.content or b""), images=1)
            if job.get("status") == "FAILURE":
                return Attempt(500, False, f"job failed: {job.get('failReason')}")
        return Attempt("timeout", False, f"job not finished after {self.client.job_timeout_s:g}s")
