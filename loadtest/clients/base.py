"""What every client shares: one HTTP attempt's outcome, a generation's, and the retry loop.

The session given in is geventhttpclient's (Locust's FastHttpSession): `post`/`get` answer a
response whose `status_code` is 0 when the transport failed (its `error` says why).
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.pool import Pool

from ..scenario import Client, Target

# Every attempt carries an id the simulated providers record (x-request-id), so the gate can
# match what the client saw with what the provider did, request by request.
_PROCESS_TAG = f"lt{os.getpid():x}"
_generations = itertools.count(1)


def generation_id() -> str:
    return f"{_PROCESS_TAG}-{next(_generations)}"


@dataclass
class Attempt:
    """One HTTP exchange."""
    status: int | str     # HTTP status, or "timeout" / "connection_error" / "invalid_response" / "empty_success"
    ok: bool
    error: str | None = None
    retry_after_s: float | None = None
    cost_usd: float = 0.0
    failover: bool = False
    length: int = 0
    images: int = 0       # images the answer carried
    first_image_at: float | None = None   # streamed: perf_counter() when the first image (partial or whole) arrived


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
    request_id: str
    images: int
    first_image_at: float | None = None   # streamed: perf_counter() when its first image arrived


@dataclass(frozen=True)
class Share:
    """One request of a batch sent the provider's own way: what it asks for, and the images it adds."""
    n: int          # images asked of the request (n, sampleCount); a Midjourney IMAGINE asks for one grid
    images: int     # images of the batch it delivers


def transport_error(resp: Any) -> Attempt | None:
    if resp.status_code:
        return None
    err = getattr(resp, "error", None)
    name = type(err).__name__.lower()
    kind = "timeout" if "timeout" in name or "timed out" in str(err).lower() else "connection_error"
    return Attempt(kind, False, f"{kind}: {err!r}")


def retry_after(resp: Any) -> float | None:
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


def json_body(resp: Any) -> dict[str, Any] | None:
    try:
        body = json.loads(resp.content)
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def error_text(resp: Any, body: dict[str, Any] | None) -> str:
    if body and isinstance(body.get("error"), dict):
        e = body["error"]
        return f"HTTP {resp.status_code} {e.get('code') or e.get('status') or ''}: {e.get('message', '')}".strip()
    return f"HTTP {resp.status_code}"


def header_cost(resp: Any) -> float:
    try:
        return float((resp.headers or {}).get("x-cost-usd", 0) or 0)
    except ValueError:
        return 0.0


def short_of_images(asked: int, got: int) -> Attempt:
    """A 200 that carried fewer images than asked: a failure of its own class, not a success."""
    return Attempt("empty_success", False, f"HTTP 200 with {got} of {asked} images", images=got)


class ApiClient:
    """Base: the retry loop the seed recommends; subclasses make one attempt."""

    api = ""
    # The most images one request may ask for (OpenAI's n, Vertex's sampleCount); a batch sent the native
    # way takes as few requests as that allows.
    max_images_per_request = 1

    def __init__(self, session: Any, target: Target, key: str, client: Client, rng: random.Random) -> None:
        if target.base_url is None:
            raise ValueError(f"target {target.name!r} has no base URL yet (the mock's is filled in when it starts)")
        self.session = session
        self.target = target
        self.base_url: str = target.base_url
        self.key = key
        self.client = client
        self.rng = rng
        self.generations = 0     # generations begun: an edit takes the catalog's photos in turn by it

    @classmethod
    def most_images(cls, target: Target) -> int:
        """The most images one request to the target may ask for."""
        return cls.max_images_per_request

    @classmethod
    def plan(cls, target: Target, images: int) -> list[Share]:
        """A batch of `images` as the provider batches: as few requests as its per-request limit allows."""
        most = max(1, cls.most_images(target))
        full, rest = divmod(images, most)
        return [Share(most, most)] * full + ([Share(rest, rest)] if rest else [])

    def native_plan(self, images: int) -> list[Share]:
        return self.plan(self.target, images)

    @property
    def request_name(self) -> str:
        return self.target.request_name

    def attempt(self, prompt: str, n: int, request_id: str) -> Attempt:
        raise NotImplementedError

    def post(self, url: str, payload: dict[str, Any], headers: dict[str, str]) -> tuple[Any, Any]:
        """(response, parsed body), or (an Attempt for a transport failure, None)."""
        resp = self.session.post(url, json=payload, headers=headers)
        bad = transport_error(resp)
        return (bad, None) if bad else (resp, json_body(resp))

    def generate(self, prompt: str, n: int = 1) -> Generation:
        retry = self.client.retry
        attempts, cost, failover = 0, 0.0, False
        gen = generation_id()
        self.generations += 1
        while True:
            a = self.attempt(prompt, n, f"{gen}.{attempts + 1}")
            attempts += 1
            cost += a.cost_usd
            failover = failover or a.failover
            if a.ok or retry is None or attempts >= retry.max_attempts or a.status not in retry.on:
                return Generation(a.ok, a.status, a.error, attempts, cost, failover, a.length, gen, a.images,
                                  a.first_image_at)
            # The seed's backoff: base * 2**attempt + uniform(0, 1). Retry-After is honoured as the
            # least wait, never as the whole of it: a server that says "20 ms" to a crowd of clients
            # sharing one key would otherwise be hammered by all of them at once.
            wait = min(retry.base_s * 2 ** (attempts - 1) + self.rng.uniform(0, 1), retry.max_backoff_s)
            if retry.honour_retry_after and a.retry_after_s is not None:
                wait = max(wait, a.retry_after_s)
            gevent.sleep(wait)


def run_batch(jobs: Sequence[Callable[[], None]], concurrency: int) -> None:
    """A batch as the seed's client sends it: all at once, a semaphore bounding concurrency."""
    pool = Pool(concurrency)
    for job in jobs:
        pool.spawn(job)
    pool.join()
