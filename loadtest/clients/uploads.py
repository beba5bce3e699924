"""The product photos an edit uploads, and their masks: drawn with Pillow once per process, never per request.

A catalog's background replacement sends a product photo and a mask whose transparent part (the
background) is what the model may repaint. The photos here are studio shots in miniature: a
seamless backdrop with a soft vignette, a product silhouette (a sneaker, a handbag, a bottle, a
watch, a mug, a backpack) in a catalog colour with shading and a floor shadow, and sensor-like
noise so they compress as photographs do (a 1024x1024 JPEG at quality 90 is about 200 KB, as a
catalog's photos are; a PNG about 1 MB). The same seed draws the same bytes in every process.

Pillow is imported by the functions that draw, on the first edit's photos: a scenario that never
edits never imports it into the Locust process.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

SHAPES = ("sneaker", "handbag", "bottle", "watch", "mug", "backpack")
COLOURS = ((178, 34, 52), (24, 63, 121), (32, 32, 36), (196, 148, 92), (62, 120, 78), (230, 226, 214),
           (122, 76, 140), (214, 110, 40))
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
SEED = 20_261_124


@dataclass(frozen=True)
class Photo:
    name: str           # the product it shows, e.g. "sneaker-3"
    filename: str
    mimetype: str
    data: bytes
    mask: bytes         # RGBA PNG of the same size: the background transparent, the product opaque

    @property
    def b64(self) -> str:
        return _b64(self.data)


@lru_cache(maxsize=64)
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@lru_cache(maxsize=8)
def catalog(count: int, width: int, height: int, fmt: str) -> tuple[Photo, ...]:
    """`count` distinct product photos of width x height in `fmt` (jpeg, png, webp), with their masks."""
    return tuple(_photo(i, width, height, fmt) for i in range(count))


def _photo(i: int, width: int, height: int, fmt: str) -> Photo:
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(SEED + i)
    shape = SHAPES[i % len(SHAPES)]
    colour = COLOURS[(i * 5 + 3) % len(COLOURS)]
    silhouette = _silhouette(shape, width, height)
    photo = _backdrop(width, height, rng)
    shadow = silhouette.resize((width, max(1, height // 12)), Image.Resampling.BILINEAR)
    shadow_layer = Image.new("L", (width, height), 0)
    box = silhouette.getbbox() or (0, 0, width, height)
    shadow_layer.paste(shadow, (0, min(height - shadow.height, box[3] - shadow.height // 2)))
    shadow_layer = shadow_layer.filter(ImageFilter.BoxBlur(max(2, width // 64))).point(lambda v: v * 0.45)
    photo.paste((70, 66, 62), (0, 0), shadow_layer)
    photo.paste(_shaded(colour, width, height, box), (0, 0), silhouette)
    noise = rng.integers(-6, 7, size=(height, width, 1), dtype=np.int16)
    pixels = np.asarray(photo, dtype=np.int16) + noise
    photo = Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8), "RGB")
    out = io.BytesIO()
    if fmt == "jpeg":
        photo.save(out, "JPEG", quality=90)
    elif fmt == "webp":
        photo.save(out, "WEBP", quality=90)
    else:
        photo.save(out, "PNG")
    mask = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    mask.putalpha(silhouette)
    mask_out = io.BytesIO()
    mask.save(mask_out, "PNG", compress_level=3)
    name = f"{shape}-{i}"
    return Photo(name, f"{name}.{'jpg' if fmt == 'jpeg' else fmt}", MIME[fmt], out.getvalue(), mask_out.getvalue())


# Lighting is smooth: it is worked out on a grid this many times coarser and scaled up.
LIGHT_GRID = 8


def _smooth(width: int, height: int, pixels: np.ndarray) -> Image.Image:
    from PIL import Image

    return Image.fromarray(pixels, "RGB").resize((width, height), Image.Resampling.BILINEAR)


def _grid(width: int, height: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    return (np.linspace(lo, hi, max(2, height // LIGHT_GRID))[:, None],
            np.linspace(lo, hi, max(2, width // LIGHT_GRID))[None, :])


def _backdrop(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A seamless studio backdrop: light grey to off-white, brighter at the centre."""
    tone = np.array([236.0, 234.0, 230.0]) - rng.uniform(0, 18)
    y, x = _grid(width, height, -1.0, 1.0)
    light = 1.0 - 0.10 * (x ** 2 + 0.6 * (y + 0.2) ** 2)
    return _smooth(width, height, np.clip(light[..., None] * tone, 0, 255).astype(np.uint8))


def _shaded(colour: tuple[int, int, int], width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """The product's colour, lit from the upper left."""
    x0, y0, x1, y1 = box
    y, x = _grid(width, height, 0.0, 1.0)
    cx, cy = (x0 + (x1 - x0) * 0.3) / width, (y0 + (y1 - y0) * 0.3) / height
    light = 1.15 - 0.55 * np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    return _smooth(width, height, np.clip(light[..., None] * np.array(colour, dtype=np.float32), 0, 255)
                   .astype(np.uint8))


def _silhouette(shape: str, w: int, h: int) -> Image.Image:
    """The product's outline as an L mask (255 inside), centred on the floor of the frame."""
    from PIL import Image, ImageDraw, ImageFilter

    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))

    if shape == "sneaker":
        d.rounded_rectangle(box(0.18, 0.50, 0.84, 0.72), radius=round(0.08 * w), fill=255)
        d.ellipse(box(0.18, 0.40, 0.56, 0.70), fill=255)
        d.rectangle(box(0.16, 0.70, 0.86, 0.76), fill=255)
    elif shape == "handbag":
        d.rounded_rectangle(box(0.24, 0.40, 0.76, 0.78), radius=round(0.04 * w), fill=255)
        d.arc(box(0.34, 0.20, 0.66, 0.56), 180, 360, fill=255, width=max(2, round(0.03 * w)))
    elif shape == "bottle":
        d.rounded_rectangle(box(0.38, 0.36, 0.62, 0.80), radius=round(0.05 * w), fill=255)
        d.rectangle(box(0.46, 0.20, 0.54, 0.38), fill=255)
    elif shape == "watch":
        d.rectangle(box(0.43, 0.12, 0.57, 0.88), fill=255)
        d.ellipse(box(0.32, 0.34, 0.68, 0.66), fill=255)
    elif shape == "mug":
        d.rounded_rectangle(box(0.30, 0.40, 0.64, 0.78), radius=round(0.03 * w), fill=255)
        d.arc(box(0.56, 0.46, 0.74, 0.68), 270, 90, fill=255, width=max(2, round(0.03 * w)))
    else:   # backpack
        d.rounded_rectangle(box(0.28, 0.26, 0.72, 0.82), radius=round(0.12 * w), fill=255)
        d.arc(box(0.40, 0.16, 0.60, 0.34), 180, 360, fill=255, width=max(2, round(0.02 * w)))
    # A soft edge, as a cut-out tool leaves it, and the alpha a mask carries.
    return m.filter(ImageFilter.GaussianBlur(max(1.0, math.sqrt(w * h) / 512)))
