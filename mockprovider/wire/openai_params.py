"""The parameters of an image generation or edit, checked as the real API checks them, per model.

Error wording follows what the real API answers where its answers are on public record
("Unknown parameter: 'response_format'.", "Invalid value: '512x512'. Supported values are: ...",
"Invalid size '1792x936'. Width and height must both be divisible by 16.", "Transparent background
is not supported for this model."); the other messages are written in the same style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .common import WireError, field
from .openai_models import ModelRules

# Every parameter openai-python (`resources/images.py`) sends, per route.
GENERATE_PARAMS = frozenset({
    "model", "prompt", "background", "complexity", "frame_count", "frame_duration_ms", "moderation", "n",
    "output_compression", "output_format", "partial_images", "quality", "response_format", "safety_identifier",
    "size", "stream", "style", "svg", "user"})
EDIT_PARAMS = frozenset({
    "model", "prompt", "image", "mask", "markup", "background", "complexity", "frame_count", "frame_duration_ms",
    "input_fidelity", "n", "output_compression", "output_format", "partial_images", "quality", "response_format",
    "safety_identifier", "size", "stream", "svg", "user"})
# GIF and SVG output and markup images belong to models the mock does not serve.
NOT_SERVED = ("frame_count", "frame_duration_ms", "svg", "markup")
GPT_IMAGE_ONLY = ("background", "moderation", "output_format", "output_compression", "partial_images",
                  "complexity")
# Multipart form fields arrive as text: these are read as numbers, this as a boolean.
FORM_INTEGERS = ("n", "output_compression", "partial_images", "frame_count", "frame_duration_ms")
FORM_BOOLEANS = ("stream",)

SIZE_RE = re.compile(r"^([1-9][0-9]{0,5})x([1-9][0-9]{0,5})\Z")


@dataclass
class ImageRequest:
    """A checked request: what was asked, and what the mock renders for it."""

    prompt: str
    n: int
    size: str                  # as asked ("auto" stays "auto")
    width: int                 # as rendered
    height: int
    quality: str               # as asked
    rendered_quality: str      # "auto" resolved
    background: str            # as asked ("auto" for gpt-image when not given)
    output_format: str
    output_compression: int | None
    response_format: str       # "b64_json" for gpt-image
    stream: bool
    partial_images: int
    safety_identifier: str | None
    input_fidelity: str | None = None

    @property
    def rendered_background(self) -> str:
        return "transparent" if self.background == "transparent" else "opaque"

    @property
    def rendered_size(self) -> str:
        return f"{self.width}x{self.height}"


def listed(values: tuple[str, ...]) -> str:
    """'a', 'b', and 'c' / 'a' and 'b' / 'a', as the real API lists supported values."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise WireError(400, f"Invalid value: '{value}'. Supported values are: {listed(allowed)}.",
                        code="invalid_value", param=name)
    return value


def unknown_parameter(name: str) -> WireError:
    return WireError(400, f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)


def unsupported_parameter(name: str) -> WireError:
    return WireError(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                     code="unsupported_parameter", param=name)


def integer_in(body: dict[str, Any], name: str, lo: int, hi: int, default: int | None) -> int | None:
    value = field(body, name, int, default=default)
    if value is None:
        return None
    if value < lo:
        raise WireError(400, f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}, but got "
                             f"{value} instead.", code="integer_below_min_value", param=name)
    if value > hi:
        raise WireError(400, f"Invalid '{name}': integer above maximum value. Expected a value <= {hi}, but got "
                             f"{value} instead.", code="integer_above_max_value", param=name)
    return int(value)


