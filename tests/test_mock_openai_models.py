"""Today's OpenAI image models through the official `openai` SDK: each family's parameters, its
validation as the real API words it, usage, the echoed settings, raw headers and images-per-minute."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest
from mockserver import MockServer
from openai.types import ImagesResponse
from PIL import Image

KEY = "sk-test-gpt-image-0001"
PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
GPT_IMAGE = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2")
NO_ERRORS = [arg for name in (*GPT_IMAGE, "dall-e-2", "dall-e-3") for arg in ("--set", f"{name}.error_rate=0")]


@pytest.fixture(scope="module")
def mock():
    """Latency at 0.1 %: gpt-image-1 medium is about 18 ms."""
    with MockServer("--latency-scale", "0.001", "--seed", "0", *NO_ERRORS) as server:
        yield server


def client(server: MockServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{server.url}/openai/v1", max_retries=0, **kwargs)


def decoded(b64: str | None) -> Image.Image:
    assert b64
    return Image.open(io.BytesIO(base64.b64decode(b64)))


@pytest.mark.parametrize("model", GPT_IMAGE)
def test_gpt_image_answers_b64_with_usage_and_the_settings_it_used(mock: MockServer, model: str) -> None:
    result = client(mock).images.generate(model=model, prompt=PROMPT, n=2, quality="low", size="1536x1024")
    assert isinstance(result, ImagesResponse)
    assert len(result.data or []) == 2
    assert all(d.url is None and d.revised_prompt is None for d in result.data or [])
    assert decoded((result.data or [])[0].b64_json).format == "PNG"
    assert (result.background, result.output_format, result.quality, result.size) == \
        ("opaque", "png", "low", "1536x1024")
    usage = result.usage
    assert usage is not None
    # OpenAI's table: a low 1536x1024 image is 400 output tokens; two of them 800.
    assert usage.output_tokens == 800
    assert usage.input_tokens_details.image_tokens == 0 and usage.input_tokens_details.text_tokens > 0
    assert usage.input_tokens == usage.input_tokens_details.text_tokens
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details is not None and usage.output_tokens_details.image_tokens == 800


def test_defaults_auto_size_and_quality_resolve_in_the_answer(mock: MockServer) -> None:
    result = client(mock).images.generate(model="gpt-image-1", prompt=PROMPT)
    assert (result.size, result.quality, result.background) == ("1024x1024", "high", "opaque")
    assert result.usage is not None and result.usage.output_tokens == 4160


def test_output_formats_are_the_bytes_they_say(mock: MockServer) -> None:
    sdk = client(mock)
    for fmt, pil in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")):
        result = sdk.images.generate(model="gpt-image-1-mini", prompt=PROMPT, output_format=fmt, quality="low",
                                     **({"output_compression": 40} if fmt != "png" else {}))
        assert result.output_format == fmt
        assert decoded((result.data or [])[0].b64_json).format == pil


def test_gpt_image_2_takes_any_size_within_its_rules(mock: MockServer) -> None:
    sdk = client(mock)
    for size in ("1536x864", "3840x2160", "2160x3840", "1024x640", "2880x2880"):
        assert sdk.images.generate(model="gpt-image-2", prompt=PROMPT, size=size, quality="low").size == size
    # A dated snapshot id is served as its model.
    assert sdk.images.generate(model="gpt-image-2-2026-04-21", prompt=PROMPT, size="1536x864").size == "1536x864"
    cases = {
        "1792x936": "Invalid size '1792x936'. Width and height must both be divisible by 16.",
        "4096x1024": "Invalid size '4096x1024'. Width and height must each be at most 3840 pixels.",
        "3072x768": "Invalid size '3072x768'. The aspect ratio must be between 1:3 and 3:1.",
        "512x512": "Invalid size '512x512'. The total pixel count must be between 655360 and 8294400.",
        "3840x3840": "Invalid size '3840x3840'. The total pixel count must be between 655360 and 8294400.",
        "big": "Invalid size 'big'. Expected 'auto' or WIDTHxHEIGHT, for example '1536x864'.",
    }
    for size, message in cases.items():
        with pytest.raises(openai.BadRequestError) as bad:
            sdk.images.generate(model="gpt-image-2", prompt=PROMPT, size=size)
        assert bad.value.status_code == 400 and bad.value.param == "size" and bad.value.code == "invalid_value"
        assert isinstance(bad.value.body, dict) and bad.value.body["message"] == message


def test_dall_e_3_and_dall_e_2_keep_their_own_shapes(mock: MockServer) -> None:
    sdk = client(mock)
    three = sdk.images.generate(model="dall-e-3", prompt=PROMPT, size="1792x1024", quality="hd", style="natural")
    image = (three.data or [])[0]
    assert image.url and image.url.startswith(f"{mock.url}/images/") and image.revised_prompt == PROMPT
    assert three.usage is None and three.size is None and three.quality is None
    assert httpx.get(image.url, timeout=10).content.startswith(b"\x89PNG")
    two = sdk.images.generate(model="dall-e-2", prompt=PROMPT, size="256x256", n=3, response_format="b64_json")
    assert len(two.data or []) == 3 and all(d.b64_json and d.revised_prompt is None for d in two.data or [])


# (model, parameters) -> (param, code, message): the real API's wording where it is on public record.
REFUSED: list[tuple[str, dict[str, Any], str, str, str]] = [
    ("dall-e-3", {"n": 2}, "n", "integer_above_max_value",
     "Invalid 'n': integer above maximum value. Expected a value <= 1, but got 2 instead."),
    ("dall-e-3", {"quality": "high"}, "quality", "invalid_value",
     "Invalid value: 'high'. Supported values are: 'standard' and 'hd'."),
    ("dall-e-3", {"size": "512x512"}, "size", "invalid_value",
     "Invalid value: '512x512'. Supported values are: '1024x1024', '1792x1024', and '1024x1792'."),
    ("dall-e-2", {"size": "1536x1024"}, "size", "invalid_value",
     "Invalid value: '1536x1024'. Supported values are: '256x256', '512x512', and '1024x1024'."),
    ("dall-e-2", {"style": "vivid"}, "style", "unknown_parameter", "Unknown parameter: 'style'."),
    ("dall-e-3", {"background": "opaque"}, "background", "unknown_parameter", "Unknown parameter: 'background'."),
    ("dall-e-3", {"stream": True}, "stream", "unsupported_value", "Streaming is not supported for this model."),
    ("gpt-image-1", {"response_format": "url"}, "response_format", "unknown_parameter",
     "Unknown parameter: 'response_format'."),
    ("gpt-image-1", {"style": "vivid"}, "style", "unknown_parameter", "Unknown parameter: 'style'."),
    ("gpt-image-1", {"size": "512x512"}, "size", "invalid_value",
     "Invalid value: '512x512'. Supported values are: '1024x1024', '1536x1024', '1024x1536', and 'auto'."),
    ("gpt-image-1", {"quality": "hd"}, "quality", "invalid_value",
     "Invalid value: 'hd'. Supported values are: 'low', 'medium', 'high', and 'auto'."),
    ("gpt-image-1", {"n": 11}, "n", "integer_above_max_value",
     "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead."),
    ("gpt-image-1", {"output_format": "gif"}, "output_format", "invalid_value",
     "Invalid value: 'gif'. Supported values are: 'png', 'jpeg', and 'webp'."),
    ("gpt-image-1", {"output_compression": 50}, "output_compression", "invalid_value",
     "Compression less than 100 is not supported for PNG output format."),
    ("gpt-image-1", {"output_format": "jpeg", "output_compression": 101}, "output_compression",
     "integer_above_max_value",
     "Invalid 'output_compression': integer above maximum value. Expected a value <= 100, but got 101 instead."),
    ("gpt-image-1", {"background": "transparent", "output_format": "jpeg"}, "background", "invalid_value",
     "Transparent background is not supported for output format 'jpeg'; use 'png' or 'webp'."),
    ("gpt-image-2", {"background": "transparent"}, "background", "invalid_value",
     "Transparent background is not supported for this model."),
    ("gpt-image-1", {"moderation": "strict"}, "moderation", "invalid_value",
     "Invalid value: 'strict'. Supported values are: 'low' and 'auto'."),
    ("gpt-image-1", {"stream": True, "partial_images": 4}, "partial_images", "integer_above_max_value",
     "Invalid 'partial_images': integer above maximum value. Expected a value <= 3, but got 4 instead."),
    ("gpt-image-1", {"svg": {"model": "x"}}, "svg", "unsupported_parameter",
     "Unsupported parameter: 'svg' is not supported with this model."),
    ("gpt-image-1", {"prompt": "x" * 32_001}, "prompt", "string_above_max_length",
     "Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a string with "
     "length 32001 instead."),
    ("dall-e-2", {"prompt": "x" * 1001}, "prompt", "string_above_max_length",
     "Invalid 'prompt': string too long. Expected a string with maximum length 1000, but got a string with "
     "length 1001 instead."),
]


@pytest.mark.parametrize(("model", "params", "param", "code", "message"), REFUSED,
                         ids=[f"{m}-{'-'.join(p)}" for m, p, *_ in REFUSED])
def test_each_model_refuses_what_the_real_one_refuses(mock: MockServer, model: str, params: dict[str, Any],
                                                       param: str, code: str, message: str) -> None:
    body = {"prompt": PROMPT, **params}
    with pytest.raises(openai.BadRequestError) as bad:
        client(mock).images.generate(model=model, **body)
    err = bad.value
    assert err.status_code == 400 and err.type == "invalid_request_error"
    assert (err.param, err.code) == (param, code)
    assert isinstance(err.body, dict) and err.body["message"] == message
    assert err.response.headers["x-request-id"].startswith("req_")


def test_every_parameter_the_sdk_sends_is_taken(mock: MockServer) -> None:
    result = client(mock).images.generate(
        model="gpt-image-1.5", prompt=PROMPT, background="transparent", moderation="low", n=1,
        output_compression=80, output_format="webp", partial_images=2, quality="medium", size="1024x1536",
        stream=False, user="user-1234", safety_identifier="hashed-user-1", complexity="high")
    assert (result.background, result.output_format, result.quality, result.size) == \
        ("transparent", "webp", "medium", "1024x1536")
    assert result.safety_identifier == "hashed-user-1"
    fallback = client(mock).images.generate(model="gpt-image-1", prompt=PROMPT, quality="low", user="user-1234")
    assert fallback.safety_identifier == "user-1234"   # `user` stands in when safety_identifier is not given


def test_unknown_models_and_parameters(mock: MockServer) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client(mock).images.generate(model="gpt-image-9", prompt=PROMPT)
    assert bad.value.param == "model" and "gpt-image-1.5" in bad.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        client(mock).images.generate(model="gpt-image-1", prompt=PROMPT, extra_body={"seed": 42})
    assert unknown.value.code == "unknown_parameter" and unknown.value.param == "seed"


def test_raw_response_headers_and_cost_by_quality_and_size(mock: MockServer) -> None:
    raw = client(mock).images.with_raw_response.generate(model="gpt-image-1", prompt=PROMPT, quality="high",
                                                         size="1024x1536")
    parsed = raw.parse()
    assert isinstance(parsed, ImagesResponse) and parsed.size == "1024x1536"
    h = raw.headers
    assert h["x-request-id"].startswith("req_") and int(h["openai-processing-ms"]) >= 0
    assert h["x-ratelimit-limit-requests"] == "250"
    assert int(h["x-ratelimit-remaining-requests"]) < 50
    assert h["x-ratelimit-reset-requests"].endswith("s")
    # price_usd is one medium 1024x1024 image (1056 tokens); a high 1024x1536 one is 6240 tokens.
    assert float(h["x-cost-usd"]) == pytest.approx(0.042 * 6240 / 1056, abs=1e-4)
    three = client(mock).images.with_raw_response.generate(model="dall-e-3", prompt=PROMPT, quality="hd",
                                                           size="1024x1792")
    assert three.headers["x-cost-usd"] == "0.1200"   # OpenAI's published price for that cell


def test_images_per_minute_count_every_image(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "gpt-image-1.requests_per_minute=6",
                        "--set", "gpt-image-1.burst=5", "--set", "gpt-image-1.error_rate=0")
    sdk = client(server)
    first = sdk.images.with_raw_response.generate(model="gpt-image-1", prompt=PROMPT, n=3, quality="low")
    assert first.headers["x-ratelimit-limit-requests"] == "6"
    assert first.headers["x-ratelimit-remaining-requests"] == "2"     # five in the bucket, three spent
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.images.generate(model="gpt-image-1", prompt=PROMPT, n=3, quality="low")
    err = limited.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    assert err.message.startswith("Error code: 429 - ") and "images per minute" in err.message
    assert "Limit: 6/1min" in err.message
    # One token each 10 s: three images wait for about one more token than the two left, about 10 s.
    assert 5_000 <= int(err.response.headers["retry-after-ms"]) <= 10_001
    second = sdk.images.with_raw_response.generate(model="gpt-image-1", prompt=PROMPT, n=2, quality="low")
    assert second.headers["x-ratelimit-remaining-requests"] == "0"


def test_the_seed_model_keeps_the_seeds_rules(mock: MockServer) -> None:
    """dall-e-4 (the seed's, never a real model): the DALL-E shape, sizes up to its 1792 px, every quality,
    and the gpt-image options taken and ignored, as the seed's mock took them."""
    sdk = client(mock)
    result = sdk.images.generate(model="dall-e-4", prompt=PROMPT, size="1792x1024", quality="medium", style="vivid",
                                 background="transparent", output_format="webp", moderation="low")
    image = (result.data or [])[0]
    assert image.url and image.revised_prompt == PROMPT and result.usage is None and result.output_format is None
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.images.generate(model="dall-e-4", prompt=PROMPT, size="1536x1024")
    assert bad.value.param == "size"
    with pytest.raises(openai.BadRequestError) as stream:
        sdk.images.generate(model="dall-e-4", prompt=PROMPT, stream=True)
    assert stream.value.param == "stream"


def test_a_profile_with_an_unknown_family_is_refused_at_start(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[mine]\nbase = "gpt-image-1"\nfamily = "gpt-image-9"\n')
    done = subprocess.run([sys.executable, "-m", "mockprovider", "--profiles", str(path), "--show-profiles"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "[mine].family: 'gpt-image-9' is no OpenAI image model" in done.stderr
