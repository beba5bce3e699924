"""Gemini image generation: `models/{model}:generateContent` (and `:streamGenerateContent`), as Vertex AI and the
Gemini Developer API both serve it. The request is checked as Google's parser checks it (camelCase or
snake_case names, unknown names refused, integral doubles taken as integers); the answer is what google-genai's
`GenerateContentResponse` reads: candidates with text and `inlineData` parts, `finishReason`,
`usageMetadata`, `modelVersion` and `responseId`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..behaviours import Call, Kind
from ..images import MAX_SIDE, digest_for
from ..provider import Provider
from .body import read_json_object
from .common import Labels, request_id
from .google import GoogleError, GoogleWire, choice, integer, invalid, labels_field, number, unknown_name

COMMON_FIELDS = frozenset({"contents", "generationConfig", "safetySettings", "systemInstruction", "tools",
                           "toolConfig", "cachedContent", "serviceTier", "store", "continuationToken"})
VERTEX_ONLY_FIELDS = frozenset({"labels", "modelArmorConfig", "outputConfig"})
GENERATION_CONFIG = frozenset({
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseLogprobs",
    "logprobs", "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
    "responseJsonSchema", "routingConfig", "modelConfig", "responseModalities", "mediaResolution", "speechConfig",
    "audioTimestamp", "thinkingConfig", "imageConfig", "enableEnhancedCivicAnswers", "audioTranscriptionConfig",
    "enableAffectiveDialog", "responseFormat", "translationConfig"})
IMAGE_CONFIG = frozenset({"aspectRatio", "imageSize"})
VERTEX_IMAGE_CONFIG = frozenset({"personGeneration", "prominentPeople", "imageOutputOptions"})
PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
             "codeExecutionResult")
PART_FIELDS = frozenset(PART_DATA) | {"thought", "thoughtSignature", "videoMetadata", "mediaResolution",
                                       "partMetadata"}
MODALITIES = ("TEXT", "IMAGE")
ROLES = ("user", "model")
IMAGE_INPUT_TOKENS = 258   # what Gemini counts an input image as (one tile)
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


@dataclass(frozen=True)
class ImageModel:
    """What one Gemini image model takes: image sizes (with the output tokens an image costs at each) and
    aspect ratios. From Google's model pages; a profile of the mock's own uses the 2.5 Flash Image's."""

    tokens_by_size: dict[str, int]
    aspect_ratios: tuple[str, ...] = ASPECT_RATIOS
    default_size: str = "1K"


# The pixels of each aspect ratio at 1K (Google's table for Gemini image models); "512", "2K" and "4K" scale
# both sides. A ratio not in the table gets a megapixel's area, sides a multiple of 16; a side past the
# mock's MAX_SIDE is scaled down to it (assumed: the mock's ceiling, not Google's 4K 21:9 width).
PIXELS_1K = {"1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184), "4:3": (1184, 864),
             "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344), "16:9": (1344, 768), "21:9": (1536, 672)}
SIZE_SCALE = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}


def image_dimensions(aspect_ratio: str, image_size: str) -> tuple[int, int]:
    """(width, height) of an image of this aspect ratio and size."""
    found = PIXELS_1K.get(aspect_ratio)
    if found is None:
        w, h = (int(side) for side in aspect_ratio.split(":"))
        found = (max(16, round(1024 * math.sqrt(w / h) / 16) * 16), max(16, round(1024 * math.sqrt(h / w) / 16) * 16))
    scale = SIZE_SCALE.get(image_size, 1.0)
    scale = min(scale, MAX_SIDE / max(found))
    return max(1, int(found[0] * scale)), max(1, int(found[1] * scale))


