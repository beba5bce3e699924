"""The aggregating relay: one OpenAI-style endpoint for every model, as the seed's client uses it.

POST /relay/v1/images/generations with {prompt, model, width, height, style_preset?,
seed?, n?}, or OpenAI's `size` ("1024x1024") and `quality` in place of width and height;
`hs_` keys; errors {"error": {"code", "message"}} with the seed's codes. The answer parses as
the OpenAI SDK's `ImagesResponse`: the cost travels in `x-cost-usd` and a `cost` object of
its own, not in `usage` (which that type reads as token counts).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from aiohttp import hdrs, web
from multidict import istr
from xxhash import xxh3_64_hexdigest, xxh3_128_hexdigest

from ..behaviours import Call, Kind, Outcome
from ..context import MockContext
from ..images import Base, digest_for, signature
from ..provider import Provider
from .body import json_object_now, read_json_object
from .common import (
    JSON_TYPE,
    KeyCheck,
    Labels,
    Wire,
    WireError,
    bearer_token,
    field,
    request_id,
    retry_after_headers,
    unix_seconds,
)
from .openai import duration
from .parts import BodyParts

KEY_RE = re.compile(r"^hs_[A-Za-z0-9_\-]{4,}\Z")
SIZES = ((512, 512), (768, 768), (1024, 1024), (1024, 1792), (1792, 1024))
SIZE_NAMES = {f"{w}x{h}": (w, h) for w, h in SIZES}
# OpenAI's qualities, accepted as the SDK sends them; those its ImagesResponse type names are echoed.
QUALITIES = frozenset({"standard", "hd", "low", "medium", "high", "auto"})
ECHOED_QUALITIES = frozenset({"low", "medium", "high"})
STYLE_PRESETS = ("photography", "digital-art", "concept-art", "cinematic", "none")
MIN_PROMPT, MAX_PROMPT = 10, 4000
DEFAULT_MODEL = "midjourney-v7"
# Header names made case-insensitive once, not on every answer.
_REQUEST_ID, _FAILOVER, _COST = (istr(h) for h in ("x-request-id", "x-relay-failover", "x-cost-usd"))
_LIMIT, _REMAINING, _RESET = (istr(f"x-ratelimit-{h}-requests") for h in ("limit", "remaining", "reset"))


# A stable quality score per image from its digest's first byte: 256 steps from 0.900 to 0.990.
_QUALITY = {f"{b:02x}": f"{0.9 + b * 0.09 / 255:.4f}" for b in range(256)}

_STATUS_CODES = {401: "invalid_api_key", 404: "not_found", 405: "not_found", 413: "request_too_large",
                 429: "rate_limit_exceeded"}


# (model, prompt, seed, n, response_format, width, height, the size/quality echo as JSON members or "")
Accepted = tuple[str, str, int | None, int, str, int, int, str]


def _echo(width: int, height: int, quality: str | None) -> str:
    """`size` (and `quality`, where the SDK's type names it) for an answer to OpenAI's fields."""
    text = f'"size": "{width}x{height}", '
    if quality in ECHOED_QUALITIES:
        text += f'"quality": "{quality}", '
    return text


def _invalid(message: str, param: str | None = None) -> WireError:
    return WireError(400, message, code="invalid_request", param=param)


class Relay(Wire):
    api = "relay"
    prefix = "/relay"
    provider_name = "relay"
    keys = KeyCheck(KEY_RE)

    def __init__(self, ctx: MockContext) -> None:
        super().__init__(ctx)
        self._costs: dict[tuple[str, int], tuple[str, str]] = {}   # (model, n) -> the cost as header, as JSON

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

    async def generate(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        auth = request.headers.get(hdrs.AUTHORIZATION)
        key = self.keys.by_header.get(auth)   # a header seen before needs no parsing
        if key is None:
            key = self.keys.check(bearer_token(request), auth)
            if key is None:
                raise WireError(401, "Invalid API key", code="invalid_api_key")
        ctx = self.ctx
        body = json_object_now(request, ctx.max_body_bytes)
        if body is None:
            body = await read_json_object(request, ctx.max_body_bytes)
        provider = ctx.providers[self.provider_name]
        labels.provider = self.provider_name
        model, prompt, seed, n, fmt, width, height, echo = self._accepted(body, ctx) or self._validate(body, ctx)
        labels.model = model

        call = Call(model, key, n, loop=ctx.loop)
        outcome = await provider.serve(call)
        rid = request_id("rly_")
        # Few headers: each costs about as much as a validation step.
        headers = {_REQUEST_ID: rid}
        rate = call.rate
        if rate is not None:
            headers[_LIMIT] = str(rate.limit)
            headers[_REMAINING] = str(rate.remaining)
            headers[_RESET] = duration(rate.reset_s)
        if outcome.kind is not Kind.OK:
            return self._failure(outcome, headers)

        served = call.served_model
        if served != model:
            headers[_FAILOVER] = f"{model}->{served}"
        cost_header, cost_json = self._costs.get((served, n)) or self._cost(provider, served, n)
        headers[_COST] = cost_header
        headers[hdrs.CONTENT_TYPE] = JSON_TYPE
        if fmt == "url":
            answer = self._with_urls(request, provider, rid, served, prompt, seed, n, width, height, cost_json, echo)
        else:
            images = ctx.images
            nbytes = images.nbytes(provider, width, height)
            base = images.base_now(width, height, nbytes) or await images.base(width, height, nbytes)
            return web.Response(body=BodyParts(self._with_b64(base, rid, served, prompt, seed, n, cost_json, echo),
                                               JSON_TYPE), headers=headers)
        return web.Response(body=answer, headers=headers)

    def _cost(self, provider: Provider, served: str, n: int) -> tuple[str, str]:
        """The header and JSON forms of a cost, kept: at most ten per model, and float formatting is not cheap."""
        cost = provider.profile.price_for(served) * n
        forms = self._costs[served, n] = f"{cost:.4f}", repr(round(cost, 4))
        return forms

    def _accepted(self, body: dict[str, Any], ctx: MockContext) -> Accepted | None:
        """The common, valid request in one test; None sends it through `_validate` for the exact error."""
        get = body.get
        model, width, height = get("model", DEFAULT_MODEL), get("width", 1024), get("height", 1024)
        prompt, seed, n, fmt = get("prompt"), get("seed"), get("n", 1), get("response_format", "url")
        echo = ""
        size, quality = get("size"), get("quality")
        if size is not None or quality is not None:   # OpenAI's fields: valid ones are plain strings
            if (size is not None and (size.__class__ is not str or size not in SIZE_NAMES or "width" in body
                                      or "height" in body)) \
                    or (quality is not None and (quality.__class__ is not str or quality not in QUALITIES)):
                return None
            if size is not None:
                width, height = SIZE_NAMES[size]
            echo = _echo(width, height, quality)
        if self._combos is None:
            self._combos = self._valid_combos(ctx)
        try:
            # Strings only equal strings, so membership settles their types; numbers need a look.
            known = (model, width, height, get("style_preset"), fmt) in self._combos
        except TypeError:   # an unhashable value (array, object) where a plain one belongs
            return None
        if (known and width.__class__ is int and height.__class__ is int
                and prompt.__class__ is str and MIN_PROMPT <= len(prompt) <= MAX_PROMPT and not prompt.isspace()
                and (seed is None or (seed.__class__ is int and 0 <= seed <= 0xFFFFFFFF))
                and n.__class__ is int and 1 <= n <= 10):
            return model, prompt, seed, n, fmt, width, height, echo
        return None

    _combos: frozenset[tuple[Any, ...]] | None = None

    def _valid_combos(self, ctx: MockContext) -> frozenset[tuple[Any, ...]]:
        """Every valid (model, width, height, style_preset, response_format): a few hundred."""
        spec = ctx.providers[self.provider_name].profile.relay
        assert spec is not None
        return frozenset((m, w, h, style, fmt) for m in spec.models for w, h in SIZES
                         if max(w, h) <= ctx.providers[m].profile.max_size
                         for style in (None, *STYLE_PRESETS) for fmt in ("url", "b64_json"))

    def _validate(self, body: dict[str, Any], ctx: MockContext) -> Accepted:
        """Field by field, so a bad request learns exactly what is wrong with it."""
        spec = ctx.providers[self.provider_name].profile.relay
        assert spec is not None
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
        size = field(body, "size", str)
        if size is not None:
            if size not in SIZE_NAMES:
                raise _invalid(f"Invalid size '{size}'. Valid: {', '.join(SIZE_NAMES)}", "size")
            if ("width" in body or "height" in body) and SIZE_NAMES[size] != (width, height):
                raise _invalid(f"size {size} disagrees with width {width} and height {height}; send one or "
                               "the other", "size")
            width, height = SIZE_NAMES[size]
        quality = field(body, "quality", str)
        if quality is not None and quality not in QUALITIES:
            raise _invalid(f"Invalid quality '{quality}'. Valid: {', '.join(sorted(QUALITIES))}", "quality")
        if (width, height) not in SIZES:
            valid = ", ".join(f"{w}x{h}" for w, h in SIZES)
            raise _invalid(f"Width must be between 512 and 1792 and height between 512 and 1792, "
                           f"as one of {valid}; got {width}x{height}", "width")
        max_size = ctx.providers[model].profile.max_size
        if width > max_size or height > max_size:
            raise _invalid(f"{model} supports at most {max_size} pixels a side", "width")
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
        echo = _echo(width, height, quality) if size is not None or quality is not None else ""
        return model, prompt, seed, n, fmt, width, height, echo

    def _with_urls(self, request: web.Request, provider: Provider, rid: str, served: str, prompt: str,
                   seed: int | None, n: int, width: int, height: int, cost_json: str, echo: str) -> bytes:
        """The answer's JSON, formatted directly: every value but the prompt is ours and plain."""
        text = orjson.dumps(prompt).decode()   # a prompt is valid Unicode: the body parser saw to that
        now = unix_seconds()
        form = self.ctx.images.url_form(request, provider, width, height, now)
        prefix, query, key = form.json_prefix, form.query, form.seed
        if n == 1 and seed is not None:
            # The usual request, in one piece: images.digest_for and images.signature, inlined (two
            # Python calls and a list of one are a share of the cheapest answer).
            digest = xxh3_128_hexdigest(f"{served}:{seed}:0\x00{prompt}".encode())
            return (f'{{"id": "{rid}", "created": {now}, "model": "{served}", "data": [{{"revised_prompt": {text}, '
                    f'"seed": {seed}, "url": {prefix}{digest}.png?{query}&sig='
                    f'{xxh3_64_hexdigest(digest.encode(), seed=key)}"}}], "quality_score": {_QUALITY[digest[:2]]}, '
                    f'{echo}"cost": {{"images": 1, "usd": {cost_json}}}}}').encode()
        items = []
        for i in range(n):
            digest = digest_for(prompt, f"{served}:{seed}:{i}" if seed is not None else f"{rid}:{i}")
            item_seed = seed if seed is not None else int(digest[:8], 16)
            items.append(f'{{"revised_prompt": {text}, "seed": {item_seed}, '
                         f'"url": {prefix}{digest}.png?{query}&sig={signature(key, digest)}"}}')
            if i == 0:
                # The seed's client reads an optional quality score: a stable one per image, 0.9 to 0.99.
                quality = _QUALITY[digest[:2]]
        return (f'{{"id": "{rid}", "created": {now}, "model": "{served}", '
                f'"data": [{", ".join(items)}], "quality_score": {quality}, {echo}'
                f'"cost": {{"images": {n}, "usd": {cost_json}}}}}').encode()

    def _with_b64(self, base: Base, rid: str, served: str, prompt: str, seed: int | None, n: int,
                  cost_json: str, echo: str) -> tuple[bytes, ...]:
        """As `_with_urls`, in pieces: each image's base64 is its own few KB and the shared megabytes,
        written as they are (a 2 MB answer is not copied to be sent)."""
        text = orjson.dumps(prompt)
        parts: list[bytes] = []
        for i in range(n):
            digest = digest_for(prompt, f"{served}:{seed}:{i}" if seed is not None else f"{rid}:{i}")
            item_seed = seed if seed is not None else int(digest[:8], 16)
            parts += (b", " if i else b"", b'{"revised_prompt": ', text, b', "seed": %d, "b64_json": "' % item_seed,
                      *base.b64_parts(digest), b'"}')
            if i == 0:
                quality = _QUALITY[digest[:2]]
        head = f'{{"id": "{rid}", "created": {unix_seconds()}, "model": "{served}", "data": ['.encode()
        tail = f'], "quality_score": {quality}, {echo}"cost": {{"images": {n}, "usd": {cost_json}}}}}'.encode()
        return (head, *parts, tail)

    def _failure(self, outcome: Outcome, headers: dict[Any, str]) -> web.Response:
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
