"""Locust users, one per API: each generates images as a team's client would.

A user reports one Locust request per *generation* (retries and Midjourney polls
inside it), so Locust's statistics, the SLA recorder and the gate all count what
the shop's customer waits for. Under an open-model scenario a user is a VU: it
waits for a scheduled start from the arrival executor, and its latency counts
from that scheduled start, not from when it got round to it.

Keys come from a pool formatted as each API's keys look (what the mock accepts);
against a real target, LOADTEST_API_KEYS (comma separated) gives the team's own.

Used by locustfiles/imagegen.py; a team's own locustfile can subclass them:

    class MyRelay(RelayUser):
        abstract = False
        host = "https://relay.example.com/v1"
        model = "dall-e-4"
"""

from __future__ import annotations

import itertools
import os
import random
import time
from typing import Any

import gevent
from gevent.pool import Pool
from locust import task
from locust.contrib.fasthttp import FastHttpUser
from locust.event import EventHook

from loadtest.scenario import Client, Target

from .apis import APIS, Api, key_for
from .prompts import CatalogPrompts, pools

_SILENT = EventHook()   # the HTTP session's own per-exchange events go nowhere
pools()                 # built at import, not in the middle of the first spawn
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
        run = getattr(environment, "imagegen", None)
        if run is not None:
            self.network_timeout = self.connection_timeout = run.scenario.client.timeout_s
            self.concurrency = max(10, run.scenario.client.batch_concurrency)
        super().__init__(environment)
        self.client.request_event = _SILENT
        self.number = next(_user_numbers) + 100_000 * max(0, getattr(environment.runner, "worker_index", 0))
        if run is not None:
            self.suite = run
            client, target = run.scenario.client, run.target
        else:   # a team's own locustfile: host and class attributes say it all
            self.suite = None
            client = Client()
            target = Target(name=self.host, api=self.api, model=self.model, base_url=self.host.rstrip("/"))
        seed = (run.scenario.mock.seed if run else 0) * 1_000_003 + self.number
        self.rng = random.Random(seed)
        self.prompts = CatalogPrompts(seed, client.use_cases)
        own_keys = [k.strip() for k in os.environ.get("LOADTEST_API_KEYS", "").split(",") if k.strip()]
        key = own_keys[self.number % len(own_keys)] if own_keys else key_for(target.api, self.number, client.keys)
        self.driver: Api = APIS[target.api](self.client, target, key, client, self.rng)
        self.settings = client
        self.target = target

    def wait_time(self) -> float:
        if self.suite is not None and self.suite.arrivals is not None:
            return 0.0   # open model: the arrival executor paces starts
        lo, hi = self.suite.scenario.load.think_time_s if self.suite else (0.0, 0.0)
        return self.rng.uniform(lo, hi) if hi > 0 else 0.0

    @task
    def generate(self) -> None:
        arrivals = self.suite.arrivals if self.suite is not None else None
        if self.settings.batch_size > 1:
            started = self._wait_for_start(arrivals)
            if started is not None:
                self._batch(started)
            return
        use_case, prompt = self.prompts.next()     # the client's own work, before the clock starts
        started = self._wait_for_start(arrivals)
        if started is not None:
            self._one(started, use_case, prompt)

    def _wait_for_start(self, arrivals: Any) -> float | None:
        if arrivals is None:
            return time.perf_counter()
        ticket = arrivals.take()
        if ticket is None:              # the schedule is over: idle until the shape stops the run
            gevent.sleep(1.0)
            return None
        return ticket.scheduled_at      # latency counts from when the request was due

    def _one(self, started: float | None, use_case: str, prompt: str) -> None:
        if started is None:
            started = time.perf_counter()
        result = self.driver.generate(prompt)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.environment.events.request.fire(
            request_type="JOB" if self.target.api == "midjourney" else "POST",
            name=self.driver.request_name, response_time=elapsed_ms, response_length=result.length,
            exception=None if result.ok else GenerationFailed(result.error or str(result.status)),
            context={"target": self.target.name, "status": result.status, "cost_usd": result.cost_usd,
                     "attempts": result.attempts, "failover": result.failover, "use_case": use_case})

    def _batch(self, started: float) -> None:
        """A batch as the seed's client sends it: all at once, a semaphore bounding concurrency."""
        pool = Pool(self.settings.batch_concurrency)
        for _ in range(self.settings.batch_size):
            pool.spawn(self._one, None, *self.prompts.next())   # each image timed from its own start
        pool.join()
        wall_ms = (time.perf_counter() - started) * 1000.0
        # The batch as a whole, for Locust's own table; the SLA recorder counts per-image requests.
        self.environment.events.request.fire(
            request_type="BATCH", name=f"batch of {self.settings.batch_size}", response_time=wall_ms,
            response_length=0, exception=None, context={"target": self.target.name, "batch": True})


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


USER_FOR_API = {"relay": RelayUser, "openai": OpenAIImagesUser, "vertex": VertexImagenUser,
                "midjourney": MidjourneyUser}
