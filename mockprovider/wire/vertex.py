"""Vertex AI Imagen: POST .../publishers/google/models/{model}:predict, Google's error shape."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind, Outcome
from ..images import digest_for
from .body import read_json_object
from .common import Labels, Wire, WireError, bearer_token, request_id

ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
PARAMETERS = {"sampleCount", "aspectRatio", "negativePrompt", "seed", "addWatermark", "personGeneration",
              "safetySetting", "sampleImageSize", "includeRaiReason", "outputOptions", "enhancePrompt",
              "language", "storageUri"}
MAX_SAMPLES = 4
# The pixels of each aspect ratio at sampleImageSize 1K (Imagen's documented output sizes); 2K doubles both.
DIMENSIONS = {"1:1": (1024, 1024), "3:4": (896, 1280), "4:3": (1280, 896), "9:16": (768, 1408), "16:9": (1408, 768)}


def _invalid(message: str) -> WireError:
    return WireError(400, message)


class VertexImagen(Wire):
    api = "vertex"
    prefix = "/vertex"

    def routes(self) -> list[web.RouteDef]:
        path = ("/vertex/v1/projects/{project}/locations/{location}/publishers/google/models/"
                "{model:[^/:]+}:predict")
        return [web.post(path, self.guarded(self.predict))]

    def error(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}}
        return web.Response(text=json.dumps(body), status=status, content_type="application/json",
                            headers=headers)

    async def predict(self, request: web.Request, labels: Labels) -> web.StreamResponse:
        started = time.perf_counter()
        token = bearer_token(request)
        if token is None:
            # Any bearer token is taken (Google's look like ya29.…); no header, or another scheme, is not.
            if request.headers.get("Authorization"):
                raise WireError(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                     "token, login cookie or other valid authentication credential.")
            raise WireError(401, "Request is missing required authentication credential. Expected OAuth 2 access "
                                 "token, login cookie or other valid authentication credential. See "
                                 "https://developers.google.com/identity/sign-in/web/devconsole-project.")
        ctx = self.ctx
        project = request.match_info["project"]
        location = request.match_info["location"]
        model = request.match_info["model"]
        provider = ctx.providers.get(model)
        if provider is None or provider.profile.api != "vertex":
            raise WireError(404, f"Publisher Model `projects/{project}/locations/{location}/publishers/google/"
                                 f"models/{model}` not found.")
        body = await read_json_object(request, ctx.max_body_bytes)
        for name in body:
            if name not in ("instances", "parameters"):
                raise _invalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise _invalid("instances must be a non-empty list with one instance.")
        if len(instances) > 1:
            raise _invalid(f"Only one instance is supported per request, got {len(instances)}.")
        instance = instances[0]
        if not isinstance(instance, dict):
            raise _invalid("instances[0] must be an object with a prompt.")
        prompt = instance.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("instances[0].prompt is required and must be a non-empty string.")
        params = body.get("parameters", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise _invalid("parameters must be an object.")
        unknown = sorted(set(params) - PARAMETERS)
        if unknown:
            raise _invalid(f"Unsupported parameter(s): {', '.join(unknown)}.")
        count = params.get("sampleCount", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SAMPLES:
            raise _invalid(f"sampleCount must be an integer between 1 and {MAX_SAMPLES}, got {count!r}.")
        aspect = params.get("aspectRatio", "1:1")
        if aspect not in ASPECT_RATIOS:
            raise _invalid(f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}, got {aspect!r}.")
        seed = params.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
            raise _invalid(f"seed must be an integer between 0 and 4294967295, got {seed!r}.")
        for flag in ("addWatermark", "includeRaiReason", "enhancePrompt"):
            if flag in params and not isinstance(params[flag], bool):
                raise _invalid(f"{flag} must be a boolean, got {params[flag]!r}.")
        size = params.get("sampleImageSize", "1K")
        if size not in ("1K", "2K"):
            raise _invalid(f"sampleImageSize must be '1K' or '2K', got {size!r}.")
        labels.provider = labels.model = model

        # Quota is per project and base model, which is the key a token bucket tracks.
        call = Call(model, f"{project}/{model}", count, loop=ctx.loop)
        outcome = await provider.serve(call)
        headers = {"x-request-id": request_id(),
                   "x-processing-ms": str(int((time.perf_counter() - started) * 1000))}
        if not outcome.ok and outcome.kind is not Kind.CONTENT_POLICY:
            return self._failure(outcome, model, headers)
        if outcome.kind is Kind.CONTENT_POLICY:
            # Filtered images are left out of the answer, not reported as an error.
            answer: dict[str, Any] = {}
            if params.get("includeRaiReason"):
                answer["predictions"] = [{"raiFilteredReason": "Your current safety filter threshold filtered "
                                                               "out the generated image."}] * count
            return web.Response(text=json.dumps(answer), content_type="application/json", headers=headers)
        salt = headers["x-request-id"]
        width, height = (side * (2 if size == "2K" else 1) for side in DIMENSIONS[aspect])
        predictions = []
        for i in range(count):
            digest = digest_for(prompt, f"{model}:{seed}:{i}" if seed is not None else f"{salt}:{i}")
            image = await ctx.images.b64(provider, digest, width, height)
            predictions.append({"bytesBase64Encoded": image, "mimeType": "image/png"})
        headers["x-cost-usd"] = f"{provider.profile.price_for(model) * count:.4f}"
        return web.Response(text=json.dumps({"predictions": predictions}), content_type="application/json",
                            headers=headers)

    def _failure(self, outcome: Outcome, model: str, headers: dict[str, str]) -> web.Response:
        kind = outcome.kind
        if kind is Kind.RATE_LIMITED:
            # Vertex sends no Retry-After: clients back off on their own.
            return self.error(429, "Quota exceeded for aiplatform.googleapis.com/"
                                   f"online_prediction_requests_per_base_model with base model: {model}. Please "
                                   "submit a quota increase request. "
                                   "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai.",
                              headers=headers)
        if kind in (Kind.OVERLOADED, Kind.OUTAGE):
            return self.error(503, "The service is currently unavailable.", headers=headers)
        if kind is Kind.TIMEOUT:
            return self.error(504, "Deadline exceeded.", headers=headers)
        return self.error(500, "Internal error encountered.", headers=headers)
