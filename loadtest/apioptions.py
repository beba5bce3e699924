"""Which `[client]` request options each API takes, checked as the real API would check them.

A scenario that asks dall-e-3 for `quality = "low"`, streams from Imagen or edits through the relay
would meet a 400 on every request of the run; it is refused when the scenario loads instead, with
every mistake at once. The rules are the mock's own record of the real APIs (mockprovider's
openai_models, generate_content and imagen), so the suite and the mock cannot disagree. For a
target that is a base URL, the model's rules are used when its name is a model the mock knows,
and only the API's own options are checked otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mockprovider.wire.openai_models import ALIASES, DEFAULT_FAMILY, FAMILIES, ModelRules

__all__ = ["check", "openai_rules", "DEFAULT_FAMILY", "OPTION_APIS", "EDIT_APIS"]

# option -> the APIs whose clients send it
OPTION_APIS: dict[str, tuple[str, ...]] = {
    "quality": ("openai", "relay"),
    "size": ("openai", "relay"),
    "output_format": ("openai",),
    "output_compression": ("openai",),
    "background": ("openai",),
    "moderation": ("openai",),
    "input_fidelity": ("openai",),
    "stream": ("openai",),
    "partial_images": ("openai",),
    "aspect_ratio": ("vertex", "gemini"),
    "image_size": ("gemini",),
}
EDIT_APIS = ("openai", "gemini")          # /images/edits; Gemini's generateContent with the photo as inlineData
OUTPUT_FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("transparent", "opaque", "auto")
MODERATIONS = ("low", "auto")
INPUT_FIDELITIES = ("high", "low")
MAX_PARTIAL_IMAGES = 3


def openai_rules(model: str, family: str | None) -> ModelRules | None:
    """The OpenAI model's request rules: its profile's family on the mock, else a real model's by name."""
    if family:
        return FAMILIES.get(family)
    name = ALIASES.get(model, model)
    return FAMILIES.get(name)


def check(options: Mapping[str, Any], api: str, model: str, *, family: str | None, add: Callable[[str], None],
          where: str = "client", after: str = "") -> None:
    """Report each option the target's API or model does not take; `options` holds only what was set."""
    suffix = f" ({after})" if after else ""
    for name in options:
        apis = OPTION_APIS.get(name)
        if apis is not None and api not in apis:
            add(f"{where}.{name} is not an option of the {api} API (the suite sends it to "
                f"{' and '.join(apis)}){suffix}")
    operation = options.get("operation", "generate")
    if operation == "edit" and api not in EDIT_APIS:
        add(f"{where}.operation = \"edit\": the {api} API has no image edits the suite can call (edits go "
            f"through {', '.join(EDIT_APIS)}){suffix}")
    if api == "openai":
        rules = openai_rules(model, family)
        if rules is not None:
            _check_openai(options, rules, model, add, where, suffix)
    elif api == "gemini":
        _check_gemini(options, model, add, where, suffix)
    elif api == "relay" and ("size" in options or "quality" in options):
        from mockprovider.wire.relay import QUALITIES, SIZE_NAMES
        if options.get("size") is not None and options["size"] not in SIZE_NAMES:
            add(f"{where}.size {options['size']!r} is not a size the relay takes ({', '.join(SIZE_NAMES)}){suffix}")
        if options.get("quality") is not None and options["quality"] not in QUALITIES:
            add(f"{where}.quality {options['quality']!r} is not a quality the relay takes "
                f"({', '.join(sorted(QUALITIES))}){suffix}")
    elif api == "vertex" and "aspect_ratio" in options:
        from mockprovider.wire.imagen import ASPECT_RATIOS
        if options["aspect_ratio"] not in ASPECT_RATIOS:
            add(f"{where}.aspect_ratio {options['aspect_ratio']!r} is not one Imagen takes "
                f"({', '.join(ASPECT_RATIOS)}){suffix}")


def _check_openai(options: Mapping[str, Any], rules: ModelRules, model: str, add: Callable[[str], None],
                  where: str, suffix: str) -> None:
    quality = options.get("quality")
    if quality is not None and quality not in rules.qualities:
        add(f"{where}.quality {quality!r} is not a quality of {model} ({', '.join(rules.qualities)}){suffix}")
    if options.get("stream") and not rules.stream:
        add(f"{where}.stream: {model} does not stream (the gpt-image models do){suffix}")
    if options.get("operation") == "edit" and not rules.edits:
        add(f"{where}.operation = \"edit\": {model} has no image edits{suffix}")
    if not (rules.gpt_image or rules.lenient):
        for name in ("output_format", "output_compression", "background", "moderation"):
            if name in options:
                add(f"{where}.{name} is a gpt-image option; {model} does not take it{suffix}")
    if "input_fidelity" in options:
        if options.get("operation") != "edit":
            add(f"{where}.input_fidelity applies to edits (operation = \"edit\"){suffix}")
        elif rules.input_fidelity is None:
            add(f"{where}.input_fidelity: {model} takes no input_fidelity{suffix}")
        elif options["input_fidelity"] not in rules.input_fidelity:
            add(f"{where}.input_fidelity {options['input_fidelity']!r} is not one {model} takes "
                f"({', '.join(rules.input_fidelity)}){suffix}")
    size = options.get("size")
    if size is not None and rules.flexible is None and not rules.capped_sizes and size not in rules.sizes:
        add(f"{where}.size {size!r} is not a size of {model} ({', '.join(rules.sizes)}){suffix}")
    if options.get("background") == "transparent" and not rules.transparent:
        add(f"{where}.background = \"transparent\": {model} has no transparent backgrounds{suffix}")
    edit = options.get("edit")
    if options.get("operation") == "edit" and isinstance(edit, Mapping):
        if edit.get("images", 1) > rules.max_images:
            add(f"{where}.edit.images: {model} takes at most {rules.max_images} image(s) in one edit{suffix}")
        if rules.square_input and (edit.get("width") != edit.get("height") or edit.get("format") != "png"):
            add(f"{where}.edit: {model} edits one square PNG (e.g. edit = {{ size = \"1024x1024\", "
                f"format = \"png\" }}){suffix}")
        if "image/" + str(edit.get("format", "png")) not in rules.image_types:
            add(f"{where}.edit.format {edit.get('format')!r}: {model} takes {', '.join(rules.image_types)}{suffix}")


def _check_gemini(options: Mapping[str, Any], model: str, add: Callable[[str], None], where: str,
                  suffix: str) -> None:
    from mockprovider.wire.generate_content import FLASH_IMAGE, IMAGE_MODELS
    image_model = IMAGE_MODELS.get(model, FLASH_IMAGE)
    ratio = options.get("aspect_ratio")
    if ratio is not None and ratio not in image_model.aspect_ratios:
        add(f"{where}.aspect_ratio {ratio!r} is not one {model} takes ({', '.join(image_model.aspect_ratios)})"
            f"{suffix}")
    size = options.get("image_size")
    if size is not None and size not in image_model.tokens_by_size:
        add(f"{where}.image_size {size!r} is not one {model} takes ({', '.join(image_model.tokens_by_size)})"
            f"{suffix}")