FLASH_IMAGE = ImageModel({"1K": 1290})
IMAGE_MODELS = {
    "gemini-2.5-flash-image": FLASH_IMAGE,
    "gemini-3-pro-image": ImageModel({"1K": 1120, "2K": 1120, "4K": 2000}),
    "gemini-3.1-flash-image": ImageModel({"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
                                         ASPECT_RATIOS + ("1:4", "4:1", "1:8", "8:1")),
}
FILTERED = ("Unable to show the generated image. The image was filtered out because it violated Google's "
            "Generative AI Prohibited Use policy. You will not be charged for blocked images. Try rephrasing the "
            "prompt. If you think this was an error, send feedback.")


def camel(name: str) -> str:
    """Google's JSON parsers take a field's proto name (`generation_config`) as well as its JSON name."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def fields_of(obj: dict[str, Any], known: frozenset[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in obj.items():
        key = camel(name)
        if key not in known:
            raise unknown_name(name, where)
        out[key] = value
    return out


@dataclass
class ContentRequest:
    prompt: str
    input_images: int = 0
    modalities: tuple[str, ...] = MODALITIES
    image_size: str = "1K"
    aspect_ratio: str = "1:1"
    seed: int | None = None
    texts: list[str] = field(default_factory=list)


def _parts(content: Any, i: int, req: ContentRequest) -> None:
    where = f"GenerateContentRequest.contents[{i}]"
    if not isinstance(content, dict):
        raise invalid(f"* {where}: must be a Content object with parts\n")
    content = fields_of(content, frozenset({"role", "parts"}), f"contents[{i}]")
    role = content.get("role")
    if role is not None and role not in ROLES:
        raise invalid(f"* {where}.role: Please use a valid role: {', '.join(ROLES)}.\n")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid(f"* {where}.parts: contents.parts must not be empty.\n")
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise invalid(f"* {where}.parts[{j}]: must be a Part object\n")
        part = fields_of(part, PART_FIELDS, f"contents[{i}].parts[{j}]")
        data = [k for k in PART_DATA if k in part]
        if len(data) != 1:
            raise invalid(f"* {where}.parts[{j}].data: required oneof field 'data' must have one initialized "
                          "field\n")
        kind = data[0]
        if kind == "text":
            if not isinstance(part["text"], str):
                raise invalid(f"* {where}.parts[{j}].text: must be a string\n")
            if role != "model":
                req.texts.append(part["text"])
        elif kind == "inlineData":
            _inline_data(part["inlineData"], f"{where}.parts[{j}].inline_data")
            req.input_images += 1
        elif kind == "fileData":
            blob = part["fileData"]
            if not isinstance(blob, dict) or not isinstance(blob.get("fileUri", blob.get("file_uri")), str):
                raise invalid(f"* {where}.parts[{j}].file_data.file_uri: a file URI is required\n")
            req.input_images += 1


def _inline_data(blob: Any, where: str) -> None:
    if not isinstance(blob, dict):
        raise invalid(f"* {where}: must be a Blob with mimeType and data\n")
    blob = fields_of(blob, frozenset({"mimeType", "data", "displayName"}), where)
    if not isinstance(blob.get("mimeType"), str) or not blob["mimeType"]:
        raise invalid(f"* {where}.mime_type: a MIME type is required\n")
    data = blob.get("data")
    if not isinstance(data, str) or not data:
        raise invalid(f"* {where}.data: data is required\n")
    try:
        base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_" if "-" in data or "_" in data else None,
                         validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed for "
                      f"\"{data[:20]}\"") from None


def parse_generate_content(body: dict[str, Any], model: str, image_model: ImageModel, *,
                           vertex: bool) -> ContentRequest:
    body = fields_of(body, COMMON_FIELDS | (VERTEX_ONLY_FIELDS if vertex else frozenset()), "")
    if "labels" in body:
        labels_field(body["labels"])
    contents = body.get("contents")
    if contents is None or contents == []:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise invalid("Invalid value at 'contents': a list of Content objects is expected.")
    req = ContentRequest(prompt="", image_size=image_model.default_size)
    for i, content in enumerate(contents):
        _parts(content, i, req)
    req.prompt = "\n".join(req.texts)
    config = body.get("generationConfig")
    if config is None:
        return req
    if not isinstance(config, dict):
        raise invalid("Invalid value at 'generation_config': a GenerationConfig object is expected.")
    config = fields_of(config, GENERATION_CONFIG, "generation_config")
    if config.get("candidateCount") is not None:
        if integer(config["candidateCount"], "generation_config.candidate_count", lo=1, hi=8) > 1:
            raise invalid(f"Multiple candidates is not enabled for {model}.")
    for name, lo, hi in (("temperature", 0.0, 2.0), ("topP", 0.0, 1.0)):
        if config.get(name) is not None and not lo <= number(config[name], f"generation_config.{name}") <= hi:
            raise invalid(f"generation_config.{name} must be between {lo} and {hi}, got {config[name]}.")
    for name in ("topK", "maxOutputTokens"):
        if config.get(name) is not None:
            integer(config[name], f"generation_config.{name}", lo=1, hi=2**31 - 1)
    if config.get("seed") is not None:
        req.seed = integer(config["seed"], "generation_config.seed", lo=-(2**31), hi=2**31 - 1)
    modalities = config.get("responseModalities")
    if modalities is not None:
        if not isinstance(modalities, list) or not modalities:
            raise invalid("Invalid value at 'generation_config.response_modalities': a list of modalities "
                          "(TEXT, IMAGE) is expected.")
        asked = []
        for k, m in enumerate(modalities):
            if not isinstance(m, str) or m.upper() not in MODALITIES:
                raise invalid(f"Invalid value at 'generation_config.response_modalities[{k}]' "
                              f"(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality)"
                              f", {json.dumps(m)[:40]}")
            asked.append(m.upper())
        req.modalities = tuple(m for m in MODALITIES if m in asked)
    image_config = config.get("imageConfig")
    if image_config is not None:
        if not isinstance(image_config, dict):
            raise invalid("Invalid value at 'generation_config.image_config': an ImageConfig object is expected.")
        image_config = fields_of(image_config, IMAGE_CONFIG | (VERTEX_IMAGE_CONFIG if vertex else frozenset()),
                                 "generation_config.image_config")
        if image_config.get("aspectRatio") is not None:
            req.aspect_ratio = choice(image_config["aspectRatio"], "generation_config.image_config.aspect_ratio",
                                      image_model.aspect_ratios)
        size = image_config.get("imageSize")
        if size is not None:
            if size not in image_model.tokens_by_size:   # exact: Google refuses "1k"
                raise invalid(f"generation_config.image_config.image_size {json.dumps(size)[:20]} is not supported "
                              f"by {model}; supported: {', '.join(image_model.tokens_by_size)}.")
            req.image_size = size
        person = image_config.get("personGeneration")
        if person is not None:
            choice(person, "generation_config.image_config.person_generation",
                   ("ALLOW_ALL", "ALLOW_ADULT", "ALLOW_NONE"))
    return req


def text_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0   # about four characters a token


def _response_id(rid: str) -> str:
    return base64.urlsafe_b64encode(hashlib.blake2b(rid.encode(), digest_size=16).digest()).decode().rstrip("=")


def caption(prompt: str) -> str:
    subject = " ".join(prompt.split())[:120] or "your image"
    return f"Here is the image: {subject}"


def _usage(req: ContentRequest, image_tokens: int, text_out: str, vertex: bool) -> dict[str, Any]:
    prompt_text = text_tokens(req.prompt)
    prompt_details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if req.input_images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": IMAGE_INPUT_TOKENS * req.input_images})
    prompt_total = prompt_text + IMAGE_INPUT_TOKENS * req.input_images
    out = [("IMAGE", image_tokens), ("TEXT", text_tokens(text_out))]
    out_details = [{"modality": modality, "tokenCount": n} for modality, n in out if n]
    out_total = image_tokens + text_tokens(text_out)
    usage: dict[str, Any] = {"promptTokenCount": prompt_total, "candidatesTokenCount": out_total,
                             "totalTokenCount": prompt_total + out_total, "promptTokensDetails": prompt_details}
    if out_details:
        usage["candidatesTokensDetails"] = out_details
    if vertex:
        usage["trafficType"] = "ON_DEMAND"
    return usage


async def serve_generate_content(wire: GoogleWire, request: web.Request, labels: Labels, provider: Provider,
                                 model: str, quota_key: str, *, vertex: bool, stream: bool) -> web.StreamResponse:
    started = time.perf_counter()
    ctx = wire.ctx
    image_model = IMAGE_MODELS.get(provider.name, FLASH_IMAGE)
    req = parse_generate_content(await read_json_object(request, ctx.max_body_bytes), model, image_model,
                                 vertex=vertex)
    if stream and request.query.get("alt", "json") not in ("sse", "json"):
        raise GoogleError(400, f"Invalid value for alt: {request.query['alt']!r}; use sse or json.")
    labels.provider, labels.model = provider.name, model
    wants_image = "IMAGE" in req.modalities
    width, height = image_dimensions(req.aspect_ratio, req.image_size)
    call = Call(provider.name, quota_key, 1, loop=ctx.loop)
    if wants_image:
        call.pixels = width * height   # the record's pixels (a gateway's capability drift): imageConfig's size
        call.image_format = "png"
    outcome = await provider.serve(call)
    rid = request_id()
    headers = {"x-request-id": rid, "x-processing-ms": str(int((time.perf_counter() - started) * 1000))}
    if not outcome.ok and outcome.kind is not Kind.CONTENT_POLICY:
        return wire.failure(outcome, model, "generateContent", headers)
    meta: dict[str, Any] = {"modelVersion": model, "responseId": _response_id(rid)}
    if vertex:
        meta["createTime"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    chunks: list[dict[str, Any]]
    if outcome.kind is Kind.CONTENT_POLICY:
        # The image was generated and then blocked: a 200 with no content, its reason in finishReason.
        headers["x-cost-usd"] = "0.0000"
        candidate = {"finishReason": "IMAGE_SAFETY", "finishMessage": FILTERED, "index": 0}
        chunks = [{"candidates": [candidate], "usageMetadata": _usage(req, 0, "", vertex), **meta}]
    else:
        text = caption(req.prompt) if "TEXT" in req.modalities else ""
        parts: list[dict[str, Any]] = []
        if text:
            parts.append({"text": text})
        image_tokens = 0
        if wants_image:
            # A seed makes the image repeatable, as Gemini's seed does (best effort there, exact here).
            salt = f"{provider.name}:{req.seed}" if req.seed is not None else rid
            digest = digest_for(req.prompt, f"{salt}:{req.input_images}")
            image = await ctx.images.b64(provider, digest, width, height)
            parts.append({"inlineData": {"mimeType": "image/png", "data": image}})
            image_tokens = image_model.tokens_by_size.get(req.image_size, 1290)
        headers["x-cost-usd"] = f"{provider.profile.price_for(provider.name) if wants_image else 0.0:.4f}"
        usage = _usage(req, image_tokens, text, vertex)
        if stream and len(parts) > 1:
            # Streamed, the text comes first and the image with the finish reason and the usage.
            first = {"candidates": [{"content": {"role": "model", "parts": parts[:1]}, "index": 0}], **meta}
            last = {"candidates": [{"content": {"role": "model", "parts": parts[1:]}, "finishReason": "STOP",
                                    "index": 0}], "usageMetadata": usage, **meta}
            chunks = [first, last]
        else:
            candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            chunks = [{"candidates": [candidate], "usageMetadata": usage, **meta}]
    if not stream:
        return web.Response(text=json.dumps(chunks[0]), content_type="application/json", headers=headers)
    if request.query.get("alt") != "sse":   # without alt=sse Google streams one JSON array
        return web.Response(text=json.dumps(chunks), content_type="application/json", headers=headers)
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
    await response.write_eof()
    return response
