"""POST /images/edits through the official `openai` SDK: multipart images and a mask, checked as the
real API checks them, and served through the same behaviours as a generation."""

from __future__ import annotations

import io
from typing import Any

import httpx
import openai
import pytest
from mockserver import MockServer
from openai.types import ImagesResponse
from PIL import Image

KEY = "sk-test-edits-0001"
PROMPT = "Replace the background with a sunlit beach, keep the product unchanged"
NO_ERRORS = [arg for name in ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "dall-e-2",
                              "dall-e-4") for arg in ("--set", f"{name}.error_rate=0")]


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0.001", "--seed", "0", *NO_ERRORS) as server:
        yield server


def client(server: MockServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{server.url}/openai/v1", max_retries=0)


def image(size: tuple[int, int] = (512, 512), mode: str = "RGB", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (30, 120, 200) if mode == "RGB" else (30, 120, 200, 0)).save(out, fmt)
    return out.getvalue()


def png(name: str = "product.png", **kwargs: Any) -> tuple[str, bytes, str]:
    return (name, image(**kwargs), "image/png")


def refused(server: MockServer, **kwargs: Any) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as bad:
        client(server).images.edit(prompt=PROMPT, **kwargs)
    assert bad.value.status_code == 400 and bad.value.type == "invalid_request_error"
    return bad.value


def text(err: openai.APIStatusError) -> str:
    """The error's message as the server wrote it (the SDK's own message prefixes the status)."""
    assert isinstance(err.body, dict)
    return str(err.body["message"])


def test_background_replacement_with_a_mask(mock: MockServer) -> None:
    mask = ("mask.png", image(mode="RGBA"), "image/png")
    result = client(mock).images.edit(model="gpt-image-1", image=png(), mask=mask, prompt=PROMPT,
                                      input_fidelity="high", quality="low", size="1024x1536", background="opaque",
                                      output_format="jpeg", output_compression=70, n=2, user="shop-42")
    assert isinstance(result, ImagesResponse) and len(result.data or []) == 2
    assert (result.size, result.quality, result.output_format, result.background) == \
        ("1024x1536", "low", "jpeg", "opaque")
    assert result.safety_identifier == "shop-42"
    usage = result.usage
    assert usage is not None
    # A 512x512 input is 85 + 170 tokens; high input fidelity adds 4,160 for a square image.
    assert usage.input_tokens_details.image_tokens == 255 + 4160
    assert usage.output_tokens == 2 * 408


def test_up_to_sixteen_images_of_each_kind(mock: MockServer) -> None:
    files = [png(f"p{i}.png") for i in range(14)] + [("a.jpg", image(fmt="JPEG"), "image/jpeg"),
                                                   ("b.webp", image(fmt="WEBP"), "image/webp")]
    result = client(mock).images.edit(model="gpt-image-1.5", image=files, prompt=PROMPT, quality="low")
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens == 16 * 255
    too_many = refused(mock, model="gpt-image-1.5", image=files + [png()])
    assert too_many.code == "array_above_max_length" and too_many.param == "image"
    assert too_many.message.endswith("Expected an array with maximum length 16, but got an array with length 17 "
                                     "instead.")


def test_files_are_checked_as_the_real_api_checks_them(mock: MockServer) -> None:
    octet = refused(mock, model="gpt-image-1", image=image())     # bytes without a name: no mimetype
    assert octet.code == "unsupported_file_mimetype" and octet.param == "image"
    assert text(octet) == ("Invalid file 'image': unsupported mimetype ('application/octet-stream'). "
                           "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.")
    second = refused(mock, model="gpt-image-1", image=[png(), ("notes.txt", b"hello", "text/plain")])
    assert second.param == "image[1]" and second.code == "unsupported_file_mimetype"
    broken = refused(mock, model="gpt-image-1", image=("product.png", b"\x89PNG not really", "image/png"))
    assert broken.code == "invalid_image_file"
    assert text(broken) == "Invalid image file or mode for image 1, please check your image file."
    small_mask = refused(mock, model="gpt-image-1", image=png(), mask=png("m.png", size=(256, 256), mode="RGBA"))
    assert small_mask.param == "mask" and "same dimensions" in small_mask.message
    opaque_mask = refused(mock, model="gpt-image-1", image=png(), mask=png("m.png"))
    assert opaque_mask.param == "mask" and "alpha channel" in opaque_mask.message
    jpeg_mask = refused(mock, model="gpt-image-1", image=png(), mask=("m.jpg", image(fmt="JPEG"), "image/jpeg"))
    assert jpeg_mask.code == "unsupported_file_mimetype" and jpeg_mask.param == "mask"


def test_per_model_rules_for_edits(mock: MockServer) -> None:
    assert refused(mock, model="gpt-image-2", image=png(), input_fidelity="high").code == "unsupported_parameter"
    mini = refused(mock, model="gpt-image-1-mini", image=png(), input_fidelity="high")
    assert mini.param == "input_fidelity" and mini.message.endswith("Supported values are: 'low'.")
    dall_e_3 = refused(mock, model="dall-e-3", image=png())
    assert dall_e_3.param == "model" and "image edits" in dall_e_3.message
    # dall-e-2: one square PNG, with transparency unless a mask says where to edit.
    two = client(mock).images.edit(model="dall-e-2", image=png(mode="RGBA"), prompt=PROMPT, size="512x512", n=2)
    assert len(two.data or []) == 2 and all(d.url for d in two.data or [])
    assert httpx.get((two.data or [])[0].url or "", timeout=10).content.startswith(b"\x89PNG")
    with_mask = client(mock).images.edit(model="dall-e-2", image=png(), mask=png("m.png", mode="RGBA"),
                                         prompt=PROMPT, response_format="b64_json")
    assert (with_mask.data or [])[0].b64_json
    assert text(refused(mock, model="dall-e-2", image=png())) == \
        "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB."
    assert "square" in refused(mock, model="dall-e-2", image=png(size=(512, 256), mode="RGBA")).message
    assert refused(mock, model="dall-e-2", image=[png(mode="RGBA"), png(mode="RGBA")]).code == \
        "array_above_max_length"
    webp = refused(mock, model="dall-e-2", image=("a.webp", image(fmt="WEBP"), "image/webp"))
    assert webp.message.endswith("Supported file formats are 'image/png'.")
    size = refused(mock, model="dall-e-2", image=png(mode="RGBA"), size="1536x1024")
    assert text(size) == "Invalid value: '1536x1024'. Supported values are: '256x256', '512x512', and '1024x1024'."
    assert refused(mock, model="gpt-image-1", image=png(), extra_body={"moderation": "low"}).code == \
        "unknown_parameter"   # moderation is a generation parameter only
    assert refused(mock, model="gpt-image-1", image=png(), markup=png()).code == "unsupported_parameter"


def test_form_fields_arrive_as_text_and_are_read_as_their_types(mock: MockServer) -> None:
    files = {"image[]": ("p.png", image(), "image/png")}
    r = httpx.post(f"{mock.url}/openai/v1/images/edits", headers={"Authorization": f"Bearer {KEY}"}, timeout=30,
                   data={"model": "gpt-image-1", "prompt": PROMPT, "n": "2", "quality": "low"}, files=files)
    assert r.status_code == 200 and len(r.json()["data"]) == 2
    r = httpx.post(f"{mock.url}/openai/v1/images/edits", headers={"Authorization": f"Bearer {KEY}"}, timeout=30,
                   data={"model": "gpt-image-1", "prompt": PROMPT, "n": "two"}, files=files)
    assert r.status_code == 400 and r.json()["error"]["param"] == "n"
    r = httpx.post(f"{mock.url}/openai/v1/images/edits", headers={"Authorization": f"Bearer {KEY}"}, timeout=30,
                   json={"model": "gpt-image-1", "prompt": PROMPT})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    # Text parts only (a filename of None): multipart, with no image in it.
    missing = httpx.post(f"{mock.url}/openai/v1/images/edits", headers={"Authorization": f"Bearer {KEY}"},
                         timeout=30, files={"model": (None, "gpt-image-1"), "prompt": (None, PROMPT)})
    assert missing.status_code == 400
    assert missing.json()["error"] == {"message": "Missing required parameter: 'image'.",
                                       "type": "invalid_request_error", "param": "image",
                                       "code": "missing_required_parameter"}


def test_a_body_over_the_limit_is_413_and_the_server_carries_on(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--max-body-mb", "1", "--set", "gpt-image-1.error_rate=0")
    big = ("big.png", b"\x89PNG" + b"\0" * (2 * 1024 * 1024), "image/png")
    with pytest.raises(openai.APIStatusError) as over:
        client(server).images.edit(model="gpt-image-1", image=big, prompt=PROMPT)
    assert over.value.status_code == 413
    assert client(server).images.edit(model="gpt-image-1", image=png(), prompt=PROMPT, quality="low").data


def test_edits_go_through_the_same_behaviours(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "gpt-image-1.requests_per_minute=6",
                        "--set", "gpt-image-1.burst=2", "--set", "gpt-image-1.error_rate=0")
    sdk = client(server)
    raw = sdk.images.with_raw_response.edit(model="gpt-image-1", image=png(), prompt=PROMPT, n=2, quality="low")
    assert raw.headers["x-ratelimit-remaining-requests"] == "0" and raw.headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.RateLimitError):
        sdk.images.edit(model="gpt-image-1", image=png(), prompt=PROMPT, quality="low")
    server.admin("gpt-image-1", outage=True)
    with pytest.raises(openai.InternalServerError) as down:
        sdk.images.edit(model="gpt-image-1", image=png(), prompt=PROMPT, quality="low")
    assert down.value.status_code == 503
