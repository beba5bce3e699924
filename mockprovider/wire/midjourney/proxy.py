"""The simulated proxy's routes: submit tasks, act on their buttons, fetch them, list them.

Every submit answers at once (HTTP 200, the outcome in `code`: 1 submitted, 21 exists, 22 queued,
23 queue full, 24 banned prompt, 3 not found, 4 validation error, 9 failure) with a task id; the
task then moves NOT_START -> SUBMITTED -> IN_PROGRESS -> SUCCESS | FAILURE through the provider's
capacity model (its slots, and per account 3 running and 10 queued), so a fetch, and each callback,
shows exactly where it waits.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import re
import time
from typing import Any

import orjson
from aiohttp import web

from ...behaviours import Kind, Outcome, Phase
from ...behaviours.base import tracked_key
from ...context import MockContext
from ...images import digest_for
from ...provider import Provider
from ...record import JobEntry
from ..body import read_json_object
from ..common import Labels, Wire, WireError, field, log, mask_key, retry_after_headers
from . import peers
from .actions import (
    GRID_ACTIONS,
    GRID_PX,
    IMAGE_PX,
    REROLL,
    UPSCALE,
    ActionSpec,
    buttons,
    custom_id_for_change,
    is_midjourney_custom_id,
    parse_custom_id,
)
from .collect import MidjourneyCollector
from .notify import Notifier
from .options import MidjourneyOptions
from .store import RUNNING_TASK_BYTES, TASK_OVERHEAD_BYTES, Job, JobCall, JobStore, text_bytes
from .view import PROGRESS_STEPS, status_of, task_view

SUCCESS, NOT_FOUND, VALIDATION_ERROR, FAILURE = 1, 3, 4, 9
EXISTED, IN_QUEUE, QUEUE_REJECTED, BANNED_PROMPT = 21, 22, 23, 24

DEFAULT_MODEL = "midjourney-v7"
TURBO_MODEL = "midjourney-v7-turbo"
BANNED_WORDS = ("nsfw", "gore")

# Discord caps a slash command's text option at 6,000 characters, /imagine's prompt included; the
# proxy passes the prompt on as that option, so a longer one can never run.
MAX_PROMPT_CHARS = 6000
MAX_STATE_CHARS = 4096           # the mock's own bound: `state` is echoed in every view of the task
MAX_IMAGES = 5                   # base64Array: as many as /blend takes
MAX_IMAGE_BYTES = 10 * 1024 * 1024   # each, decoded: Discord's upload limit without Nitro
MAX_LIST_IDS = 1000              # list-by-condition: the mock's own bound on one answer
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,")
_SIMPLE_CHANGE = re.compile(r"\s*(\d+)\s+(?:([UV])([1-4])|(R))\s*\Z", re.IGNORECASE)

QUEUE_FULL = "Queue is full, please try again later"
TASK_GONE = "The related task does not exist or has expired"


def _message_hash(digest: str) -> str:
    """A digest in the uuid form Discord's message hashes (and so the buttons' customIds) have."""
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


class MidjourneyJobs(Wire):
    api = "midjourney"
    prefix = "/midjourney"
    key_header = "mj-api-secret"

    def __init__(self, ctx: MockContext) -> None:
        super().__init__(ctx)
        self.options: MidjourneyOptions = ctx.extras.get("midjourney.options") or MidjourneyOptions()
        o = self.options
        shared = ctx.shared
        self.store = ctx.extras["midjourney"] = JobStore(o.max_tasks, o.max_store_bytes, o.retention_s,
                                                         *((shared.worker, shared.workers) if shared else (0, 1)))
        self.notifier = Notifier(o.notify_hosts)
        ctx.metrics.registry.register(MidjourneyCollector(self.store, self.notifier))

    def routes(self) -> list[web.RouteDef]:
        p = "/midjourney/mj"
        # With several workers, the views a worker gives the others for a list (peers.py).
        internal = [web.post(peers.VIEWS_PATH, self.views_for_peer)] if self.ctx.shared is not None else []
        return [*internal, web.post(f"{p}/submit/imagine", self.guarded(self.imagine)),
                web.post(f"{p}/submit/action", self.guarded(self.action)),
                web.post(f"{p}/submit/change", self.guarded(self.change)),
                web.post(f"{p}/submit/simple-change", self.guarded(self.simple_change)),
                web.get(f"{p}/task/{{id}}/fetch", self.guarded(self.fetch)),
                web.post(f"{p}/task/list-by-condition", self.guarded(self.list_by_condition)),
                web.post(f"{p}/task/list-by-ids", self.guarded(self.list_by_condition))]

    async def close(self, app: web.Application | None = None) -> None:
        await self.notifier.close()

    # answers

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        proxy_code = {401: VALIDATION_ERROR, 404: NOT_FOUND, 429: QUEUE_REJECTED}.get(
            status, VALIDATION_ERROR if status < 500 else FAILURE)
        if status == 400 and code not in ("invalid_json", "invalid_body"):
            status = 200  # the proxy answers validation errors with HTTP 200 and code 4
        return self._answer(proxy_code, message, status=status, headers=headers)

    @staticmethod
    def _answer(code: int, description: str, result: str | None = None, status: int = 200,
                headers: dict[str, str] | None = None, properties: dict[str, Any] | None = None) -> web.Response:
        body = {"code": code, "description": description, "result": result, "properties": properties or {}}
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                            headers=headers)

    # what every submit reads

    def _account(self, request: web.Request) -> str:
        """The account: any non-empty secret, or one of --mj-secrets when the operator listed them."""
        secret = request.headers.get("mj-api-secret", "").strip()
        if not secret:
            raise WireError(401, "Missing mj-api-secret header.")
        allowed = self.options.secrets
        if allowed is not None and secret not in allowed:
            raise WireError(401, f"Invalid mj-api-secret {mask_key(secret)}.")
        return secret

    def _state_and_hook(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        state = field(body, "state", str)
        if state is not None and len(state) > MAX_STATE_CHARS:
            raise WireError(400, f"state is {len(state):,} characters; the limit is {MAX_STATE_CHARS:,}",
                            param="state")
        hook = field(body, "notifyHook", str)
        hook = hook.strip() if hook else None
        if hook:
            why = self.notifier.check(hook)
            if why:
                raise WireError(400, why, param="notifyHook")
        return state, hook or None

    @staticmethod
    def _check_images(body: dict[str, Any]) -> None:
        """base64Array (and the older single `base64`): data URLs, at most MAX_IMAGES of MAX_IMAGE_BYTES.
        They are checked and let go: the simulated proxy keeps no image."""
        images = list(field(body, "base64Array", list, default=[]))
        single = field(body, "base64", str)
        if single and single.strip():
            images.append(single)
        if len(images) > MAX_IMAGES:
            raise WireError(400, f"base64Array has {len(images)} images; the limit is {MAX_IMAGES}",
                            param="base64Array")
        for image in images:
            if not isinstance(image, str):
                raise WireError(400, "base64Array must be a list of base64 strings", param="base64Array")
            head = _DATA_URL.match(image)
            if head is None:
                raise WireError(400, "base64 format error: each image must be a data URL "
                                     "(data:image/png;base64,...)", param="base64Array")
            payload = image[head.end():]
            if len(payload) // 4 * 3 > MAX_IMAGE_BYTES:
                raise WireError(400, f"an image in base64Array is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
                                param="base64Array")
            try:
                binascii.a2b_base64(payload, strict_mode=True)
            except (binascii.Error, ValueError):
                raise WireError(400, "base64 format error: an image in base64Array is not valid base64",
                                param="base64Array") from None

    # routes

    async def imagine(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        owner = self._account(request)
        ctx = self.ctx
        body = await read_json_object(request, ctx.max_body_bytes)
        prompt = field(body, "prompt", str, required=True).strip()
        if not prompt:
            raise WireError(400, "prompt cannot be empty", param="prompt")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise WireError(400, f"prompt is {len(prompt):,} characters; Discord takes at most "
                                 f"{MAX_PROMPT_CHARS:,}", param="prompt")
        self._check_images(body)
        state, hook = self._state_and_hook(body)
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
            return self._answer(BANNED_PROMPT, "May contains sensitive words",
                                properties={"promptEn": prompt, "bannedWord": banned})
        response, _ = await self._submit(request, labels, owner, provider, "IMAGINE", True, 1.0, 1.0, prompt, "", state,
                                         hook)
        return response

    async def action(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        """A button of a finished task, by its customId (the proxy's /submit/action)."""
        owner = self._account(request)
        body = await read_json_object(request, self.ctx.max_body_bytes)
        task_id = field(body, "taskId", (str, int))
        custom_id = field(body, "customId", str)
        task_id = str(task_id).strip() if task_id is not None else ""
        if not task_id or not custom_id or not custom_id.strip():
            raise WireError(400, "taskId and customId are required", param="taskId" if not task_id else "customId")
        custom_id = custom_id.strip()
        state, hook = self._state_and_hook(body)
        target = self.store.get(task_id, owner, asyncio.get_running_loop().time())
        if target is None:
            held = await peers.submit_on(request, labels, body)
            return held or self._answer(NOT_FOUND, TASK_GONE, status=404)
        labels.provider = labels.model = target.model
        if target.outcome is None or not target.outcome.ok:
            return self._answer(VALIDATION_ERROR, "The related task's status is wrong: it has not succeeded")
        parsed = parse_custom_id(custom_id)
        if parsed is None:
            why = ("needs a modal (/mj/submit/modal), which the simulated proxy does not offer"
                   if is_midjourney_custom_id(custom_id) else "is not a Midjourney button")
            return self._answer(VALIDATION_ERROR, f"Unknown action type: customId {custom_id[:100]!r} {why}")
        spec, variant = parsed
        if custom_id not in {b["customId"] for b in buttons(target.grid, target.message_hash)}:
            return self._answer(VALIDATION_ERROR, f"customId {custom_id[:100]!r} is not a button of task {target.id}")
        action = spec.action
        if spec is REROLL:
            action = target.action if target.action in GRID_ACTIONS else "IMAGINE"
        return await self._act(request, labels, owner, target, spec, action, custom_id,
                               f"/up {target.id} {_describe(spec, variant)}", state, hook)

    async def change(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        """U1-U4, V1-V4 or R of a grid by action and index (the proxy's /submit/change)."""
        owner = self._account(request)
        body = await read_json_object(request, self.ctx.max_body_bytes)
        return await self._change(request, labels, owner, body, field(body, "taskId", (str, int)),
                                  field(body, "action", str), field(body, "index", int))

    async def simple_change(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        """The same as /submit/change, written "ID U2", "ID V1" or "ID R"."""
        owner = self._account(request)
        body = await read_json_object(request, self.ctx.max_body_bytes)
        content = field(body, "content", str, default="")
        m = _SIMPLE_CHANGE.match(content[:200])
        if m is None:
            raise WireError(400, "content parameter error: expected 'ID U1'..'ID U4', 'ID V1'..'ID V4' or 'ID R'",
                            param="content")
        task_id, letter, index, _ = m.groups()
        action = "REROLL" if letter is None else ("UPSCALE" if letter.upper() == "U" else "VARIATION")
        return await self._change(request, labels, owner, body, task_id, action, int(index) if index else None)

    async def _change(self, request: web.Request, labels: Labels, owner: str, body: dict[str, Any],
                      task_id: str | int | None, action: str | None, index: int | None) -> web.StreamResponse:
        task_id = str(task_id).strip() if task_id is not None else ""
        if not task_id:
            raise WireError(400, "taskId cannot be empty", param="taskId")
        if action not in ("UPSCALE", "VARIATION", "REROLL"):
            raise WireError(400, "action parameter error: UPSCALE, VARIATION or REROLL", param="action")
        if action != "REROLL" and (index is None or not 1 <= index <= 4):
            raise WireError(400, "index must be 1..4 for UPSCALE and VARIATION", param="index")
        state, hook = self._state_and_hook(body)
        target = self.store.get(task_id, owner, asyncio.get_running_loop().time())
        if target is None:
            held = await peers.submit_on(request, labels, body)
            return held or self._answer(NOT_FOUND, TASK_GONE)
        labels.provider = labels.model = target.model
        if target.outcome is None or not target.outcome.ok:
            return self._answer(VALIDATION_ERROR, "The related task's status is wrong: it has not succeeded")
        if not target.grid:
            return self._answer(VALIDATION_ERROR, f"The related task ({target.action}) does not allow changes")
        custom_id = custom_id_for_change(action, index, target.message_hash)
        parsed = parse_custom_id(custom_id)
        assert parsed is not None
        label = "R" if action == "REROLL" else f"{action[0]}{index}"
        return await self._act(request, labels, owner, target, parsed[0], action, custom_id, f"/up {target.id} {label}",
                               state, hook)

    async def _act(self, request: web.Request, labels: Labels, owner: str, target: Job, spec: ActionSpec, action: str,
                   custom_id: str, description: str, state: str | None, hook: str | None) -> web.StreamResponse:
        if spec is UPSCALE and target.children:
            done = self.store.get(target.children.get(custom_id, ""), owner, asyncio.get_running_loop().time())
            if done is not None:
                status, _ = status_of(done, asyncio.get_running_loop().time())
                return self._answer(EXISTED, "Task already exists", done.id, properties={
                    "status": status, "imageUrl": done.image_url if status == "SUCCESS" else None})
        provider = self.ctx.providers[target.model]
        response, job = await self._submit(request, labels, owner, provider, action, spec.grid, spec.latency, spec.cost,
                                           target.prompt, description, state, hook)
        if job is not None and spec is UPSCALE:
            if target.children is None:
                target.children = {}
            target.children[custom_id] = job.id
        return response

    async def fetch(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        owner = self._account(request)
        job = self.store.get(request.match_info["id"], owner, asyncio.get_running_loop().time())
        if job is None:
            held = await peers.fetch(request, labels)
            # The proxy's fetch returns null for a task it does not hold: HTTP 200 and no body at all.
            return held or web.Response(status=200)
        labels.provider = labels.model = job.model
        if job.entry is not None:
            labels.defer = job.entry.polled   # a poll counts with its job's entry, not as one of its own
        return web.Response(body=orjson.dumps(task_view(job, asyncio.get_running_loop().time())),
                            content_type="application/json")

    async def list_by_condition(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        """POST {"ids": [...]}: the account's own tasks among them, unknown ones left out."""
        owner = self._account(request)
        body = await read_json_object(request, self.ctx.max_body_bytes)
        ids = body.get("ids")
        if ids is None:
            ids = []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise WireError(400, "ids must be an array of task id strings", code="invalid_body", param="ids")
        if len(ids) > MAX_LIST_IDS:
            raise WireError(400, f"ids has {len(ids):,} entries; the limit is {MAX_LIST_IDS:,}",
                            code="invalid_body", param="ids")
        views, missing = self._views(owner, ids)
        if missing and peers.asks_peers(request):
            # Tasks other workers took the submits of: their views, put in the order the ids were asked.
            held = {v.get("id"): v for v in await peers.views(request, owner, missing)}
            if held:
                here = {v["id"]: v for v in views}
                views = [view for task_id in dict.fromkeys(i.strip() for i in ids)
                         if (view := here.get(task_id) or held.get(task_id)) is not None]
        return web.Response(body=orjson.dumps(views), content_type="application/json")

    def _views(self, owner: str, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        """The account's own tasks among the ids, in order and each once; and the ids not held here."""
        now = asyncio.get_running_loop().time()
        seen: set[str] = set()
        views = []
        missing = []
        for task_id in ids:
            task_id = task_id.strip()
            if task_id in seen:
                continue
            seen.add(task_id)
            job = self.store.get(task_id, owner, now)
            if job is not None:
                views.append(task_view(job, now))
            else:
                missing.append(task_id)
        return views, missing

    async def views_for_peer(self, request: web.Request) -> web.Response:
        """VIEWS_PATH, on a worker's internal port only: the views this worker holds of an account's
        ids, for the worker a list reached (peers.views). Not counted: that worker counts the list."""
        if peers.asks_peers(request):   # a client's request, on the public port
            return self.error(404, f"Unknown request URL: {request.method} {request.path}.")
        try:
            body = orjson.loads(await request.read())
            owner, ids = body["owner"], body["ids"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self.error(400, "expected {\"owner\": ..., \"ids\": [...]}", code="invalid_body")
        if not isinstance(owner, str) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self.error(400, "expected {\"owner\": ..., \"ids\": [...]}", code="invalid_body")
        views, _ = self._views(owner, ids[:MAX_LIST_IDS])
        return web.Response(body=orjson.dumps(views), content_type="application/json")

    # the task's life

    async def _submit(self, request: web.Request, labels: Labels, owner: str, provider: Provider, action: str,
                      grid: bool, latency: float, cost: float, prompt: str, description: str, state: str | None,
                      hook: str | None) -> tuple[web.Response, Job | None]:
        ctx, store = self.ctx, self.store
        loop = asyncio.get_running_loop()
        model = provider.name
        task_id = store.new_id()
        digest = digest_for(prompt, f"{model}:{task_id}")
        side = GRID_PX if grid else IMAGE_PX
        image_url = ctx.images.url(request, provider, digest, side, side)
        message_hash = _message_hash(digest)
        size = TASK_OVERHEAD_BYTES + text_bytes(prompt, description, state, hook, owner, image_url, task_id,
                                                message_hash)
        if not store.make_room(size + RUNNING_TASK_BYTES, loop.time()):
            return self._answer(QUEUE_REJECTED, QUEUE_FULL), None
        call = JobCall(model, owner, 1, loop=loop, watch_admission=True)
        serving = provider.serve(call)
        # The generation time was drawn just now, for a grid; the action takes its own share of it.
        call.service_ms *= latency
        task: asyncio.Future[Any] = asyncio.ensure_future(serving)
        admitted: asyncio.Future[Any] = call.admitted
        store.reserve(size + RUNNING_TASK_BYTES)
        try:
            await asyncio.wait({task, admitted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            store.unreserve(size + RUNNING_TASK_BYTES)
        if task.done() and not task.cancelled() and task.exception() is None and not task.result().ok:
            refused = self._refusal(task.result(), owner)
            if refused is not None:
                return refused, None
        job = Job(task_id, owner, action, prompt, model, grid, description, state, hook, int(time.time() * 1000),
                  message_hash, image_url, provider.profile.price_for(model) * cost, size=size)
        store.add(job)
        job.call = call
        job.entry = JobEntry(ctx.record, call)
        labels.defer = job.entry.submitted   # the submit's answer is written with its job's end, as one entry
        call.job, call.on_phase = job, self._phase_changed
        if call.phase is Phase.RUNNING:
            job.start_ms = int((time.time() - (loop.time() - call.running_since)) * 1000)
        task.add_done_callback(functools.partial(self._finished, job))
        if hook:
            self._follow(job)
        if task.done():
            self._finished(job, task)
        if call.phase in (Phase.QUEUED, Phase.KEY_QUEUED) and job.outcome is None:
            # `queued`: the calls waiting in every worker of `--workers N`, this one's own with one worker.
            ahead = provider.capacity.pool.queued - (1 if call.phase is Phase.QUEUED else 0)
            if call.phase is Phase.KEY_QUEUED:
                account = provider.capacity.key_pools.get(tracked_key(owner))
                ahead += account.queued - 1 if account is not None else 0
            return self._answer(IN_QUEUE, f"In queue, there are {ahead} tasks ahead", task_id,
                                properties={"numberOfQueues": ahead, "model": model}), job
        return self._answer(SUCCESS, "Submit success", task_id, properties={"model": model}), job

    def _refusal(self, outcome: Outcome, owner: str) -> web.Response | None:
        """A task that ended before it was even admitted answers the submit itself."""
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            wait = outcome.retry_after_s or 1.0
            return self._answer(QUEUE_REJECTED, f"Too many submissions for {mask_key(owner)}; retry in "
                                                f"{wait:.1f}s", status=429, headers=retry_after_headers(wait))
        if kind is Kind.OVERLOADED:
            return self._answer(QUEUE_REJECTED, QUEUE_FULL)
        if kind is Kind.CONTENT_POLICY:
            return self._answer(BANNED_PROMPT, "May contains sensitive words", properties={"bannedWord": ""})
        if kind is Kind.OUTAGE:
            return self._answer(FAILURE, "No available account instance")
        return None   # failed while running: the task exists and shows FAILURE

    def _phase_changed(self, job: Job, phase: Phase) -> None:
        if phase is Phase.RUNNING:
            job.start_ms = int(time.time() * 1000)
        if job.hook:
            self._follow(job)

    def _finished(self, job: Job, task: asyncio.Future[Outcome]) -> None:
        if job.outcome is not None:
            return
        if task.cancelled():
            job.outcome = Outcome(Kind.SERVER_ERROR, detail="cancelled")
        elif task.exception() is not None:
            log.error("midjourney task %s failed inside the mock: %r", job.id, task.exception())
            job.outcome = Outcome(Kind.SERVER_ERROR)
        else:
            job.outcome = task.result()
        if job.entry is not None:
            job.entry.finished(job.outcome)
        job.finish_ms = int(time.time() * 1000)
        if job.progress_timer is not None:
            job.progress_timer.cancel()
            job.progress_timer = None
        if job.hook:
            self._follow(job)
        job.call = None
        self.store.finish(job, asyncio.get_running_loop().time())

    # callbacks

    def _follow(self, job: Job) -> None:
        """Call back where the task is now, if that is news; keep calling back its progress while it runs."""
        now = asyncio.get_running_loop().time()
        status = status_of(job, now)
        if status[0] == "NOT_START":
            return   # waiting in its account's queue: the proxy calls back once a task is submitted
        if status[0] != "SUBMITTED" and job.start_ms is not None and not job.notified:
            self._emit(job, ("SUBMITTED", "0%"), now)   # the proxy's first callback of a task that runs
        self._emit(job, status, now)
        if status[0] == "IN_PROGRESS":
            self._next_progress(job, int(status[1].rstrip("%")))

    def _emit(self, job: Job, status: tuple[str, str], now: float) -> None:
        key = f"{status[0]}:{status[1]}"
        if key == job.notified:
            return
        job.notified = key
        self.notifier.send(job, status[0], orjson.dumps(task_view(job, now, status)))

    def _next_progress(self, job: Job, reached: int) -> None:
        call = job.call
        if job.progress_timer is not None or call is None or call.service_ms <= 0:
            return
        step = next((s for s in PROGRESS_STEPS if s > reached), None)
        if step is None:
            return
        at = call.running_since + call.service_ms / 1000.0 * step / 100.0
        job.progress_timer = call.loop.call_at(at, self._progress, job, step)

    def _progress(self, job: Job, step: int) -> None:
        job.progress_timer = None
        if job.outcome is not None or job.call is None:
            return
        self._emit(job, ("IN_PROGRESS", f"{step}%"), job.call.loop.time())
        self._next_progress(job, step)


def _describe(spec: ActionSpec, variant: str) -> str:
    """The button as the new task's description names it, after "/up <task id>"."""
    if spec.action == "UPSCALE":
        return f"U{variant}"
    if spec.action == "VARIATION":
        return {"low": "Vary (Subtle)", "high": "Vary (Strong)"}.get(variant, f"V{variant}")
    if spec.action == "UPSCALE_HD":
        return f"Upscale ({variant.capitalize()})"
    if spec.action == "ZOOM":
        return {"50": "Zoom Out 2x", "75": "Zoom Out 1.5x"}.get(variant, "Zoom Out")
    if spec.action == "PAN":
        return f"Pan {variant.capitalize()}"
    return "R"
