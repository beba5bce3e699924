"""Imagen's `:predict`, as Vertex AI and the Gemini Developer API both serve it: every field google-genai's
`generate_images` and google-cloud-aiplatform's `ImageGenerationModel` send, checked as Vertex checks them,
and an answer with what those SDKs read (filtered images' `raiFilteredReason`, the enhanced `prompt`,
safety attributes per image and for the prompt)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind
from ..images import digest_for
from ..provider import Provider
from .body import read_json_object
from .common import Labels, request_id
from .google import GoogleWire, boolean, choice, integer, invalid, labels_field, number, string, unknown_name
from .openai_answer import reencoded_b64

MAX_SAMPLES = 4
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
IMAGE_SIZES = ("1K", "2K")                    # Imagen 4's; the pixel sizes ("1024") were Imagen 2 and 3's
MIME_TYPES = ("image/png", "image/jpeg")
FORMAT_OF = {"image/png": "png", "image/jpeg": "jpeg"}
EXTENSION = {"image/png": "png", "image/jpeg": "jpg"}
# The pixels of each aspect ratio at sampleImageSize 1K (Imagen's documented output sizes); 2K doubles both.
DIMENSIONS = {"1:1": (1024, 1024), "3:4": (896, 1280), "4:3": (1280, 896), "9:16": (768, 1408), "16:9": (1408, 768)}
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
SAFETY_SETTINGS = ("block_low_and_above", "block_medium_and_above", "block_only_high", "block_none",
                   "block_most", "block_some", "block_few", "block_fewest")   # the last four: deprecated names
LANGUAGES = ("auto", "en", "zh", "zh-CN", "zh-TW", "hi", "ja", "ko", "pt", "es")
# VisionGenerativeModelParams' deprecated fields: still accepted, and without effect.
DEPRECATED = frozenset({"mode", "model", "enablePersonFaceFilter", "disablePersonFace", "raiLevel",
                        "enableChildFilter"})
PARAMETERS = frozenset({"sampleCount", "sampleImageSize", "storageUri", "negativePrompt", "seed", "aspectRatio",
                        "guidanceScale", "safetySetting", "personGeneration", "includeRaiReason",
                        "includeSafetyAttributes", "language", "outputOptions", "addWatermark",
                        "enhancePrompt"}) | DEPRECATED
# What the Gemini Developer API's Imagen does not take (google-genai refused these client-side for it).
NOT_ON_GEMINI_API = frozenset({"storageUri", "negativePrompt", "seed", "addWatermark", "enhancePrompt"})
# The safety attribute categories Vertex scores a prompt and an image on.
SAFETY_CATEGORIES = ("Death, Harm & Tragedy", "Firearms & Weapons", "Hate", "Health", "Illicit Drugs",
                     "Politics", "Porn", "Religion & Belief", "Toxic", "Violence", "Vulgarity", "War & Conflict")
ENHANCEMENTS = ("photorealistic product photograph, soft diffused studio lighting, shallow depth of field, "
                "crisp detail, neutral background",
                "high-resolution commercial shot, natural window light, balanced composition, true-to-life colour",
                "clean e-commerce image, even lighting, subtle shadow, centred subject, high detail")


def filtered_reason(n: int) -> str:
    return (f"Your current safety filter threshold filtered out {n} generated image{'s' if n != 1 else ''}. "
            "You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an "
            "error, send feedback. Support codes: 29578790")


@dataclass
class ImagenRequest:
    prompt: str
    count: int = 1
    seed: int | None = None
    storage_uri: str | None = None
    include_rai_reason: bool = False
    include_safety_attributes: bool = False
    enhance_prompt: bool = False
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    mime_type: str = "image/png"          # outputOptions.mimeType: what each image is served as
    compression: int | None = None        # outputOptions.compressionQuality (JPEG)

    @property
    def dimensions(self) -> tuple[int, int]:
        width, height = DIMENSIONS[self.aspect_ratio]
        scale = 2 if self.image_size == "2K" else 1
        return width * scale, height * scale


def parse_predict(body: dict[str, Any], *, gemini_api: bool) -> ImagenRequest:
    for name in body:
        if name not in ("instances", "parameters") and (gemini_api or name != "labels"):
            raise unknown_name(name)
    if "labels" in body:
        labels_field(body["labels"])
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise invalid("instances must be a non-empty list with one instance.")
    if len(instances) > 1:
        raise invalid(f"Only one instance is supported per request, got {len(instances)}.")
    instance = instances[0]
    if not isinstance(instance, dict):
        raise invalid("instances[0] must be an object with a prompt.")
    for name in instance:
        if name != "prompt":
            raise invalid(f"instances[0].{name} is not supported: this model generates images from a prompt "
                          "(editing takes an imagen-*-capability model).")
    prompt = instance.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("instances[0].prompt is required and must be a non-empty string.")
    params = body.get("parameters")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid("parameters must be an object.")
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise invalid(f"Unsupported parameter(s): {', '.join(unknown)}.")
    if gemini_api:
        refused = sorted(set(params) & NOT_ON_GEMINI_API)
        if refused:
            raise invalid(f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not supported in the "
                          "Gemini API.")
    req = ImagenRequest(prompt=prompt)
    if params.get("sampleCount") is not None:
        req.count = integer(params["sampleCount"], "sampleCount", lo=1, hi=MAX_SAMPLES)
    if params.get("seed") is not None:
        req.seed = integer(params["seed"], "seed", lo=0, hi=2**32 - 1)
    if params.get("aspectRatio") is not None:
        req.aspect_ratio = choice(params["aspectRatio"], "aspectRatio", ASPECT_RATIOS)
    if params.get("sampleImageSize") is not None:
        req.image_size = choice(params["sampleImageSize"], "sampleImageSize", IMAGE_SIZES)
    if params.get("negativePrompt") is not None:
        string(params["negativePrompt"], "negativePrompt")
    if params.get("guidanceScale") is not None:
        number(params["guidanceScale"], "guidanceScale")
    if params.get("safetySetting") is not None:
        choice(params["safetySetting"], "safetySetting", SAFETY_SETTINGS)
    if params.get("personGeneration") is not None:
        choice(params["personGeneration"], "personGeneration", PERSON_GENERATION)
    if params.get("language") is not None:
        choice(params["language"], "language", LANGUAGES)
    for flag in ("addWatermark", "includeRaiReason", "includeSafetyAttributes", "enhancePrompt"):
        if params.get(flag) is not None:
            boolean(params[flag], flag)
    req.include_rai_reason = params.get("includeRaiReason") is True
    req.include_safety_attributes = params.get("includeSafetyAttributes") is True
    req.enhance_prompt = params.get("enhancePrompt") is True
    if params.get("storageUri") is not None:
        uri = string(params["storageUri"], "storageUri")
        if not uri.startswith("gs://") or len(uri) <= 5:
            raise invalid(f"storageUri must be a Cloud Storage URI (gs://bucket/path), got {uri!r}.")
        req.storage_uri = uri.rstrip("/")
    options = params.get("outputOptions")
    if options is not None:
        if not isinstance(options, dict):
            raise invalid("outputOptions must be an object.")
        for name in options:
            if name not in ("mimeType", "compressionQuality"):
                raise unknown_name(name, "parameters.output_options")
        if options.get("mimeType") is not None:
            req.mime_type = choice(options["mimeType"], "outputOptions.mimeType", MIME_TYPES)
        if options.get("compressionQuality") is not None:
            req.compression = integer(options["compressionQuality"], "outputOptions.compressionQuality", lo=0, hi=100)
    return req


def _scores(seed: bytes, n: int) -> list[float]:
    # Scores rounded to one decimal, as Vertex rounds them; low, as an e-commerce prompt's are.
    return [round((b % 3) / 10, 1) if b % 4 == 0 else 0.0 for b in seed[:n]]


def image_safety(digest: str) -> dict[str, Any]:
    raw = bytes.fromhex(digest)
    names = [SAFETY_CATEGORIES[i] for i in sorted({raw[0] % len(SAFETY_CATEGORIES), raw[1] % len(SAFETY_CATEGORIES)})]
    return {"categories": names, "scores": [round(0.1 + (b % 2) / 10, 1) for b in raw[2:2 + len(names)]]}


def prompt_safety(prompt: str) -> dict[str, Any]:
    seed = hashlib.blake2b(prompt.encode(), digest_size=len(SAFETY_CATEGORIES)).digest()
    return {"contentType": "Positive Prompt",
            "safetyAttributes": {"categories": list(SAFETY_CATEGORIES), "scores": _scores(seed, len(seed))}}


def enhanced(prompt: str) -> str:
    pick = hashlib.blake2b(prompt.encode(), digest_size=1).digest()[0] % len(ENHANCEMENTS)
    return f"{prompt.strip().rstrip('.')}, {ENHANCEMENTS[pick]}."


async def serve_predict(wire: GoogleWire, request: web.Request, labels: Labels, provider: Provider, model: str,
                        quota_key: str, *, gemini_api: bool) -> web.StreamResponse:
    started = time.perf_counter()
    ctx = wire.ctx
    req = parse_predict(await read_json_object(request, ctx.max_body_bytes), gemini_api=gemini_api)
    labels.provider, labels.model = provider.name, model
    call = Call(provider.name, quota_key, req.count, loop=ctx.loop)
    width, height = req.dimensions
    # The record's pixels, which a gateway's capability drift is read from: the size aspectRatio and sampleImageSize
    # decide, which is the size served.
    call.pixels = width * height
    call.image_format = FORMAT_OF[req.mime_type]
    outcome = await provider.serve(call)
    headers = {"x-request-id": request_id(), "x-processing-ms": str(int((time.perf_counter() - started) * 1000))}
    if outcome.kind is Kind.CONTENT_POLICY:
        # Filtered images are left out of a 200, and named only when asked (includeRaiReason).
        answer: dict[str, Any] = {}
        if req.include_rai_reason:
            answer["predictions"] = [{"raiFilteredReason": filtered_reason(req.count)}]
        if req.include_safety_attributes:
            answer.setdefault("predictions", []).append(prompt_safety(req.prompt))
        headers["x-cost-usd"] = "0.0000"
        return web.Response(text=json.dumps(answer), content_type="application/json", headers=headers)
    if not outcome.ok:
        return wire.failure(outcome, model, "predict", headers)
    salt = headers["x-request-id"]
    rewritten = enhanced(req.prompt) if req.enhance_prompt else None
    predictions = []
    for i in range(req.count):
        digest = digest_for(req.prompt, f"{provider.name}:{req.seed}:{i}" if req.seed is not None else f"{salt}:{i}")
        prediction: dict[str, Any] = {"mimeType": req.mime_type}
        if req.storage_uri is not None:
            prediction["gcsUri"] = f"{req.storage_uri}/{digest}/sample_{i}.{EXTENSION[req.mime_type]}"
        elif req.mime_type == "image/png":
            prediction["bytesBase64Encoded"] = await ctx.images.b64(provider, digest, width, height)
        else:
            nbytes = ctx.images.nbytes(provider, width, height)
            base = ctx.images.base_now(width, height, nbytes) or await ctx.images.base(width, height, nbytes)
            prediction["bytesBase64Encoded"] = await asyncio.to_thread(
                reencoded_b64, base.png(digest), FORMAT_OF[req.mime_type], req.compression)
        if rewritten is not None:
            prediction["prompt"] = rewritten
        if req.include_safety_attributes:
            prediction["safetyAttributes"] = image_safety(digest)
        predictions.append(prediction)
    if req.include_safety_attributes:
        predictions.append(prompt_safety(req.prompt))
    headers["x-cost-usd"] = f"{provider.profile.price_for(provider.name) * req.count:.4f}"
    return web.Response(text=json.dumps({"predictions": predictions}), content_type="application/json",
                        headers=headers)
