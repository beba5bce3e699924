"""The buttons of a finished task and what pressing one (POST /mj/submit/action with its customId) does.

A grid (IMAGINE, VARIATION, a reroll, zoom or pan) is four images in one 2x2 picture; its buttons are
U1-U4 (upscale: take one image out of the grid), the reroll and V1-V4 (variations: a new grid from
one image), with the customIds Discord gives them (`MJ::JOB::upsample::2::<message hash>`). An
upscaled image has the v7 buttons: Upscale (Subtle)/(Creative) at 2x, Vary (Subtle)/(Strong), Zoom
Out 2x/1.5x, the four pans and the reroll. Vary (Region) and Custom Zoom need a modal
(/mj/submit/modal) that the mock does not simulate, so they are not offered.

Each action costs its own share of the model's generation time and price (`latency`, `cost`:
assumed figures, PROFILES.md says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

GRID_IMAGES = 4   # one IMAGINE answers four images, as one 2x2 grid at one imageUrl
GRID_PX = 2048    # a grid task's image: the 2x2 grid of 1024x1024 images (assumed)
IMAGE_PX = 1024   # an upscale's image: one of the grid's four

GRID_ACTIONS = frozenset({"IMAGINE", "VARIATION", "REROLL", "ZOOM", "PAN", "BLEND"})


@dataclass(frozen=True)
class ActionSpec:
    action: str       # the new task's action
    grid: bool        # the new task is a grid of four
    latency: float    # x a grid's generation time drawn for the model
    cost: float       # x the model's price per grid
    label: str        # as it reads in the new task's description


UPSCALE = ActionSpec("UPSCALE", False, 0.25, 0.0, "U")
VARIATION = ActionSpec("VARIATION", True, 1.0, 1.0, "V")
REROLL = ActionSpec("REROLL", True, 1.0, 1.0, "R")
UPSCALE_HD = ActionSpec("UPSCALE_HD", False, 2.0, 2.0, "Upscale")
ZOOM = ActionSpec("ZOOM", True, 1.0, 1.0, "Zoom Out")
PAN = ActionSpec("PAN", True, 1.0, 1.0, "Pan")

# customId prefix -> what it does; the index or variant follows the prefix
_PATTERNS: tuple[tuple[re.Pattern[str], ActionSpec], ...] = (
    (re.compile(r"MJ::JOB::upsample::([1-4])::[\w-]+\Z"), UPSCALE),
    (re.compile(r"MJ::JOB::variation::([1-4])::[\w-]+\Z"), VARIATION),
    (re.compile(r"MJ::JOB::reroll::0::[\w-]+::SOLO\Z"), REROLL),
    (re.compile(r"MJ::JOB::(low|high)_variation::1::[\w-]+::SOLO\Z"), VARIATION),
    (re.compile(r"MJ::JOB::upsample_v7_2x_(subtle|creative)::1::[\w-]+::SOLO\Z"), UPSCALE_HD),
    (re.compile(r"MJ::Outpaint::(50|75)::1::[\w-]+::SOLO\Z"), ZOOM),
    (re.compile(r"MJ::JOB::pan_(left|right|up|down)::1::[\w-]+::SOLO\Z"), PAN),
)
_KNOWN_PREFIXES = ("MJ::JOB::", "MJ::Outpaint::", "MJ::Inpaint::", "MJ::CustomZoom::", "MJ::Job::PicReader",
                   "MJ::Picread::")


def parse_custom_id(custom_id: str) -> tuple[ActionSpec, str] | None:
    """What a customId does and its index or variant ("2", "subtle", "left"), or None if unknown."""
    for pattern, spec in _PATTERNS:
        m = pattern.match(custom_id)
        if m:
            return spec, (m.group(1) if m.groups() else "")
    return None


def is_midjourney_custom_id(custom_id: str) -> bool:
    return custom_id.startswith(_KNOWN_PREFIXES)


def _button(custom_id: str, label: str = "", emoji: str = "") -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": 2}


def buttons(grid: bool, message_hash: str) -> list[dict[str, Any]]:
    """A finished task's buttons, in Discord's order."""
    h = message_hash
    if grid:
        return ([_button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)]
                + [_button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="\U0001f504")]
                + [_button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)])
    return [_button(f"MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)", "upscale_1"),
            _button(f"MJ::JOB::upsample_v7_2x_creative::1::{h}::SOLO", "Upscale (Creative)", "upscale_1"),
            _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "\U0001fa84"),
            _button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "\U0001fa84"),
            _button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "\U0001f50d"),
            _button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "\U0001f50d"),
            _button(f"MJ::JOB::pan_left::1::{h}::SOLO", emoji="\u2b05\ufe0f"),
            _button(f"MJ::JOB::pan_right::1::{h}::SOLO", emoji="\u27a1\ufe0f"),
            _button(f"MJ::JOB::pan_up::1::{h}::SOLO", emoji="\u2b06\ufe0f"),
            _button(f"MJ::JOB::pan_down::1::{h}::SOLO", emoji="\u2b07\ufe0f"),
            _button(f"MJ::JOB::reroll::0::{h}::SOLO", emoji="\U0001f504")]


def custom_id_for_change(action: str, index: int | None, message_hash: str) -> str:
    """/mj/submit/change's (action, index) as the button it stands for."""
    if action == "UPSCALE":
        return f"MJ::JOB::upsample::{index}::{message_hash}"
    if action == "VARIATION":
        return f"MJ::JOB::variation::{index}::{message_hash}"
    return f"MJ::JOB::reroll::0::{message_hash}::SOLO"
