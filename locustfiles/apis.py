"""How each API is called, as a team's client would: one generation, retries, job polling.

A call here is one *generation* as the e-commerce site experiences it: every HTTP
attempt it took (retries after 429/503, Midjourney's submit and polls) is inside
it, and it is reported to Locust as one request. The HTTP session given in must
not report its own requests (see users.py).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import gevent

from loadtest.scenario import Client, Target

VERTEX_PROJECT = "loadtest"
VERTEX_LOCATION = "us-central1"


@dataclass
class Attempt:
    """One HTTP exchange."""
    status: int | str             # HTTP status, or "timeout" / "connection_error" / "invalid_response"
    ok: bool
    error: str | None = None
    retry_after_s: float | None = None
    cost_usd: float = 0.0
    failover: bool = False
    length: int = 0


@dataclass
class Generation:
    """What one generation came to, after retries."""
    ok: bool
    status: int | str
    error: str | None
    attempts: int
    cost_usd: float
    failover: bool
    length: int


def _transport_error(resp: Any) -> Attempt | None:
    if resp.status_code:
        return None
    err = getattr(resp, "error", None)
    name = type(err).__name__.lower()
    kind = "timeout" if "timeout" in name or "timed out" in str(err).lower() else "connection_error"
    return Attempt(kind, False, f"{kind}: {err!r}")


def _retry_after(resp: Any) -> float | None:
    headers = resp.headers or {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    sec = headers.get("retry-after")
    if sec:
        try:
            return float(sec)
        except ValueError:
            return None
    return None


def _json(resp: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(resp.content)
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _error_text(resp: Any, body: dict[str, Any] | None) -> str:
    if body and isinstance(body.get("error"), dict):
        e = body["error"]
        return f"HTTP {resp.status_code} {e.get('code') or e.get('status') or ''}: {e.get('message', '')}".strip()
    return f"HTTP {resp.status_code}"


def _cost(resp: Any) -> float:
    try:
        return float((resp.headers or {}).get("x-cost-usd", 0) or 0)
    except ValueError:
        return 0.0


class Api:
    """Base: the retry loop the seed recommends; subclasses make one attempt."""

    name = ""

    def __init__(self, session: Any, target: Target, key: str, client: Client, rng: random.Random) -> None:
        self.session = session
        self.target = target
        self.key = key
        self.client = client
        self.rng = rng

    @property
    def request_name(self) -> str:
        return f"{self.name} {self.target.model}"

    def attempt(self, prompt: str, n: int) -> Attempt:
        raise NotImplementedError

    def _post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> tuple[Any, Any]:
        """(response, parsed body), or (an Attempt for a transport failure, None)."""
        resp = self.session.post(url, json=payload, headers=headers)
        bad = _transport_error(resp)
        return (bad, None) if bad else (resp, _json(resp))

    def generate(self, prompt: str, n: int = 1) -> Generation:
        retry = self.client.retry
        attempts, cost, failover = 0, 0.0, False
        while True:
            a = self.attempt(prompt, n)
            attempts += 1
            cost += a.cost_usd
            failover = failover or a.failover
            if a.ok or retry is None or attempts >= retry.max_attempts or a.status not in retry.on:
                return Generation(a.ok, a.status, a.error, attempts, cost, failover, a.length)
            # The seed's backoff: base * 2**attempt + uniform(0, 1). Retry-After is honoured as the
            # least wait, never as the whole of it: a server that says "20 ms" to a crowd of clients
            # sharing one key would otherwise be hammered by all of them at once.
            wait = min(retry.base_s * 2 ** (attempts - 1) + self.rng.uniform(0, 1), retry.max_backoff_s)
            if retry.honour_retry_after and a.retry_after_s is not None:
                wait = max(wait, a.retry_after_s)
            gevent.sleep(wait)


class RelayApi(Api):
    """The relay, called the way the seed's client calls it."""

    name = "relay"

    def attempt(self, prompt: str, n: int) -> Attempt:
        payload: dict[str, Any] = {"prompt": prompt, "model": self.target.model,
                                   "width": self.client.width, "height": self.client.height}
        if n > 1:
            payload["n"] = n
        resp, body = self._post(self.target.base_url + "/images/generations", payload,
                                {"Authorization": f"Bearer {self.key}"})
        if isinstance(resp, Attempt):
            return resp
        if resp.status_code == 200 and body and body.get("data") and body["data"][0].get("url"):
            return Attempt(200, True, cost_usd=_cost(resp), failover="x-relay-failover" in (resp.headers or {}),
                           length=len(resp.content or b""))
        if resp.status_code == 200:
            return Attempt("invalid_response", False, "HTTP 200 without data[0].url")
        return Attempt(resp.status_code, False, _error_text(resp, body), _retry_after(resp))


