"""OpenAI Images API: POST /openai/v1/images/generations and /images/edits, as the official SDK speaks them.

Each `openai` profile follows the rules of its model family (openai_models.py); the request
is checked (openai_params.py, openai_edits.py), served through the provider's behaviours, and
answered as one `ImagesResponse` or, with `stream: true`, as Server-Sent Events spread over
the generation time (openai_answer.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind, Outcome, Phase
from ..profile import Profile, ProfileError
from ..provider import Provider
from .body import read_json_object
from .common import Labels, Wire, WireError, bearer_token, field, mask_key, request_id, retry_after_headers
from .openai_answer import Answer, error_event
from .openai_edits import check_uploads, read_form
from .openai_models import ALIASES, FAMILIES, ModelRules, price_factor, rules_for
from .openai_params import EDIT_PARAMS, GENERATE_PARAMS, ImageRequest, check_names, check_request, from_form

KEY_RE = re.compile(r"^sk-[A-Za-z0-9_\-]{4,}\Z")
DEFAULT_MODEL = "dall-e-4"


def duration(seconds: float) -> str:
    """OpenAI's reset format: '120ms', '1.5s', '6m0s'."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s"


class OpenAIImages(Wire):
    api = "openai"
    prefix = "/openai"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sizes: dict[str, tuple[str, ...]] = {}   # provider -> the sizes it takes by name

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/openai/v1/images/generations", self.guarded(self.generate)),
                web.post("/openai/v1/images/edits", self.guarded(self.edit))]

    @classmethod
    def check_profile(cls, profile: Profile) -> None:
        if profile.family and profile.family not in FAMILIES:
            raise ProfileError(f"[{profile.name}].family: {profile.family!r} is no OpenAI image model the mock "
                               f"knows; known: {', '.join(FAMILIES)}")

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None, type_: str | None = None) -> web.Response:
        hdrs = {"x-request-id": request_id()}
        if headers:
            hdrs.update(headers)
        return web.Response(text=json.dumps({"error": self._error_body(status, message, code, param, type_)}),
                            status=status, content_type="application/json", headers=hdrs)

    @staticmethod
    def _error_body(status: int, message: str, code: str | None, param: str | None,
                    type_: str | None) -> dict[str, Any]:
        if type_ is None:
            type_ = "server_error" if status >= 500 else "invalid_request_error"
        return {"message": message, "type": type_, "param": param, "code": code}

    async def unknown_route(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        path = request.path.removeprefix(self.prefix)
        return self.error(404, f"Invalid URL ({request.method} {path})")

    def _authenticate(self, request: web.Request) -> str:
        key = bearer_token(request)
        if key is None:
            raise WireError(401, "You didn't provide an API key. You need to provide your API key in an "
                                 "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if not KEY_RE.match(key):
            raise WireError(401, f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
                                 "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        return key

    def _model(self, body: dict[str, Any], *, edit: bool) -> tuple[str, Provider, ModelRules]:
        model = field(body, "model", str, default=DEFAULT_MODEL)
        provider = self.ctx.providers.get(ALIASES.get(model, model))
        rules = rules_for(provider.profile.family) if provider is not None and provider.profile.api == "openai" \
            else None
        if provider is None or rules is None or (edit and not rules.edits):
            served = sorted(n for n, p in self.ctx.providers.by_api("openai").items()
                            if not edit or rules_for(p.profile.family).edits)
            what = "Supported models for image edits" if edit else "Supported models"
            raise WireError(400, f"Invalid value for 'model' = {model}. {what}: {', '.join(served)}.",
                            code="invalid_value", param="model")
        return model, provider, rules

    def _sizes_of(self, provider: Provider, rules: ModelRules, edit: bool) -> tuple[str, ...]:
        if edit and rules.edit_sizes is not None:
            return rules.edit_sizes
        sizes = self._sizes.get(provider.name)
        if sizes is None:
            max_size = provider.profile.max_size
            sizes = self._sizes[provider.name] = tuple(
                s for s in rules.sizes if not rules.capped_sizes or max(map(int, s.split("x"))) <= max_size)
        return sizes

    async def generate(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        started = time.perf_counter()
        key = self._authenticate(request)
        body = await read_json_object(request, self.ctx.max_body_bytes)
        model, provider, rules = self._model(body, edit=False)
        check_names(body, GENERATE_PARAMS, rules)
        req = check_request(body, rules, self._sizes_of(provider, rules, edit=False))
        labels.provider, labels.model = provider.name, model
        return await self._serve(request, started, key, model, provider, rules, req)

    async def edit(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        started = time.perf_counter()
        key = self._authenticate(request)
        form = await read_form(request, self.ctx.max_body_bytes)
        body = from_form(form.fields)
        for name in form.files:
            body[name] = name   # present: the name checks see it
        body["image"] = "image" if form.images else None
        model, provider, rules = self._model(body, edit=True)
        check_names(body, EDIT_PARAMS, rules)
        req = check_request(body, rules, self._sizes_of(provider, rules, edit=True), edit=True)
        image_tokens = check_uploads(form, rules, req.input_fidelity)
        labels.provider, labels.model = provider.name, model
        return await self._serve(request, started, key, model, provider, rules, req, image_tokens=image_tokens,
                                 edit=True)

    async def _serve(self, request: web.Request, started: float, key: str, model: str, provider: Provider,
                     rules: ModelRules, req: ImageRequest, *, image_tokens: int = 0,
                     edit: bool = False) -> web.StreamResponse:
        ctx = self.ctx
        call = Call(model, key, req.n, loop=ctx.loop, watch_admission=req.stream)
        call.quality, call.pixels, call.image_format = req.rendered_quality, req.width * req.height, req.output_format
        headers = {"x-request-id": request_id(), "openai-version": "2020-10-01"}
        answer = Answer(req, rules, salt=headers["x-request-id"], images=ctx.images, provider=provider,
                        request=request, image_tokens=image_tokens, edit=edit)
        if req.stream:
            serving = asyncio.ensure_future(provider.serve(call))
            return await self._stream(request, started, call, serving, provider, answer, headers)
        outcome = await provider.serve(call)
        self._timing_and_limits(headers, started, call)
        if not outcome.ok:
            return self._failure(outcome, provider, call, headers)
        headers["x-cost-usd"] = self._cost(provider, rules, model, req)
        return web.Response(text=await answer.body(), content_type="application/json", headers=headers)

    @staticmethod
    def _cost(provider: Provider, rules: ModelRules, model: str, req: ImageRequest) -> str:
        each = provider.profile.price_for(model) * price_factor(rules, req.rendered_quality, req.width, req.height)
        return f"{each * req.n:.4f}"

    @staticmethod
    def _timing_and_limits(headers: dict[str, str], started: float, call: Call) -> None:
        headers["openai-processing-ms"] = str(int((time.perf_counter() - started) * 1000))
        if call.rate is not None:
            headers["x-ratelimit-limit-requests"] = str(call.rate.limit)
            headers["x-ratelimit-remaining-requests"] = str(call.rate.remaining)
            headers["x-ratelimit-reset-requests"] = duration(call.rate.reset_s)

    async def _stream(self, request: web.Request, started: float, call: Call, serving: asyncio.Future[Outcome],
                      provider: Provider, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
        """Refusals answer as errors; once generating, partial images then the image, over the generation time."""
        try:
            phase: asyncio.Future[None] = call.admitted
            while True:   # until it runs or ends: a queued call may yet be refused, and that is an HTTP error
                either: set[asyncio.Future[Any]] = {serving, phase}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if serving.done() or call.phase is Phase.RUNNING:
                    break
                phase = call.phase_change()
            if serving.done() and not serving.result().ok:
                self._timing_and_limits(headers, started, call)
                return self._failure(serving.result(), provider, call, headers)
            self._timing_and_limits(headers, started, call)
            headers["x-cost-usd"] = self._cost(provider, answer.rules, call.model, answer.req)
            response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream; charset=utf-8",
                                                   "Cache-Control": "no-cache"})
            await response.prepare(request)
            try:
                await self._events(response, call, serving, provider, answer)
            except ConnectionError:
                pass   # the client left; the generation it asked for is dropped below
            return response
        finally:
            if not serving.done():
                serving.cancel()
                await asyncio.wait({serving})

    async def _events(self, response: web.StreamResponse, call: Call, serving: asyncio.Future[Outcome],
                      provider: Provider, answer: Answer) -> None:
        """Image k of n takes the k-th n-th of the generation time; its partials split that share evenly."""
        req, loop = answer.req, call.loop
        start = call.running_since or loop.time()
        total_s = call.service_ms / 1000.0
        steps = req.partial_images + 1
        for k in range(req.n):
            for j in range(steps):
                due = start + total_s * (k + (j + 1) / steps) / req.n
                last = k == req.n - 1 and j == steps - 1
                if last:
                    await asyncio.wait({serving})
                elif due > loop.time() and not serving.done():
                    await asyncio.wait({serving}, timeout=due - loop.time())
                if serving.done() and not serving.result().ok:
                    failure = self._failure(serving.result(), provider, call, {})
                    await response.write(error_event(json.loads(failure.text or "{}")["error"]))
                    return
                await response.write(await answer.completed_event(k) if j == steps - 1
                                     else await answer.partial_event(k, j))
        await response.write_eof()

    def _failure(self, outcome: Outcome, provider: Provider, call: Call, headers: dict[str, str]) -> web.Response:
        kind, model = outcome.kind, call.model
        if kind is Kind.RATE_LIMITED:
            wait = outcome.retry_after_s or 1.0
            headers.update(retry_after_headers(wait))
            limit = call.rate.limit if call.rate else 0
            if provider.profile.rate_limit.counts == "images":
                used = limit - (call.rate.remaining if call.rate else 0)
                message = (f"Rate limit exceeded for images per minute in organization org-mock. Limit: "
                           f"{limit}/1min. Current: {used + call.n}/1min. Please try again in {duration(wait)}. "
                           "Visit https://platform.openai.com/account/rate-limits to learn more.")
            else:
                message = (f"Rate limit reached for {model} in organization org-mock on requests per min (RPM): "
                           f"Limit {limit}, Used {limit}, Requested 1. Please try again in {duration(wait)}. "
                           "Visit https://platform.openai.com/account/rate-limits to learn more.")
            return self.error(429, message, code="rate_limit_exceeded", type_="requests", headers=headers)
        if kind is Kind.CONTENT_POLICY:
            return self.error(400, "Your request was rejected as a result of our safety system. Your prompt may "
                                   "contain text that is not allowed by our safety system.",
                              code="content_policy_violation", headers=headers)
        if kind is Kind.OVERLOADED:
            return self.error(503, "The server is overloaded or not ready yet.", headers=headers)
        if kind is Kind.OUTAGE:
            return self.error(503, "The service is temporarily unavailable. Please try again later.",
                              code="service_unavailable", headers=headers)
        if kind is Kind.TIMEOUT:
            return self.error(504, "Request timed out.", code="timeout", headers=headers)
        return self.error(500, "The server had an error while processing your request. Sorry about that!",
                          headers=headers)
