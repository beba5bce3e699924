"""The Gemini Developer API under /gemini against the real mock: google-genai with an API key and
`base_url="<mock>/gemini/"` for generate_content (and its stream), httpx for Imagen's `:predict` there (the
SDK sends that only to Vertex now), quota errors in today's wording, and bad input in Google's shape."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from mockserver import MockServer

KEY = "AIzaSy-test-gemini-0001"
PROMPT = "A ceramic coffee mug on a walnut desk, morning window light"
PNG = b"\x89PNG\r\n\x1a\n"
MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-image", "imagen-4", "imagen-4-fast")
STRICT = ("[{name}]\nfaults = {{ error_rate = 1.0, mix = {{ content_policy = 1.0, server_error = 0, overloaded = 0, "
          "timeout = 0 }} }}\n")


def quiet(*extra: str) -> tuple[str, ...]:
    args = ["--latency-scale", "0", "--seed", "0"]
    for name in MODELS:
        args += ["--set", f"{name}.error_rate=0"]
    return (*args, *extra)


def client(server: MockServer, key: str = KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options={"base_url": f"{server.url}/gemini/"})


def url(server: MockServer, model: str, method: str = "generateContent", version: str = "v1beta") -> str:
    return f"{server.url}/gemini/{version}/models/{model}:{method}"


def post(server: MockServer, model: str, body: Any, method: str = "generateContent",
         headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(url(server, model, method), json=body, timeout=30,
                      headers={"x-goog-api-key": KEY} if headers is None else headers, **kwargs)


def text_body(text: str = PROMPT, **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if config:
        body["generationConfig"] = config
    return body


@pytest.fixture(scope="module")
def mock():
    with MockServer(*quiet()) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(mock: MockServer) -> genai.Client:
    return client(mock)   # held: a Client closes its connections when it is collected


def test_generate_content_with_an_image_through_the_sdk(sdk: genai.Client) -> None:
    response = sdk.models.generate_content(
        model="gemini-2.5-flash-image", contents=PROMPT,
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio="4:5")))
    candidate = (response.candidates or [None])[0]
    assert candidate is not None and candidate.finish_reason == types.FinishReason.STOP
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    assert parts[0].text and "coffee mug" in parts[0].text
    blob = parts[1].inline_data
    assert blob is not None and blob.mime_type == "image/png" and (blob.data or b"").startswith(PNG)
    assert response.model_version == "gemini-2.5-flash-image"
    assert response.response_id and response.create_time is None   # the Developer API stamps no time
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    image_only = sdk.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT,
                                             config=types.GenerateContentConfig(response_modalities=["IMAGE"]))
    only = image_only.candidates[0].content.parts if image_only.candidates and image_only.candidates[0].content else []
    assert len(only or []) == 1 and only and only[0].inline_data and not only[0].text


def test_an_input_image_is_counted_and_the_seed_repeats_the_image(sdk: genai.Client) -> None:
    product = base64.b64decode(base64.b64encode(PNG + b"\x00" * 64))
    contents = [types.Part.from_bytes(data=product, mime_type="image/png"),
                "Put this mug on a marble kitchen counter"]

    def generate(seed: int) -> types.GenerateContentResponse:
        return sdk.models.generate_content(
            model="gemini-3-pro-image", contents=contents,
            config=types.GenerateContentConfig(response_modalities=["IMAGE"], seed=seed,
                                               image_config=types.ImageConfig(image_size="4K")))

    first, again, other = generate(5), generate(5), generate(6)
    image = [p.inline_data.data for r in (first, again, other)
             for p in (r.candidates[0].content.parts if r.candidates and r.candidates[0].content else []) or []
             if p.inline_data]
    assert image[0] == image[1] != image[2]
    usage = first.usage_metadata
    assert usage is not None
    assert any(d.modality == types.MediaModality.IMAGE and d.token_count == 258
               for d in usage.prompt_tokens_details or [])
    assert any(d.modality == types.MediaModality.IMAGE and d.token_count == 2000   # a 4K image of 3 Pro Image
               for d in usage.candidates_tokens_details or [])


def test_streaming_sends_the_text_then_the_image(sdk: genai.Client) -> None:
    chunks = list(sdk.models.generate_content_stream(model="gemini-3.1-flash-image", contents=PROMPT))
    assert len(chunks) == 2
    first = chunks[0].candidates[0].content.parts if chunks[0].candidates and chunks[0].candidates[0].content else []
    last = chunks[1].candidates[0].content.parts if chunks[1].candidates and chunks[1].candidates[0].content else []
    assert first and first[0].text and last and last[0].inline_data
    assert chunks[1].candidates and chunks[1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[1].usage_metadata is not None and chunks[0].usage_metadata is None


def test_key_in_the_query_and_both_api_versions(mock: MockServer) -> None:
    """google-genai 3 defaults to v1 and 2 to v1beta; `?key=` is the other way to send a key."""
    for version in ("v1beta", "v1"):
        r = httpx.post(url(mock, "gemini-2.5-flash-image", version=version), params={"key": KEY},
                       json=text_body(responseModalities=["image"]), timeout=30)
        assert r.status_code == 200, r.text
        parts = r.json()["candidates"][0]["content"]["parts"]
        assert [set(p) for p in parts] == [{"inlineData"}]
        assert base64.b64decode(parts[0]["inlineData"]["data"]).startswith(PNG)


def test_snake_case_names_and_integral_doubles_are_taken(mock: MockServer) -> None:
    body = {"contents": [{"parts": [{"text": PROMPT}]}],
            "generation_config": {"response_modalities": ["TEXT", "IMAGE"], "candidate_count": 1.0, "seed": 3.0,
                                  "image_config": {"aspect_ratio": "21:9"}}}
    r = post(mock, "gemini-2.5-flash-image", body)
    assert r.status_code == 200, r.text


def test_imagen_predict_on_the_developer_api(mock: MockServer) -> None:
    """What google-genai's Developer API client sent to Imagen, when it still did (1.x)."""
    body = {"instances": [{"prompt": PROMPT}],
            "parameters": {"sampleCount": 2, "aspectRatio": "9:16", "guidanceScale": 12.0,
                           "safetySetting": "BLOCK_LOW_AND_ABOVE", "personGeneration": "ALLOW_ADULT",
                           "includeSafetyAttributes": True, "includeRaiReason": True, "language": "en",
                           "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
                           "sampleImageSize": "2K"}}
    r = post(mock, "imagen-4.0-fast-generate-001", body, method="predict")
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p.get("contentType") for p in predictions] == [None, None, "Positive Prompt"]
    # Asked as JPEGs (outputOptions.mimeType), served and labelled as JPEGs.
    assert all(base64.b64decode(p["bytesBase64Encoded"]).startswith(b"\xff\xd8\xff") and p["mimeType"] == "image/jpeg"
               for p in predictions[:2])
    assert r.headers["x-cost-usd"] == "0.0800"
    # What the Gemini API's Imagen does not take.
    for name, value in (("seed", 1), ("negativePrompt", "text"), ("addWatermark", False), ("storageUri", "gs://b")):
        bad = post(mock, "imagen-4", {"instances": [{"prompt": PROMPT}], "parameters": {name: value}},
                   method="predict")
        assert bad.status_code == 400 and "not supported in the Gemini API" in bad.json()["error"]["message"]
    # Imagen takes :predict only, Gemini :generateContent only.
    assert post(mock, "imagen-4", text_body()).status_code == 404
    assert post(mock, "gemini-2.5-flash-image", body, method="predict").status_code == 404