class OpenAIImagesApi(Api):
    name = "openai"

    def attempt(self, prompt: str, n: int) -> Attempt:
        payload = {"model": self.target.model, "prompt": prompt, "n": n,
                   "size": f"{self.client.width}x{self.client.height}", "response_format": "url"}
        resp, body = self._post(self.target.base_url + "/images/generations", payload,
                                {"Authorization": f"Bearer {self.key}"})
        if isinstance(resp, Attempt):
            return resp
        if resp.status_code == 200 and body and len(body.get("data") or []) == n:
            return Attempt(200, True, cost_usd=_cost(resp), length=len(resp.content or b""))
        if resp.status_code == 200:
            return Attempt("invalid_response", False, f"HTTP 200 without {n} images")
        return Attempt(resp.status_code, False, _error_text(resp, body), _retry_after(resp))


class VertexImagenApi(Api):
    name = "vertex"

    def attempt(self, prompt: str, n: int) -> Attempt:
        path = (f"/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/"
                f"{self.target.model}:predict")
        payload = {"instances": [{"prompt": prompt}], "parameters": {"sampleCount": n}}
        resp, body = self._post(self.target.base_url + path, payload, {"Authorization": f"Bearer {self.key}"})
        if isinstance(resp, Attempt):
            return resp
        if resp.status_code == 200:
            images = [p for p in (body or {}).get("predictions", []) if p.get("bytesBase64Encoded")]
            if len(images) == n:
                return Attempt(200, True, cost_usd=_cost(resp), length=len(resp.content or b""))
            # Vertex leaves filtered images out of a 200 instead of failing the call.
            return Attempt("filtered", False, f"{n - len(images)} of {n} images filtered by the safety filter")
        # Vertex sends no Retry-After: the backoff schedule decides.
        return Attempt(resp.status_code, False, _error_text(resp, body))


# midjourney-proxy answers with HTTP 200 and an outcome code; these map it onto HTTP meanings
# so retry policies (429, 503, ...) read the same for every API.
_MJ_CODES = {1: 200, 22: 200, 21: 200, 23: 429, 24: 400, 4: 400, 3: 404, 9: 503}


class MidjourneyApi(Api):
    """Submit a job, then poll it: the whole job is one generation; the polls are not requests."""

    name = "midjourney"

    def attempt(self, prompt: str, n: int) -> Attempt:
        headers = {"mj-api-secret": self.key}
        resp, body = self._post(self.target.base_url + "/mj/submit/imagine",
                                {"prompt": prompt, "model": self.target.model}, headers)
        if isinstance(resp, Attempt):
            return resp
        if body is None or "code" not in body:
            return Attempt(resp.status_code if resp.status_code != 200 else "invalid_response", False,
                           _error_text(resp, body), _retry_after(resp))
        code = body.get("code")
        status = _MJ_CODES.get(code, 500) if resp.status_code == 200 else resp.status_code
        if status != 200:
            return Attempt(status, False, f"submit code {code}: {body.get('description', '')}", _retry_after(resp))
        task_id = body.get("result")
        deadline = time.monotonic() + self.client.job_timeout_s
        while time.monotonic() < deadline:
            gevent.sleep(self.client.poll_interval_s)
            poll = self.session.get(f"{self.target.base_url}/mj/task/{task_id}/fetch", headers=headers)
            bad = _transport_error(poll)
            if bad:
                return bad
            job = _json(poll)
            if poll.status_code != 200 or job is None:
                return Attempt(poll.status_code or "invalid_response", False, f"poll: {_error_text(poll, job)}")
            if job.get("status") == "SUCCESS":
                cost = float((job.get("properties") or {}).get("costUsd", 0) or 0)
                return Attempt(200, True, cost_usd=cost, length=len(poll.content or b""))
            if job.get("status") == "FAILURE":
                return Attempt(500, False, f"job failed: {job.get('failReason')}")
        return Attempt("timeout", False, f"job not finished after {self.client.job_timeout_s:g}s")


APIS: dict[str, type[Api]] = {"relay": RelayApi, "openai": OpenAIImagesApi, "vertex": VertexImagenApi,
                              "midjourney": MidjourneyApi}

KEY_FORMATS = {"relay": "hs_loadtest_{:05d}", "openai": "sk-loadtest-{:05d}",
               "vertex": "ya29.loadtest-{:05d}", "midjourney": "mj-loadtest-{:05d}"}


def key_for(api: str, index: int, pool: int) -> str:
    """A key from the pool, formatted the way the API's keys look."""
    return KEY_FORMATS[api].format(index % pool)
