"""The aggregating relay: one OpenAI-style endpoint for every model, as the seed's client uses it.

POST /relay/v1/images/generations with {prompt, model, width, height, style_preset?,
seed?, n?}; `hs_` keys; errors {"error": {"code", "message"}} with the seed's codes.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind, Outcome
from ..images import digest_for, image_path, render_b64
from .common import (Wire, WireError, base_url, bearer_token, ctx_of, field, read_json_object, request_id,
                     retry_after_headers)
from .openai import duration

KEY_RE = re.compile(r"^hs_[A-Za-z0-9_\-]{4,}$")
SIZES = ((512, 512), (768, 768), (1024, 1024), (1024, 1792), (1792, 1024))
STYLE_PRESETS = ("photography", "digital-art", "concept-art", "cinematic", "none")
MIN_PROMPT, MAX_PROMPT = 10, 4000
DEFAULT_MODEL = "midjourney-v7"


_STATUS_CODES = {401: "invalid_api_key", 404: "not_found", 405: "not_found", 413: "request_too_large",
                 429: "rate_limit_exceeded"}


def _invalid(message: str, param: str | None = None) -> WireError:
    return WireError(400, message, code="invalid_request", param=param)


class Relay(Wire):
    api = "relay"
    prefix = "/relay"
    provider_name = "relay"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/relay/v1/images/generations", self.guarded(self.generate))]

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        if status == 400 and code != "content_policy_violation":
            code = "invalid_request"
        else:
            code = _STATUS_CODES.get(status, code or "server_error")
        err: dict[str, Any] = {"code": code, "message": message}
        if param:
            err["param"] = param
        hdrs = {"x-request-id": request_id("rly_")}
        if headers:
            hdrs.update(headers)
        return web.Response(text=json.dumps({"error": err}), status=status, content_type="application/json",
                            headers=hdrs)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        key = bearer_token(request)
        if key is None or not KEY_RE.match(key):
            raise WireError(401, "Invalid API key", code="invalid_api_key")
        body = await read_json_object(request)
        ctx = ctx_of(request)
        provider = ctx.providers[self.provider_name]
        spec = provider.profile.relay
        assert spec is not None
        request["provider"] = self.provider_name
        model = field(body, "model", str, default=DEFAULT_MODEL)
        if model not in spec.models:
            raise _invalid(f"Unknown model '{model}'. Available: {', '.join(spec.models)}", "model")
        prompt = field(body, "prompt", str, required=True)
        if not prompt.strip():
            raise _invalid("Prompt cannot be empty or whitespace only", "prompt")
        if len(prompt) < MIN_PROMPT:
            raise _invalid(f"Prompt must be at least {MIN_PROMPT} characters", "prompt")
        if len(prompt) > MAX_PROMPT:
            raise _invalid(f"Prompt exceeds {MAX_PROMPT} characters", "prompt")
        width = field(body, "width", int, default=1024)
        height = field(body, "height", int, default=1024)
        if (width, height) not in SIZES:
            valid = ", ".join(f"{w}x{h}" for w, h in SIZES)
            raise _invalid(f"Width must be between 512 and 1792 and height between 512 and 1792, "
                           f"as one of {valid}; got {width}x{height}", "width")
        if max(width, height) > ctx.providers[model].profile.max_size:
            raise _invalid(f"{model} supports at most {ctx.providers[model].profile.max_size} pixels a side",
                           "width")
        style = field(body, "style_preset", str)
        if style is not None and style not in STYLE_PRESETS:
            raise _invalid(f"Invalid style_preset '{style}'. Valid: {', '.join(STYLE_PRESETS)}", "style_preset")
        seed = field(body, "seed", int)
        if seed is not None and not 0 <= seed < 2**32:
            raise _invalid("seed must be between 0 and 4294967295", "seed")
        n = field(body, "n", int, default=1)
        if not 1 <= n <= 10:
            raise _invalid("n must be between 1 and 10", "n")
        fmt = field(body, "response_format", str, default="url")
        if fmt not in ("url", "b64_json"):
            raise _invalid("response_format must be 'url' or 'b64_json'", "response_format")
        request["model"] = model

        call = Call(model, key, n)
        outcome = await provider.serve(call)
        rid = request_id("rly_")
        headers = {"x-request-id": rid, "x-processing-ms": str(int((time.perf_counter() - started) * 1000))}
        if call.rate is not None:
            headers["x-ratelimit-limit-requests"] = str(call.rate.limit)
            headers["x-ratelimit-remaining-requests"] = str(call.rate.remaining)
            headers["x-ratelimit-reset-requests"] = duration(call.rate.reset_s)
        if not outcome.ok:
            return self._failure(outcome, headers)

        served = call.served_model
        headers["x-relay-upstream"] = served
        if served != model:
            headers["x-relay-failover"] = f"{model}->{served}"
        kb = ctx.image_kb
        base = base_url(request)
        data = []
        digests = [digest_for(prompt, f"{served}:{seed}:{i}" if seed is not None else f"{rid}:{i}")
                   for i in range(n)]
        for digest in digests:
            item: dict[str, Any] = {"revised_prompt": prompt,
                                    "seed": seed if seed is not None else int(digest[:8], 16)}
            if fmt == "url":
                item["url"] = base + image_path(digest, kb)
            else:
                item["b64_json"] = render_b64(digest, kb)
            data.append(item)
        cost = provider.profile.price_for(served) * n
        headers["x-cost-usd"] = f"{cost:.4f}"
        # The seed's client reads an optional quality score; a stable one per image.
        quality = 0.9 + int(digests[0][:4], 16) / 0xFFFF * 0.09
        answer = {"id": rid.replace("rly_", "gen_"), "created": int(time.time()), "model": served, "data": data,
                  "quality_score": round(quality, 4), "usage": {"images": n, "cost_usd": round(cost, 4)}}
        return web.Response(text=json.dumps(answer), content_type="application/json", headers=headers)

    def _failure(self, outcome: Outcome, headers: dict[str, str]) -> web.Response:
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            headers.update(retry_after_headers(outcome.retry_after_s or 1.0))
            return self.error(429, "Too many requests", code="rate_limit_exceeded", headers=headers)
        if kind is Kind.CONTENT_POLICY:
            return self.error(400, "The prompt was refused by the upstream provider's content policy",
                              code="content_policy_violation", headers=headers)
        if kind is Kind.OVERLOADED:
            return self.error(503, "The relay is at capacity; retry shortly", code="overloaded", headers=headers)
        if kind is Kind.OUTAGE:
            what = "No upstream provider for this model is available" if outcome.detail == "upstream" \
                else "The relay is unavailable"
            return self.error(503, what, code="upstream_unavailable", headers=headers)
        if kind is Kind.TIMEOUT:
            return self.error(504, "The upstream provider timed out", code="upstream_timeout", headers=headers)
        return self.error(500, "Internal server error", code="server_error", headers=headers)
