"""Midjourney job API in the midjourney-proxy shape: submit a job, then poll it.

POST /midjourney/mj/submit/imagine answers a task id at once (HTTP 200, outcome in
`code`: 1 submitted, 22 queued, 23 queue full, 24 banned prompt, 4 validation
error, 9 failure); GET /midjourney/mj/task/{id}/fetch shows the job moving
NOT_START -> SUBMITTED -> IN_PROGRESS (progress %) -> SUCCESS | FAILURE.
The job's queueing is the provider's capacity model, so a poll shows exactly
where a job waits.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind, Outcome, Phase
from ..images import digest_for
from .body import read_json_object
from .common import Labels, Wire, WireError, field, log, mask_key, retry_after_headers

SUBMITTED, IN_QUEUE, QUEUE_REJECTED, BANNED_PROMPT, VALIDATION_ERROR, FAILURE, NOT_FOUND = 1, 22, 23, 24, 4, 9, 3
# Each secret is an account (with its own running/queued job limits); see _secret for the shape accepted.
SECRET_RE = re.compile(r"^mj-[A-Za-z0-9_\-.]{4,}\Z")
DEFAULT_MODEL = "midjourney-v7"
TURBO_MODEL = "midjourney-v7-turbo"
RETENTION_S = 600          # finished jobs stay fetchable this long
MAX_JOBS = 100_000         # beyond this many live jobs, submissions are refused
BANNED_WORDS = ("nsfw", "gore")
GRID_PX = 2048             # a job's image: the 2x2 grid of 1024x1024 images (assumed)


@dataclass
class Job:
    id: str
    prompt: str
    model: str
    state: str | None
    submit_ms: int
    call: Call
    task: asyncio.Future[Outcome] | None = None
    outcome: Outcome | None = None
    finished_at: float = 0.0
    image_url: str | None = None
    extra: dict[str, Any] = dc_field(default_factory=dict)


class JobStore:
    def __init__(self) -> None:
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.counter = 0

    def new_id(self) -> str:
        self.counter += 1
        return f"{int(time.time() * 1000)}{self.counter % 1000:03d}"

    def evict(self, now: float) -> None:
        while self.jobs:
            job = next(iter(self.jobs.values()))
            if job.outcome is not None and now - job.finished_at > RETENTION_S:
                self.jobs.popitem(last=False)
            elif len(self.jobs) > MAX_JOBS and job.outcome is not None:
                self.jobs.popitem(last=False)
            else:
                break


class MidjourneyJobs(Wire):
    api = "midjourney"
    prefix = "/midjourney"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/midjourney/mj/submit/imagine", self.guarded(self.imagine)),
                web.get("/midjourney/mj/task/{id}/fetch", self.guarded(self.fetch))]

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        proxy_code = {401: VALIDATION_ERROR, 404: NOT_FOUND, 429: QUEUE_REJECTED}.get(
            status, VALIDATION_ERROR if status < 500 else FAILURE)
        if status == 400 and code not in ("invalid_json", "invalid_body"):
            status = 200  # the proxy answers validation errors with HTTP 200 and code 4
        body = {"code": proxy_code, "description": message, "result": None, "properties": {}}
        return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                            headers=headers)

    def _answer(self, code: int, description: str, result: str | None = None, status: int = 200,
                headers: dict[str, str] | None = None, **properties: Any) -> web.Response:
        body = {"code": code, "description": description, "result": result, "properties": properties}
        return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                            headers=headers)

    def _store(self) -> JobStore:
        extras = self.ctx.extras
        store = extras.get("midjourney")
        if store is None:
            store = extras["midjourney"] = JobStore()
        return store

    def _secret(self, request: web.Request) -> str:
        secret = request.headers.get("mj-api-secret", "").strip()
        if not secret:
            raise WireError(401, "Missing mj-api-secret header.")
        if not SECRET_RE.match(secret):
            raise WireError(401, f"Invalid mj-api-secret {mask_key(secret)}: the simulated proxy accepts secrets "
                                 "shaped like mj-<account> (letters, digits, '_', '-', '.').")
        return secret

    async def imagine(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        secret = self._secret(request)
        ctx = self.ctx
        body = await read_json_object(request, ctx.max_body_bytes)
        prompt = field(body, "prompt", str, required=True)
        if not prompt.strip():
            raise WireError(400, "prompt cannot be empty", param="prompt")
        base64_array = field(body, "base64Array", list, default=[])
        if not all(isinstance(b, str) for b in base64_array):
            raise WireError(400, "base64Array must be a list of base64 strings", param="base64Array")
        field(body, "notifyHook", str)
        state = field(body, "state", str)
        mode = field(body, "mode", str, default="")
        model = field(body, "model", str)
        if model is None:
            model = TURBO_MODEL if (mode.upper() == "TURBO" or "--turbo" in prompt) else DEFAULT_MODEL
        provider = ctx.providers.get(model)
        if provider is None or provider.profile.api != "midjourney":
            served = ", ".join(sorted(ctx.providers.by_api("midjourney")))
            raise WireError(400, f"unknown model {model!r}; available: {served}", param="model")
        labels.provider = labels.model = model
        banned = next((w for w in BANNED_WORDS if w in prompt.lower()), None)
        if banned:
            return self._answer(BANNED_PROMPT, "May contains sensitive words", bannedWord=banned)

        store = self._store()
        loop = asyncio.get_running_loop()
        store.evict(loop.time())
        live = sum(1 for j in store.jobs.values() if j.outcome is None) if len(store.jobs) >= MAX_JOBS else 0
        if live >= MAX_JOBS:
            return self._answer(QUEUE_REJECTED, "Queue is full, please try again later")

        call = Call(model, secret, 1, loop=loop, watch_admission=True)
        task: asyncio.Future[Outcome] = asyncio.ensure_future(provider.serve(call))
        admitted: asyncio.Future[Any] = call.admitted
        await asyncio.wait({task, admitted}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            outcome = task.result()
            if not outcome.ok:
                refused = self._refusal(outcome, secret)
                if refused is not None:
                    return refused
        job = Job(store.new_id(), prompt, model, state, int(time.time() * 1000), call, task)
        job.image_url = ctx.images.url(request, provider, digest_for(prompt, f"{model}:{job.id}"), GRID_PX, GRID_PX)
        job.extra["cost"] = provider.profile.price_for(model)
        task.add_done_callback(functools.partial(self._finished, job))
        if task.done():
            self._finished(job, task)
        store.jobs[job.id] = job
        if call.phase in (Phase.QUEUED, Phase.KEY_QUEUED):
            ahead = provider.capacity.queued
            return self._answer(IN_QUEUE, f"In queue, there are {ahead} tasks ahead", job.id,
                                numberOfQueues=ahead, model=model)
        return self._answer(SUBMITTED, "Submit success", job.id, model=model)

    def _refusal(self, outcome: Outcome, secret: str) -> web.Response | None:
        """A job that ended before it was even admitted answers the submit itself."""
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            wait = outcome.retry_after_s or 1.0
            return self._answer(QUEUE_REJECTED, f"Too many submissions for {mask_key(secret)}; retry in "
                                                f"{wait:.1f}s", status=429, headers=retry_after_headers(wait))
        if kind is Kind.OVERLOADED:
            return self._answer(QUEUE_REJECTED, "Queue is full, please try again later")
        if kind is Kind.CONTENT_POLICY:
            return self._answer(BANNED_PROMPT, "May contains sensitive words", bannedWord="")
        if kind is Kind.OUTAGE:
            return self._answer(FAILURE, "No available account instance")
        return None   # failed while running: the job exists and shows FAILURE

    @staticmethod
    def _finished(job: Job, task: asyncio.Future[Outcome]) -> None:
        if job.outcome is not None:
            return
        if task.cancelled():
            job.outcome = Outcome(Kind.SERVER_ERROR, detail="cancelled")
        elif task.exception() is not None:
            log.error("midjourney job %s failed inside the mock: %r", job.id, task.exception())
            job.outcome = Outcome(Kind.SERVER_ERROR)
        else:
            job.outcome = task.result()
        job.finished_at = asyncio.get_event_loop().time()
        job.task = None

    async def fetch(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        self._secret(request)
        store = self._store()
        job = store.jobs.get(request.match_info["id"])
        if job is None:
            raise WireError(404, "task not found")
        labels.provider = labels.model = job.model
        return web.Response(text=json.dumps(self._view(job)), content_type="application/json")

    @staticmethod
    def _view(job: Job) -> dict[str, Any]:
        call = job.call
        epoch = time.time() - call.loop.time()   # loop clock -> wall clock
        start_ms = int((epoch + call.running_since) * 1000) if call.running_since else None
        finish_ms = int((epoch + job.finished_at) * 1000) if job.outcome is not None else None
        fail_reason = None
        image_url = None
        properties: dict[str, Any] = {"model": job.model}
        if job.outcome is not None:
            if job.outcome.ok:
                status, progress, image_url = "SUCCESS", "100%", job.image_url
                properties["costUsd"] = job.extra["cost"]
            else:
                status, progress = "FAILURE", "0%"
                fail_reason = {Kind.TIMEOUT: "Task timeout", Kind.OVERLOADED: "Queue is full",
                               Kind.OUTAGE: "No available account instance",
                               Kind.CONTENT_POLICY: "Banned prompt"}.get(job.outcome.kind, "Internal error")
        elif call.phase is Phase.RUNNING:
            elapsed = (call.loop.time() - call.running_since) * 1000
            done = int(100 * elapsed / call.service_ms) if call.service_ms > 0 else 0
            status, progress = "IN_PROGRESS", f"{min(99, done)}%"
        elif call.phase is Phase.QUEUED:
            status, progress = "SUBMITTED", "0%"
        else:
            status, progress = "NOT_START", "0%"
        return {"id": job.id, "action": "IMAGINE", "prompt": job.prompt, "promptEn": job.prompt,
                "description": f"/imagine {job.prompt}", "state": job.state, "submitTime": job.submit_ms,
                "startTime": start_ms, "finishTime": finish_ms, "imageUrl": image_url, "status": status,
                "progress": progress, "failReason": fail_reason, "properties": properties, "buttons": []}
