"""POST /images/edits: the multipart form, its image files and mask, checked as the real API does.

Files are read up to the server's body limit and looked at with Pillow, which reads an image's
header (format, size, mode) without decoding its pixels. The real API's limits: gpt-image models
take up to 16 PNG, JPEG or WebP images under 50 MB each; dall-e-2 one square PNG under 4 MB; a
mask is a PNG under 4 MB with an alpha channel and the first image's dimensions.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, hdrs, web
from PIL import Image

from .common import WireError
from .openai_models import MB, ModelRules, input_image_tokens
from .openai_params import listed

IMAGE_FIELD = re.compile(r"^image(\[\d*\])?\Z")
FILE_FIELDS = ("mask", "markup")
MAX_TEXT_FIELD = 1 * MB       # a prompt of 32,000 characters is at most 128 KB of UTF-8
MASK_BYTES = 4 * MB
MIME_OF_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass
class Upload:
    name: str                 # the form field it came in ("image", "image[]", "mask")
    content_type: str         # as the client declared it
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    images: list[Upload] = field(default_factory=list)
    files: dict[str, Upload] = field(default_factory=dict)   # mask, markup


async def read_form(request: web.Request, limit: int) -> Form:
    """The form's text fields and files, or a WireError: 413 past `limit` bytes in all."""
    ctype = request.headers.get(hdrs.CONTENT_TYPE, "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise WireError(400, f"Invalid Content-Type header ({ctype or 'none'}), expected multipart/form-data.",
                        code="invalid_content_type")
    if request.content_length is not None and request.content_length > limit:
        raise WireError(413, f"Request body is {request.content_length} bytes; the limit is {limit} bytes.",
                        code="request_too_large")
    form, total = Form(), 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):   # a nested multipart: not what the API takes
                raise WireError(400, "Nested multipart bodies are not supported.", code="invalid_body")
            name = part.name or ""
            if not name:
                raise WireError(400, "A form part has no name: each needs Content-Disposition: form-data; "
                                     "name=\"...\".", code="invalid_body")
            chunks: list[bytes] = []
            while chunk := await part.read_chunk(256 * 1024):
                total += len(chunk)
                if total > limit:
                    raise WireError(413, f"Request body is over the limit of {limit} bytes.",
                                    code="request_too_large")
                chunks.append(chunk)
            data = b"".join(chunks)
            if IMAGE_FIELD.match(name) or name in FILE_FIELDS:
                upload = Upload(name, part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"), data)
                if name in FILE_FIELDS:
                    form.files[name] = upload
                else:
                    form.images.append(upload)
                continue
            if len(data) > MAX_TEXT_FIELD:
                raise WireError(400, f"Invalid '{name}': the field is {len(data)} bytes; text fields are limited "
                                     f"to {MAX_TEXT_FIELD} bytes.", code="invalid_value", param=name)
            try:
                form.fields[name] = data.decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(400, f"Invalid '{name}': not valid UTF-8 text.", code="invalid_value",
                                param=name) from None
    except WireError:
        raise
    except (ValueError, AssertionError, RuntimeError, LookupError, ConnectionError) as exc:
        raise WireError(400, f"Could not parse the multipart form: {exc}", code="invalid_body") from None
    return form


@dataclass
class Picture:
    format: str
    width: int
    height: int
    mode: str
    transparent: bool


def _open(data: bytes) -> Picture | None:
    """The image's header as Pillow reads it, or None if it is no image Pillow knows."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                transparent = im.mode in ALPHA_MODES or "transparency" in im.info
                return Picture(str(im.format), im.width, im.height, im.mode, transparent)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _mimetype(upload: Upload) -> str:
    return upload.content_type.split(";", 1)[0].strip().lower()


def check_uploads(form: Form, rules: ModelRules, fidelity: str | None) -> int:
    """Check the images and mask for this model; the input image tokens they bill."""
    images = form.images
    if not images:
        raise WireError(400, "Missing required parameter: 'image'.", code="missing_required_parameter",
                        param="image")
    if len(images) > rules.max_images:
        raise WireError(400, f"Invalid 'image': array too long. Expected an array with maximum length "
                             f"{rules.max_images}, but got an array with length {len(images)} instead.",
                        code="array_above_max_length", param="image")
    as_array = len(images) > 1 or images[0].name != "image"
    pictures = []
    for i, upload in enumerate(images):
        param = f"image[{i}]" if as_array else "image"
        mime = _mimetype(upload)
        if mime not in rules.image_types:
            raise WireError(400, f"Invalid file '{param}': unsupported mimetype ('{mime}'). Supported file formats "
                                 f"are {listed(rules.image_types)}.", code="unsupported_file_mimetype", param=param)
        if len(upload.data) >= rules.image_bytes:
            if rules.square_input:
                raise WireError(400, "Uploaded image must be a PNG and less than 4 MB.", code="invalid_image",
                                param=param)
            raise WireError(400, f"Invalid file '{param}': the file is {len(upload.data)} bytes; each image must be "
                                 f"less than {rules.image_bytes // MB} MB.", code="file_too_large", param=param)
        picture = _open(upload.data)
        if picture is None or MIME_OF_FORMAT.get(picture.format) not in rules.image_types:
            raise WireError(400, f"Invalid image file or mode for image {i + 1}, please check your image file.",
                            code="invalid_image_file", param=param)
        pictures.append(picture)
    first = pictures[0]
    mask = form.files.get("mask")
    if rules.square_input:
        if first.width != first.height:
            raise WireError(400, f"Invalid input image - image must be square, got {first.width}x{first.height}.",
                            code="invalid_image", param="image")
        if mask is None and first.mode not in ("RGBA", "LA", "L"):
            raise WireError(400, f"Invalid input image - format must be in ['RGBA', 'LA', 'L'], got {first.mode}.",
                            code="invalid_image", param="image")
    if mask is not None:
        _check_mask(mask, first)
    return sum(input_image_tokens(p.width, p.height, fidelity) for p in pictures)


def _check_mask(mask: Upload, first: Picture) -> None:
    mime = _mimetype(mask)
    if mime != "image/png":
        raise WireError(400, f"Invalid file 'mask': unsupported mimetype ('{mime}'). Supported file formats are "
                             "'image/png'.", code="unsupported_file_mimetype", param="mask")
    if len(mask.data) >= MASK_BYTES:
        raise WireError(400, f"Invalid file 'mask': the file is {len(mask.data)} bytes; a mask must be less than "
                             "4 MB.", code="file_too_large", param="mask")
    picture = _open(mask.data)
    if picture is None or picture.format != "PNG":
        raise WireError(400, "Invalid mask image: not a valid PNG file.", code="invalid_image_file", param="mask")
    if not picture.transparent:
        raise WireError(400, f"Invalid mask image: the mask must have an alpha channel (its mode is "
                             f"{picture.mode}); its fully transparent areas mark where to edit.",
                        code="invalid_image", param="mask")
    if (picture.width, picture.height) != (first.width, first.height):
        raise WireError(400, f"Invalid mask image: the mask is {picture.width}x{picture.height} and the image "
                             f"{first.width}x{first.height}; they must have the same dimensions.",
                        code="invalid_image", param="mask")
