"""What each OpenAI image model accepts, as the real API checks it, and the tokens it bills.

A profile of the `openai` API names its `family`: the real model whose rules it follows
(a profile of one's own built on `gpt-image-1` follows gpt-image-1's). Plain data; the
checks that use it live in `openai_params.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MB = 1024 * 1024
GPT_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALL_E_2_SIZES = ("256x256", "512x512", "1024x1024")
DALL_E_3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
# The seed's sizes, capped by each profile's max_size.
SEED_SIZES = ("256x256", "512x512", "1024x1024", "1024x1792", "1792x1024")
GPT_QUALITIES = ("low", "medium", "high", "auto")
ALL_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class FlexibleSizes:
    """gpt-image-2's arbitrary WIDTHxHEIGHT (openai-python `image_generate_params.py`; Azure's
    gpt-image-2 notes give the pixel range): edges multiples of 16, at most 3840, aspect within 3:1."""

    multiple: int = 16
    max_edge: int = 3840
    max_ratio: float = 3.0
    min_pixels: int = 655_360
    max_pixels: int = 8_294_400


@dataclass(frozen=True)
class ModelRules:
    family: str
    gpt_image: bool                        # b64 only, usage, background/output_format/moderation
    sizes: tuple[str, ...]                 # the sizes named one by one ("auto" where it is one)
    qualities: tuple[str, ...]
    default_quality: str
    auto_quality: str = "high"             # what quality "auto" renders as (assumed: the model's best)
    max_prompt: int = 32_000
    max_n: int = 10
    flexible: FlexibleSizes | None = None  # any WxH within these limits, besides `sizes`
    capped_sizes: bool = False             # `sizes` limited by the profile's max_size (the seed's dall-e-4)
    style: bool = False                    # vivid/natural (dall-e-3)
    response_format: bool = False          # url or b64_json (the DALL-E models)
    revised_prompt: bool = False           # answers the prompt it rewrote (dall-e-3)
    transparent: bool = True               # background=transparent allowed (gpt-image)
    stream: bool = False
    lenient: bool = False                  # takes the gpt-image options and ignores them (the seed's model)
    input_fidelity: tuple[str, ...] | None = None   # None: not a parameter of this model
    edits: bool = True
    edit_sizes: tuple[str, ...] | None = None       # None: as `sizes`
    max_images: int = 16                   # images in one edit
    image_bytes: int = 50 * MB             # each, and "less than" it
    image_types: tuple[str, ...] = ALL_IMAGE_TYPES
    square_input: bool = False             # dall-e-2 edits want a square PNG


def _gpt(family: str, *, fidelity: tuple[str, ...] | None, flexible: FlexibleSizes | None = None,
         transparent: bool = True) -> ModelRules:
    return ModelRules(family=family, gpt_image=True, sizes=GPT_SIZES, qualities=GPT_QUALITIES,
                      default_quality="auto", flexible=flexible, transparent=transparent, stream=True,
                      input_fidelity=fidelity)


FAMILIES: dict[str, ModelRules] = {rules.family: rules for rules in (
    ModelRules(family="dall-e-2", gpt_image=False, sizes=DALL_E_2_SIZES, qualities=("standard",),
               default_quality="standard", auto_quality="standard", max_prompt=1000, response_format=True,
               max_images=1, image_bytes=4 * MB, image_types=("image/png",), square_input=True),
    ModelRules(family="dall-e-3", gpt_image=False, sizes=DALL_E_3_SIZES, qualities=("standard", "hd"),
               default_quality="standard", auto_quality="standard", max_prompt=4000, max_n=1, style=True,
               response_format=True, revised_prompt=True, edits=False),
    # The seed's model: the DALL-E request shape with every size up to its max_size and every quality,
    # and the gpt-image options taken and ignored, as the seed's mock did.
    ModelRules(family="dall-e-4", gpt_image=False, sizes=SEED_SIZES,
               qualities=("standard", "hd", "low", "medium", "high", "auto"), default_quality="standard",
               auto_quality="standard", max_prompt=4000, capped_sizes=True, style=True, response_format=True,
               revised_prompt=True, lenient=True),
    _gpt("gpt-image-1", fidelity=("high", "low")),
    _gpt("gpt-image-1-mini", fidelity=("low",)),
    _gpt("gpt-image-1.5", fidelity=("high", "low")),
    # "For gpt-image-2, omit this parameter" (input_fidelity); transparent backgrounds are refused
    # ("Transparent background is not supported for this model.", seen from the real API).
    _gpt("gpt-image-2", fidelity=None, flexible=FlexibleSizes(), transparent=False),
)}
DEFAULT_FAMILY = "dall-e-4"

# Dated snapshot ids the SDK names, served by the profile of their model.
ALIASES = {"gpt-image-2-2026-04-21": "gpt-image-2"}


def rules_for(family: str) -> ModelRules:
    return FAMILIES[family or DEFAULT_FAMILY]


# --- tokens (gpt-image answers carry `usage`) -----------------------------------------------

# Output image tokens per image, from OpenAI's published gpt-image-1 table; the other gpt-image
# models are assumed to bill the same, and sizes outside the table scale with their pixels.
OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


def output_tokens(quality: str, width: int, height: int) -> int:
    table = OUTPUT_TOKENS.get(quality, OUTPUT_TOKENS["high"])
    exact = table.get(f"{width}x{height}")
    if exact is not None:
        return exact
    return max(1, round(table["1024x1024"] * width * height / (1024 * 1024)))


def text_tokens(prompt: str) -> int:
    """About four characters a token (assumed; the mock carries no tokenizer)."""
    return max(1, math.ceil(len(prompt) / 4))


def input_image_tokens(width: int, height: int, fidelity: str | None) -> int:
    """An input image as GPT-4o-class vision bills it (fit in 2048 px, shortest side 768 px, 170 tokens
    a 512 px tile plus 85), and high input fidelity's extra (assumed: 4,160 square, 6,240 otherwise)."""
    scale = min(1.0, 2048 / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    tokens = 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)
    if fidelity == "high":
        tokens += 4160 if width == height else 6240
    return tokens


