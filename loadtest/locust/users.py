"""Locust users, one per API: each generates images as a team's client would.

A user reports one Locust request per *generation* (retries and Midjourney polls inside it),
so Locust's statistics, the SLA recorder and the gate all count what the shop's customer
waits for. The scenario's load model paces the users (think time, or the open model's
scheduled starts, from which latency then counts).

Keys come from a pool formatted as each API's keys look (what the mock accepts); against a
real target, LOADTEST_API_KEYS (comma separated) gives the team's own.

A team's own locustfile can subclass them:

    class MyRelay(RelayUser):
        abstract = False
        host = "https://relay.example.com/v1"
        model = "dall-e-4"
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import time
from dataclasses import replace
from typing import Any

from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.event import EventHook

from ..clients import CLIENTS, ApiClient, Generation
from ..clients.base import run_batch
from ..clients.keys import key_for_user, parse_keys
from ..context import RequestContext
from ..prompts import CatalogPrompts, pools
from ..scenario import Client, Target

_SILENT = EventHook()   # the HTTP session's own per-exchange events go nowhere
pools()                 # read at import, not in the middle of the first spawn
_user_numbers = itertools.count()


class GenerationFailed(Exception):
    """A generation that ended without an image; the message is stable so Locust groups failures."""


class ImageGenUser(FastHttpUser):
    abstract = True
    api = "relay"
    model = "midjourney-v7"
    network_timeout = 30.0
    connection_timeout = 30.0

    def __init__(self, environment: Any) -> None:
        suite = getattr(environment, "loadtest", None)
        if suite is not None:
            self.network_timeout = self.connection_timeout = suite.scenario.client.timeout_s
            self.concurrency = max(10, suite.scenario.client.batch_concurrency)
        super().__init__(environment)
        self.client.request_event = _SILENT
        self.number = next(_user_numbers) + 100_000 * max(0, getattr(environment.runner, "worker_index", 0))
        self.suite = suite
        if suite is not None:
            client, target = suite.scenario.client, suite.target
        else:   # a team's own locustfile: host and class attributes say it all
            if not self.host:
                raise ValueError(f"{type(self).__name__} needs a host (the API's base URL)")
            client = Client()
            target = Target(name=self.host, api=self.api, model=self.model, base_url=self.host.rstrip("/"))
        seed = (suite.scenario.mock.seed if suite else 0) * 1_000_003 + self.number
        self.rng = random.Random(seed)
        self.prompts = CatalogPrompts(seed, client.use_cases)
        key = key_for_user(target.api, self.number, client.keys, parse_keys(os.environ.get("LOADTEST_API_KEYS", "")),
                           on_mock=target.on_mock)
        self.driver: ApiClient = CLIENTS[target.api](self.client, target, key, client, self.rng)
        self.by_model: dict[str, ApiClient] = {target.model: self.driver}   # a trace may ask for other models
        self.key = key
        self.settings = client
        self.target = target

    def _pacer(self) -> Any:
        run = self.suite.current if self.suite is not None else None
        return run.driver if run is not None else None

    def wait_time(self) -> float:
        pacer = self._pacer()
        return pacer.wait_time(self.rng) if pacer is not None else 0.0

    @task
    def generate(self) -> None:
        pacer = self._pacer()
        if self.settings.batch_size > 1:
            started = pacer.next_start() if pacer is not None else time.perf_counter()
            if started is not None:
                self._batch(started)
            return
        use_case, prompt = self.prompts.next()     # the client's own work, before the clock starts
        if pacer is None:
            self._one(time.perf_counter(), use_case, prompt)
            return
        arrival = pacer.next_arrival()
        if arrival is None:
            return
        if arrival.use_case is not None and arrival.use_case != use_case:   # a trace says what it was for
            use_case, prompt = arrival.use_case, self.prompts.for_case(arrival.use_case)
        self._one(arrival.scheduled_at, use_case, prompt, api=self._client_for(arrival.model))

    def _client_for(self, model: str | None) -> ApiClient:
        if model is None:
            return self.driver
        client = self.by_model.get(model)
        if client is None:
            client = self.by_model[model] = CLIENTS[self.target.api](
                self.client, replace(self.target, model=model), self.key, self.settings, self.rng)
        return client

    def _one(self, started: float | None, use_case: str, prompt: str, n: int = 1, images: int | None = None,
             api: ApiClient | None = None) -> None:
        """One generation of n images; `images`: how many of them count (a Midjourney grid's share of a batch)."""
        if started is None:
            started = time.perf_counter()
        api = api or self.driver
        result = api.generate(prompt, n)
        if images is not None and result.ok:
            result.images = images
        self._report(result, (time.perf_counter() - started) * 1000.0, use_case, started, api.request_name)

    def _report(self, result: Generation, elapsed_ms: float, use_case: str, started: float | None = None,
                name: str | None = None) -> None:
        first_ms = None
        if result.first_image_at is not None and started is not None:
            first_ms = max(0.0, (result.first_image_at - started) * 1000.0)
        self.environment.events.request.fire(
            request_type="JOB" if self.target.api == "midjourney" else "POST",
            name=name or self.driver.request_name, response_time=elapsed_ms, response_length=result.length,
            exception=None if result.ok else GenerationFailed(result.error or str(result.status)),
            context=RequestContext(target=self.target.name, status=result.status, cost_usd=result.cost_usd,
                                   attempts=result.attempts, failover=result.failover, use_case=use_case,
                                   request_id=result.request_id, images=result.images, first_image_ms=first_ms))

    def _batch(self, started: float) -> None:
        """A batch all at once: one request per image through a semaphore (the seed's batch_generate), or
        the provider's own batching (n images a request, Vertex's sampleCount, Midjourney's grid)."""
        size = self.settings.batch_size
        if self.settings.batch_mode == "native":
            plan = self.driver.native_plan(size)
            jobs = [functools.partial(self._one, None, *self.prompts.next(), share.n, share.images) for share in plan]
            run_batch(jobs, min(self.settings.batch_concurrency, len(plan)))
        else:
            jobs = [functools.partial(self._one, None, *self.prompts.next()) for _ in range(size)]
            run_batch(jobs, self.settings.batch_concurrency)     # each image timed from its own start
        wall_ms = (time.perf_counter() - started) * 1000.0
        # The batch as a whole, for Locust's own table; the SLA recorder counts per-image requests.
        self.environment.events.request.fire(
            request_type="BATCH", name=f"batch of {size}", response_time=wall_ms, response_length=0,
            exception=None, context=None)


class RelayUser(ImageGenUser):
    abstract = True
    api = "relay"


class OpenAIImagesUser(ImageGenUser):
    abstract = True
    api = "openai"
    model = "dall-e-4"


class VertexImagenUser(ImageGenUser):
    abstract = True
    api = "vertex"
    model = "imagen-4"


class MidjourneyUser(ImageGenUser):
    abstract = True
    api = "midjourney"
    model = "midjourney-v7"