def test_models_list_and_get(mock: MockServer, sdk: genai.Client) -> None:
    names = {m.name for m in sdk.models.list()}
    assert {"models/gemini-2.5-flash-image", "models/imagen-4.0-generate-001"} <= names
    model = sdk.models.get(model="gemini-2.5-flash-image")
    assert model.name == "models/gemini-2.5-flash-image"
    assert model.supported_actions and "generateContent" in model.supported_actions
    r = httpx.get(f"{mock.url}/gemini/v1beta/models/gemini-0", headers={"x-goog-api-key": KEY}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"


def test_credentials_refused_as_the_gemini_api_refuses_them(mock: MockServer) -> None:
    missing = post(mock, "gemini-2.5-flash-image", text_body(), headers={})
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    bad = post(mock, "gemini-2.5-flash-image", text_body(), headers={}, params={"key": ""})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["message"] == "API key not valid. Please pass a valid API key."
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    spaced = client(mock, key="has a space")
    with pytest.raises(errors.ClientError) as raised:
        spaced.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT)
    assert raised.value.code == 400 and raised.value.status == "INVALID_ARGUMENT"
    oauth = post(mock, "gemini-2.5-flash-image", text_body(), headers={"Authorization": "Bearer ya29.user-token"})
    assert oauth.status_code == 200   # the Gemini API takes OAuth access tokens too


def test_auth_relaxed_per_provider(start_mock) -> None:
    server = start_mock(*quiet("--set", "gemini-2.5-flash-image.auth=optional"))
    assert post(server, "gemini-2.5-flash-image", text_body(), headers={}).status_code == 200
    assert post(server, "gemini-3-pro-image", text_body(), headers={}).status_code == 403
    server.admin("gemini-2.5-flash-image", auth="required")
    assert post(server, "gemini-2.5-flash-image", text_body(), headers={}).status_code == 403