def usage(prompt: str, quality: str, width: int, height: int, n: int, image_tokens: int = 0,
          *, details: bool = True) -> dict[str, object]:
    """The `usage` object of an answer (openai-python `images_response.py` `Usage`); a stream's
    completed event carries it without `output_tokens_details` (`image_gen_completed_event.py`)."""
    text = text_tokens(prompt)
    out = output_tokens(quality, width, height) * n
    body: dict[str, object] = {
        "input_tokens": text + image_tokens,
        "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text},
        "output_tokens": out,
        "total_tokens": text + image_tokens + out,
    }
    if details:
        body["output_tokens_details"] = {"image_tokens": out, "text_tokens": 0}
    return body


# --- price (the mock's own x-cost-usd header) ------------------------------------------------

# OpenAI's published DALL-E prices per image; a profile's price_usd is the reference cell's
# (standard 1024x1024), and the other cells keep the published proportions.
DALL_E_PRICES = {
    "dall-e-2": {("standard", "256x256"): 0.016, ("standard", "512x512"): 0.018,
                 ("standard", "1024x1024"): 0.020},
    "dall-e-3": {("standard", "1024x1024"): 0.040, ("standard", "1024x1792"): 0.080,
                 ("standard", "1792x1024"): 0.080, ("hd", "1024x1024"): 0.080, ("hd", "1024x1792"): 0.120,
                 ("hd", "1792x1024"): 0.120},
}


def price_factor(rules: ModelRules, quality: str, width: int, height: int) -> float:
    """One image's price over the profile's price_usd (which is one reference image's): gpt-image
    bills output tokens, so a medium 1024x1024 image is the reference; DALL-E by its table."""
    if rules.gpt_image:
        return output_tokens(quality, width, height) / output_tokens("medium", 1024, 1024)
    table = DALL_E_PRICES.get(rules.family)
    if table is None:
        return 1.0
    return table.get((quality, f"{width}x{height}"), table[("standard", "1024x1024")]) / table[("standard",
                                                                                                 "1024x1024")]
