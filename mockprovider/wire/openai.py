"""OpenAI Images API: POST /openai/v1/images/generations, as the official SDK speaks it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind, Outcome
from ..images import digest_for
from .body import read_json_object
from .common import Labels, Wire, WireError, bearer_token, field, mask_key, request_id, retry_after_headers

KEY_RE = re.compile(r"^sk-[A-Za-z0-9_\-]{4,}\Z")
SIZES = ("256x256", "512x512", "1024x1024", "1024x1792", "1792x1024")
QUALITIES = ("standard", "hd", "low", "medium", "high", "auto")
FORMATS = ("url", "b64_json")
STYLES = ("vivid", "natural")
# Accepted and ignored: newer image models' options a client may pass.
IGNORED = {"background", "moderation", "output_format", "output_compression", "partial_images"}
KNOWN = {"model", "prompt", "n", "size", "quality", "response_format", "style", "user", "stream"} | IGNORED
MAX_PROMPT = 4000
DEFAULT_MODEL = "dall-e-4"


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        quoted = ", ".join(f"'{a}'" for a in allowed[:-1]) + f", and '{allowed[-1]}'"
        raise WireError(400, f"Invalid value: '{value}'. Supported values are: {quoted}.", code="invalid_value",
                        param=name)
    return value


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

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/openai/v1/images/generations", self.guarded(self.generate))]

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None, type_: str | None = None) -> web.Response:
        if type_ is None:
            type_ = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        hdrs = {"x-request-id": request_id()}
        if headers:
            hdrs.update(headers)
        return web.Response(text=json.dumps(body), status=status, content_type="application/json", headers=hdrs)

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

    async def generate(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        started = time.perf_counter()
        key = self._authenticate(request)
        ctx = self.ctx
        body = await read_json_object(request, ctx.max_body_bytes)
        for name in body:
            if name not in KNOWN:
                raise WireError(400, f"Unrecognized request argument supplied: {name}", param=name,
                                code="unknown_parameter")
        model = field(body, "model", str, default=DEFAULT_MODEL)
        provider = ctx.providers.get(model)
        if provider is None or provider.profile.api != "openai":
            served = sorted(ctx.providers.by_api("openai"))
            raise WireError(400, f"Invalid value for 'model' = {model}. Supported models: {', '.join(served)}.",
                            code="invalid_value", param="model")
        prompt = field(body, "prompt", str, required=True)
        if not prompt.strip():
            raise WireError(400, "Invalid 'prompt': empty string. Expected a string with minimum length 1.",
                            code="empty_string", param="prompt")
        if len(prompt) > MAX_PROMPT:
            raise WireError(400, f"Invalid 'prompt': string too long. Expected a string with maximum length "
                                 f"{MAX_PROMPT}, but got a string with length {len(prompt)} instead.",
                            code="string_above_max_length", param="prompt")
        n = field(body, "n", int, default=1)
        if not 1 <= n <= 10:
            raise WireError(400, f"Invalid 'n': integer {'below minimum' if n < 1 else 'above maximum'} value. "
                                 f"Expected a value {'>= 1' if n < 1 else '<= 10'}, but got {n} instead.",
                            code="integer_below_min_value" if n < 1 else "integer_above_max_value", param="n")
        sizes = tuple(s for s in SIZES if max(map(int, s.split("x"))) <= provider.profile.max_size)
        size = _one_of("size", field(body, "size", str, default="1024x1024"), sizes)
        _one_of("quality", field(body, "quality", str, default="standard"), QUALITIES)
        fmt = _one_of("response_format", field(body, "response_format", str, default="url"), FORMATS)
        _one_of("style", field(body, "style", str, default="vivid"), STYLES)
        field(body, "user", str)
        if field(body, "stream", bool, default=False):
            raise WireError(400, "Streaming is not supported for this model.", code="unsupported_value",
                            param="stream")
        labels.provider = labels.model = model

        call = Call(model, key, n, loop=ctx.loop)
        outcome = await provider.serve(call)
        headers = {"x-request-id": request_id(), "openai-version": "2020-10-01",
                   "openai-processing-ms": str(int((time.perf_counter() - started) * 1000))}
        if call.rate is not None:
            headers["x-ratelimit-limit-requests"] = str(call.rate.limit)
            headers["x-ratelimit-remaining-requests"] = str(call.rate.remaining)
            headers["x-ratelimit-reset-requests"] = duration(call.rate.reset_s)
        if not outcome.ok:
            return self._failure(outcome, model, call, headers)

        width, height = (int(side) for side in size.split("x"))
        images = ctx.images
        salt = headers["x-request-id"]
        data: list[dict[str, Any]] = []
        for i in range(n):
            digest = digest_for(prompt, f"{salt}:{i}")
            item: dict[str, Any] = {"revised_prompt": prompt}
            if fmt == "url":
                item["url"] = images.url(request, provider, digest, width, height)
            else:
                item["b64_json"] = await images.b64(provider, digest, width, height)
            data.append(item)
        headers["x-cost-usd"] = f"{provider.profile.price_for(model) * n:.4f}"
        return web.Response(text=json.dumps({"created": int(time.time()), "data": data}),
                            content_type="application/json", headers=headers)

    def _failure(self, outcome: Outcome, model: str, call: Call, headers: dict[str, str]) -> web.Response:
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            wait = outcome.retry_after_s or 1.0
            headers.update(retry_after_headers(wait))
            limit = call.rate.limit if call.rate else 0
            return self.error(429, f"Rate limit reached for {model} in organization org-mock on requests per min "
                                   f"(RPM): Limit {limit}, Used {limit}, Requested 1. Please try again in "
                                   f"{duration(wait)}. Visit https://platform.openai.com/account/rate-limits "
                                   "to learn more.", code="rate_limit_exceeded", type_="requests", headers=headers)
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