def from_form(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart text fields as the JSON types the checks expect; a field that is not one is a 400."""
    body: dict[str, Any] = dict(fields)
    for name in FORM_INTEGERS:
        if name in body:
            try:
                body[name] = int(body[name].strip())
            except ValueError:
                raise WireError(400, f"Invalid type for '{name}': expected an integer, but got a string instead.",
                                code="invalid_type", param=name) from None
    for name in FORM_BOOLEANS:
        if name in body:
            text = body[name].strip().lower()
            if text not in ("true", "false"):
                raise WireError(400, f"Invalid type for '{name}': expected a boolean, but got a string instead.",
                                code="invalid_type", param=name)
            body[name] = text == "true"
    return body


def check_names(body: dict[str, Any], known: frozenset[str], rules: ModelRules) -> None:
    """Parameters this route does not have, or this model does not take, by name."""
    for name in body:
        if name not in known:
            raise unknown_parameter(name)
    given = [name for name, value in body.items() if value is not None]
    for name in given:
        if name in NOT_SERVED:
            raise unsupported_parameter(name)
        if rules.gpt_image and name in ("response_format", "style"):
            raise unknown_parameter(name)
        if not rules.gpt_image and not rules.lenient and name in GPT_IMAGE_ONLY:
            raise unknown_parameter(name)
        if name == "style" and not rules.style:
            raise unknown_parameter(name)
        if name == "input_fidelity" and rules.input_fidelity is None:
            raise unsupported_parameter(name) if rules.gpt_image else unknown_parameter(name)


def check_prompt(body: dict[str, Any], rules: ModelRules) -> str:
    prompt: str = field(body, "prompt", str, required=True)
    if not prompt.strip():
        raise WireError(400, "Invalid 'prompt': empty string. Expected a string with minimum length 1.",
                        code="empty_string", param="prompt")
    if len(prompt) > rules.max_prompt:
        raise WireError(400, f"Invalid 'prompt': string too long. Expected a string with maximum length "
                             f"{rules.max_prompt}, but got a string with length {len(prompt)} instead.",
                        code="string_above_max_length", param="prompt")
    return prompt


def check_size(size: str, rules: ModelRules, sizes: tuple[str, ...]) -> tuple[int, int]:
    """(width, height) as rendered for a size this model takes; "auto" renders square."""
    if size == "auto" and "auto" in sizes:
        return 1024, 1024
    if size in sizes:
        named_w, _, named_h = size.partition("x")
        return int(named_w), int(named_h)
    flex = rules.flexible
    match = SIZE_RE.match(size) if flex is not None else None
    if flex is None or match is None:
        if flex is not None:
            raise WireError(400, f"Invalid size '{size}'. Expected 'auto' or WIDTHxHEIGHT, for example '1536x864'.",
                            code="invalid_value", param="size")
        raise WireError(400, f"Invalid value: '{size}'. Supported values are: {listed(sizes)}.",
                        code="invalid_value", param="size")
    w, h = int(match.group(1)), int(match.group(2))
    problem = None
    if w % flex.multiple or h % flex.multiple:
        problem = f"Width and height must both be divisible by {flex.multiple}."
    elif max(w, h) > flex.max_edge:
        problem = f"Width and height must each be at most {flex.max_edge} pixels."
    elif max(w, h) > flex.max_ratio * min(w, h):
        problem = f"The aspect ratio must be between 1:{flex.max_ratio:g} and {flex.max_ratio:g}:1."
    elif not flex.min_pixels <= w * h <= flex.max_pixels:
        problem = f"The total pixel count must be between {flex.min_pixels} and {flex.max_pixels}."
    if problem:
        raise WireError(400, f"Invalid size '{size}'. {problem}", code="invalid_value", param="size")
    return w, h


def check_request(body: dict[str, Any], rules: ModelRules, sizes: tuple[str, ...], *,
                  edit: bool = False) -> ImageRequest:
    """Every parameter but the model, the names (check_names) and the files, in the API's order."""
    prompt = check_prompt(body, rules)
    n = integer_in(body, "n", 1, rules.max_n, 1)
    assert n is not None
    size = field(body, "size", str, default="auto" if rules.gpt_image else "1024x1024")
    width, height = check_size(size, rules, sizes)
    quality = one_of("quality", field(body, "quality", str, default=rules.default_quality), rules.qualities)
    if rules.style:
        one_of("style", field(body, "style", str, default="vivid"), ("vivid", "natural"))
    response_format = "b64_json"
    if rules.response_format:
        response_format = one_of("response_format", field(body, "response_format", str, default="url"),
                                 ("url", "b64_json"))
    background = one_of("background", field(body, "background", str, default="auto"),
                        ("transparent", "opaque", "auto"))
    output_format = one_of("output_format", field(body, "output_format", str, default="png"),
                           ("png", "jpeg", "webp"))
    compression = integer_in(body, "output_compression", 0, 100, None)
    if rules.gpt_image:
        if background == "transparent" and not rules.transparent:
            raise WireError(400, "Transparent background is not supported for this model.", code="invalid_value",
                            param="background")
        if background == "transparent" and output_format == "jpeg":
            raise WireError(400, "Transparent background is not supported for output format 'jpeg'; use 'png' "
                                 "or 'webp'.", code="invalid_value", param="background")
        if compression is not None and compression < 100 and output_format == "png":
            raise WireError(400, "Compression less than 100 is not supported for PNG output format.",
                            code="invalid_value", param="output_compression")
        if not edit:
            one_of("moderation", field(body, "moderation", str, default="auto"), ("low", "auto"))
        one_of("complexity", field(body, "complexity", str, default="medium"), ("low", "medium", "high"))
    fidelity = None
    if edit and rules.input_fidelity is not None:
        fidelity = field(body, "input_fidelity", str)
        if fidelity is not None:
            one_of("input_fidelity", fidelity, rules.input_fidelity)
    stream = bool(field(body, "stream", bool, default=False))
    if stream and not rules.stream:
        raise WireError(400, "Streaming is not supported for this model.", code="unsupported_value",
                        param="stream")
    partial = integer_in(body, "partial_images", 0, 3, 0) if rules.gpt_image else 0
    user = field(body, "user", str)
    safety = field(body, "safety_identifier", str) or user or None
    rendered = rules.auto_quality if quality == "auto" else quality
    return ImageRequest(prompt=prompt, n=n, size=size, width=width, height=height, quality=quality,
                        rendered_quality=rendered, background=background, output_format=output_format,
                        output_compression=compression, response_format=response_format, stream=stream,
                        partial_images=partial or 0, safety_identifier=safety, input_fidelity=fidelity)