BAD: dict[str, tuple[Any, str]] = {
    "no contents": ({"contents": []}, "contents is not specified"),
    "unknown field": ({**text_body(), "colour": "red"}, 'Unknown name "colour"'),
    "unknown generation field": (text_body(colour="red"), "at 'generation_config'"),
    "bad modality": (text_body(responseModalities=["VIDEO"]), "response_modalities[0]"),
    "fractional candidate count": (text_body(candidateCount=1.5), "must be an integer"),
    "two candidates": (text_body(candidateCount=2), "Multiple candidates"),
    "temperature too high": (text_body(temperature=3), "temperature"),
    "bad aspect ratio": (text_body(imageConfig={"aspectRatio": "2:1"}), "aspect_ratio"),
    "lower-case image size": (text_body(imageConfig={"imageSize": "1k"}), "image_size"),
    "size the model lacks": (text_body(imageConfig={"imageSize": "4K"}), "not supported by gemini-2.5-flash-image"),
    "Vertex-only image option": (text_body(imageConfig={"personGeneration": "ALLOW_ALL"}), "person"),
    "labels are Vertex's": ({**text_body(), "labels": {"team": "shop"}}, 'Unknown name "labels"'),
    "empty parts": ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
    "part without data": ({"contents": [{"parts": [{"thought": True}]}]}, "required oneof field 'data'"),
    "two data fields": ({"contents": [{"parts": [{"text": "a", "inlineData": {"mimeType": "image/png",
                                                                            "data": "AA=="}}]}]}, "oneof"),
    "bad base64": ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}]},
                   "Base64 decoding failed"),
    "bad role": ({"contents": [{"role": "system", "parts": [{"text": "a"}]}]}, "role"),
    "contents not a list": ({"contents": {"parts": [{"text": "a"}]}}, "contents"),
    "not JSON": (b'{"contents": [', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_a_400_in_googles_shape(mock: MockServer, case: str) -> None:
    body, words = BAD[case]
    if isinstance(body, bytes):
        r = httpx.post(url(mock, "gemini-2.5-flash-image"), content=body, timeout=10,
                       headers={"x-goog-api-key": KEY, "Content-Type": "application/json"})
    else:
        r = post(mock, "gemini-2.5-flash-image", body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and words in error["message"]
    assert post(mock, "gemini-2.5-flash-image", text_body()).status_code == 200   # and the next one is served


def test_unknown_routes_and_methods_in_googles_shape(mock: MockServer) -> None:
    for method, path in (("POST", "/gemini/v1beta/models/gemini-2.5-flash-image:countPixels"),
                         ("GET", "/gemini/v1beta/nothing-here"), ("DELETE", "/gemini/v1beta/models"),
                         ("POST", "/gemini/v2/models/gemini-2.5-flash-image:generateContent")):
        r = httpx.request(method, mock.url + path, headers={"x-goog-api-key": KEY}, json={}, timeout=10)
        assert r.status_code == 404, (method, path)
        assert set(r.json()["error"]) == {"code", "message", "status"} and r.json()["error"]["status"] == "NOT_FOUND"


def test_quota_exhausted_is_todays_429_with_retry_info(start_mock) -> None:
    server = start_mock(*quiet("--set", "gemini-2.5-flash-image.requests_per_minute=6",
                               "--set", "gemini-2.5-flash-image.burst=1"))
    sdk = client(server)
    sdk.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT)
    with pytest.raises(errors.ClientError) as raised:
        sdk.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT)
    error = raised.value
    assert error.code == 429 and error.status == "RESOURCE_EXHAUSTED"
    assert (error.message or "").startswith("You exceeded your current quota, please check your plan and billing")
    assert "model: gemini-2.5-flash-image" in (error.message or "")
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in error.details["error"]["details"]}
    assert set(details) == {"QuotaFailure", "Help", "RetryInfo"}
    # 6 a minute: the next token is at most 10 s away, and RetryInfo rounds up to whole seconds.
    assert details["RetryInfo"]["retryDelay"] in {f"{s}s" for s in range(1, 11)}
    violation = details["QuotaFailure"]["violations"][0]
    assert violation["quotaDimensions"]["model"] == "gemini-2.5-flash-image" and violation["quotaValue"] == "6"
    # Another key has its own quota.
    other = client(server, key="AIzaSy-another-key")
    assert other.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT).candidates


def test_filtered_image_is_a_200_with_image_safety(start_mock, tmp_path: Path) -> None:
    profiles = tmp_path / "strict.toml"
    profiles.write_text(STRICT.format(name='"gemini-2.5-flash-image"'))
    server = start_mock("--latency-scale", "0", "--profiles", str(profiles))
    sdk = client(server)
    response = sdk.models.generate_content(model="gemini-2.5-flash-image", contents=PROMPT,
                                           config=types.GenerateContentConfig(response_modalities=["IMAGE"]))
    candidate = (response.candidates or [None])[0]
    assert candidate is not None and candidate.finish_reason == types.FinishReason.IMAGE_SAFETY
    assert candidate.content is None
    assert response.parts is None   # no image: what a client must treat as a failure
    raw = post(server, "gemini-2.5-flash-image", text_body()).json()["candidates"][0]
    assert raw["finishReason"] == "IMAGE_SAFETY" and "filtered out" in raw["finishMessage"] and "content" not in raw
