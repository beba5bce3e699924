"""Vertex AI against the real mock: Imagen `:predict` with httpx, google-genai (`vertexai=True`) and
google-cloud-aiplatform's `ImageGenerationModel`; Gemini image models' `:generateContent`; the publisher model
resource; and the per-provider `auth` setting a gateway without credentials needs."""

from __future__ import annotations

import base64
import warnings
from pathlib import Path

import google.oauth2.credentials
import httpx
import pytest
from google import genai
from google.genai import errors, types
from mockserver import MockServer

TOKEN = "ya29.test-vertex-0001"
PROMPT = "White cotton t-shirt on a mannequin, soft box lighting, pure white background"
PNG = b"\x89PNG\r\n\x1a\n"
# generate_images is marked for removal in the SDK's next major release; it is what these tests exercise.
pytestmark = pytest.mark.filterwarnings("ignore::google.genai._common.ExperimentalWarning")
GOOGLE_MODELS = ("imagen-4", "imagen-4-enterprise", "imagen-4-ultra", "imagen-4-fast", "gemini-2.5-flash-image")


# Every request's images filtered by the safety filter (the other fault kinds weighed at zero).
STRICT = ("[{name}]\nfaults = {{ error_rate = 1.0, mix = {{ content_policy = 1.0, server_error = 0, overloaded = 0, "
          "timeout = 0 }} }}\n")


def predict_url(server: MockServer, model: str = "imagen-4", project: str = "shop", version: str = "v1") -> str:
    return (f"{server.url}/vertex/{version}/projects/{project}/locations/us-central1/publishers/google/models/"
            f"{model}:predict")


def predict(server: MockServer, body: dict, model: str = "imagen-4", token: str | None = TOKEN,
            project: str = "shop") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(predict_url(server, model, project), json=body, headers=headers, timeout=30)


def no_errors(*extra: str) -> list[str]:
    args = []
    for name in GOOGLE_MODELS:
        args += ["--set", f"{name}.error_rate=0"]
    return args + list(extra)


def vertex_client(server: MockServer) -> genai.Client:
    # A static access token: google-genai sends it as is, and never refreshes a token that has no expiry.
    credentials = google.oauth2.credentials.Credentials(token=TOKEN)
    return genai.Client(vertexai=True, project="shop", location="us-central1", credentials=credentials,
                        http_options={"base_url": f"{server.url}/vertex/"})


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0.01", "--seed", "0", *no_errors()) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(mock: MockServer) -> genai.Client:
    return vertex_client(mock)   # held: a Client closes its connections when it is collected


def test_predict_round_trip(mock: MockServer) -> None:
    r = predict(mock, {"instances": [{"prompt": PROMPT}],
                       "parameters": {"sampleCount": 3, "aspectRatio": "3:4", "addWatermark": False}})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert len(predictions) == 3
    for p in predictions:
        assert p["mimeType"] == "image/png"
        assert base64.b64decode(p["bytesBase64Encoded"]).startswith(PNG)
        assert set(p) == {"mimeType", "bytesBase64Encoded"}   # nothing asked for beyond the image
    assert r.headers["x-cost-usd"] == "0.2400"   # 3 x 0.08


def test_seed_gives_the_same_image_and_another_seed_another(mock: MockServer) -> None:
    def image(seed: int, model: str = "imagen-4") -> bytes:
        r = predict(mock, {"instances": [{"prompt": PROMPT}], "parameters": {"seed": seed, "addWatermark": False}},
                    model=model)
        assert r.status_code == 200
        return base64.b64decode(r.json()["predictions"][0]["bytesBase64Encoded"])

    assert image(7) == image(7)
    assert image(7) != image(8)
    # The real id is the same model as the mock's name for it.
    assert image(7, "imagen-4.0-generate-001") == image(7, "imagen-4")


def test_integral_doubles_are_integers_and_fractions_are_not(mock: MockServer) -> None:
    """google-cloud-aiplatform's REST transport writes parameters as a protobuf Value: 2 becomes 2.0."""
    r = predict(mock, {"instances": [{"prompt": PROMPT}],
                       "parameters": {"sampleCount": 2.0, "seed": 42.0, "addWatermark": False,
                                      "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 75.0}}})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2
    for bad in ({"sampleCount": 1.5}, {"seed": 4.2}, {"sampleCount": True}, {"sampleCount": "2"},
                {"outputOptions": {"compressionQuality": 80.5}}):
        r = predict(mock, {"instances": [{"prompt": PROMPT}], "parameters": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert "must be an integer" in r.json()["error"]["message"]


def test_errors_have_googles_shape(mock: MockServer) -> None:
    r = predict(mock, {"instances": [{"prompt": PROMPT}]}, token=None)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "missing required authentication credential" in r.json()["error"]["message"]
    r = httpx.post(predict_url(mock), json={"instances": [{"prompt": PROMPT}]},
                   headers={"Authorization": "Basic dXNlcjpwYXNzd29yZA=="}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "invalid authentication credentials" in r.json()["error"]["message"]
    # Any bearer token is taken, as the issue of a real one is Google's business, not the API's.
    assert predict(mock, {"instances": [{"prompt": PROMPT}]}, token="any-token-at-all").status_code == 200
    r = predict(mock, {"instances": [{"prompt": PROMPT}]}, model="imagen-9")
    assert r.status_code == 404 and r.json()["error"] == {
        "code": 404, "status": "NOT_FOUND",
        "message": "Publisher Model `projects/shop/locations/us-central1/publishers/google/models/imagen-9` "
                   "not found."}
    # The retired preview ids are gone, as they are at Google.
    assert predict(mock, {"instances": [{"prompt": PROMPT}]},
                   model="imagen-4.0-generate-preview-06-06").status_code == 404
    r = predict(mock, {"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": 9}})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "sampleCount" in r.json()["error"]["message"]
    for body, words in (({"instances": [{"prompt": PROMPT}], "colour": "red"}, 'Unknown name "colour"'),
                        ({"instances": [{"prompt": PROMPT}], "parameters": {"colour": "red"}}, "colour"),
                        ({"instances": [{"prompt": PROMPT}], "parameters": {"safetySetting": "block_all"}},
                         "safetySetting"),
                        ({"instances": [{"prompt": PROMPT}], "parameters": {"sampleImageSize": "4K"}},
                         "sampleImageSize"),
                        ({"instances": [{"prompt": PROMPT}], "parameters": {"storageUri": "s3://bucket"}},
                         "storageUri"),
                        ({"instances": [{"prompt": PROMPT}], "labels": {"Team": "shop"}}, "labels"),
                        ({"instances": [{"prompt": PROMPT, "image": {"bytesBase64Encoded": "AA=="}}]},
                         "instances[0].image")):
        r = predict(mock, body)
        assert r.status_code == 400, body
        assert set(r.json()["error"]) == {"code", "message", "status"} and words in r.json()["error"]["message"]
    # A Gemini model is not reached through :predict, as on Vertex.
    r = predict(mock, {"instances": [{"prompt": PROMPT}]}, model="gemini-2.5-flash-image")
    assert r.status_code == 400 and r.json()["error"]["status"] == "FAILED_PRECONDITION"


def test_every_field_google_genai_sends_and_what_it_reads_back(sdk: genai.Client) -> None:
    """google-genai's generate_images with every GenerateImagesConfig field it sends to Vertex, parsed by the
    SDK's own types: images, enhanced prompts, per-image and prompt safety attributes."""
    config = types.GenerateImagesConfig(
        number_of_images=2, aspect_ratio="16:9", guidance_scale=15.0, seed=1337, negative_prompt="text, logo",
        safety_filter_level=types.SafetyFilterLevel.BLOCK_LOW_AND_ABOVE, person_generation="ALLOW_ADULT",
        include_safety_attributes=True, include_rai_reason=True, language="en", output_mime_type="image/jpeg",
        output_compression_quality=80, add_watermark=False, labels={"team": "catalog", "sale": "black-friday"},
        image_size="2K", enhance_prompt=True, output_gcs_uri=None)
    result = sdk.models.generate_images(model="imagen-4.0-generate-001", prompt=PROMPT,
                                                        config=config)
    assert len(result.generated_images) == 2
    for generated in result.generated_images:
        # output_mime_type="image/jpeg": each image is a JPEG, labelled as one.
        assert generated.image is not None and (generated.image.image_bytes or b"").startswith(b"\xff\xd8\xff")
        assert generated.image.mime_type == "image/jpeg"
        assert generated.enhanced_prompt and generated.enhanced_prompt.startswith(PROMPT.rstrip("."))
        assert generated.enhanced_prompt != PROMPT
        attrs = generated.safety_attributes
        assert attrs is not None and attrs.categories and len(attrs.categories) == len(attrs.scores or [])
        assert all(0 <= s <= 1 and round(s, 1) == s for s in attrs.scores or [])
        assert generated.rai_filtered_reason is None
    prompt_attrs = result.positive_prompt_safety_attributes
    assert prompt_attrs is not None and prompt_attrs.content_type == "Positive Prompt"
    assert prompt_attrs.categories and "Violence" in prompt_attrs.categories
    # Without includeSafetyAttributes and enhancePrompt none of that is sent.
    plain = sdk.models.generate_images(model="imagen-4", prompt=PROMPT)
    assert len(plain.generated_images) == 1 and plain.positive_prompt_safety_attributes is None
    assert plain.generated_images[0].enhanced_prompt is None
    assert not (plain.generated_images[0].safety_attributes or types.SafetyAttributes()).categories


def test_output_to_cloud_storage_answers_gcs_uris(sdk: genai.Client) -> None:
    result = sdk.models.generate_images(
        model="imagen-4", prompt=PROMPT,
        config=types.GenerateImagesConfig(number_of_images=2, output_gcs_uri="gs://shop-images/run-1/"))
    uris = [g.image.gcs_uri for g in result.generated_images if g.image]
    assert len(uris) == 2 and all(u and u.startswith("gs://shop-images/run-1/") for u in uris)
    assert uris[0] != uris[1] and not any(g.image and g.image.image_bytes for g in result.generated_images)


def test_real_model_ids_map_to_profiles(mock: MockServer) -> None:
    """Google's ids reach the profiles: the same provider (its quota, settings and metrics) as the mock's name."""
    for model, price in (("imagen-4.0-generate-001", "0.0800"), ("imagen-4.0-ultra-generate-001", "0.1200"),
                         ("imagen-4.0-fast-generate-001", "0.0400")):
        r = predict(mock, {"instances": [{"prompt": PROMPT}]}, model=model)
        assert r.status_code == 200, (model, r.text)
        assert r.headers["x-cost-usd"] == price
    providers = httpx.get(f"{mock.url}/admin/providers", timeout=10).json()
    assert {"imagen-4-ultra", "imagen-4-fast", "gemini-2.5-flash-image"} <= set(providers)
    assert "imagen-4.0-generate-001" not in providers     # an alias, not a provider of its own


def test_content_policy_filters_images_and_names_the_reason_when_asked(start_mock, tmp_path: Path) -> None:
    profiles = tmp_path / "strict.toml"
    profiles.write_text(STRICT.format(name="imagen-4"))
    server = start_mock("--latency-scale", "0", "--profiles", str(profiles))
    quiet = predict(server, {"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": 2}})
    assert quiet.status_code == 200 and quiet.json() == {}   # filtered images are left out, and no more
    client = vertex_client(server)
    result = client.models.generate_images(
        model="imagen-4", prompt=PROMPT,
        config=types.GenerateImagesConfig(number_of_images=2, include_rai_reason=True,
                                          include_safety_attributes=True))
    assert len(result.generated_images) == 1
    reason = result.generated_images[0].rai_filtered_reason
    assert reason and "filtered out 2 generated images" in reason and "Support codes:" in reason
    assert not (result.generated_images[0].image or types.Image()).image_bytes
    assert result.positive_prompt_safety_attributes is not None   # the prompt is still scored


def test_quota_exhausted_is_a_429_resource_exhausted_per_project(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "imagen-4.requests_per_minute=1",
                        "--set", "imagen-4.burst=1", "--set", "imagen-4.error_rate=0")
    body = {"instances": [{"prompt": PROMPT}]}
    assert predict(server, body).status_code == 200
    r = predict(server, body)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    assert "online_prediction_requests_per_base_model with base model: imagen-4" in err["message"]
    assert "retry-after" not in r.headers   # Google's 429s carry none: clients back off on their own
    # Quota is per project and base model; the real id is the same base model.
    assert predict(server, body, project="another-project").status_code == 200
    assert predict(server, body, model="imagen-4-enterprise").status_code == 200
    client = vertex_client(server)
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_images(model="imagen-4.0-generate-001", prompt=PROMPT)
    assert raised.value.code == 429 and raised.value.status == "RESOURCE_EXHAUSTED"
    assert "imagen-4.0-generate-001" in (raised.value.message or "")


def test_sdk_errors_are_the_sdks_own_exceptions(sdk: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as bad:
        sdk.models.generate_images(model="imagen-4", prompt=PROMPT,
                                                   config=types.GenerateImagesConfig(number_of_images=5))
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    with pytest.raises(errors.ClientError) as missing:
        sdk.models.generate_images(model="imagen-2", prompt=PROMPT)
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"


def test_gemini_image_generation_on_the_vertex_path(sdk: genai.Client) -> None:
    response = sdk.models.generate_content(
        model="gemini-2.5-flash-image", contents="A leather handbag on a marble plinth, morning light",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio="16:9"),
                                           labels={"team": "catalog"}))
    candidate = response.candidates[0] if response.candidates else None
    assert candidate is not None and candidate.finish_reason == types.FinishReason.STOP
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    assert [bool(p.text) for p in parts] == [True, False]
    image = parts[1].inline_data
    assert image is not None and image.mime_type == "image/png" and (image.data or b"").startswith(PNG)
    assert response.model_version == "gemini-2.5-flash-image" and response.response_id
    assert response.create_time is not None                      # Vertex stamps its answers
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count == (usage.prompt_token_count or 0) + (
        usage.candidates_token_count or 0)
    assert any(d.modality == types.MediaModality.IMAGE and d.token_count == 1290
               for d in usage.candidates_tokens_details or [])
    # Imagen does not take generateContent.
    with pytest.raises(errors.ClientError) as raised:
        sdk.models.generate_content(model="imagen-4", contents="x")
    assert raised.value.code == 400


def test_publisher_model_resource_and_google_cloud_aiplatform(mock: MockServer) -> None:
    """`ImageGenerationModel.from_pretrained` reads the publisher model, then predicts over REST."""
    r = httpx.get(f"{mock.url}/vertex/v1/publishers/google/models/imagen-4.0-generate-001",
                  headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["name"] == "publishers/google/models/imagen-4.0-generate-001"
    assert r.json()["predictSchemata"]["instanceSchemaUri"].endswith("vision_generative_model_1.0.0.yaml")
    assert httpx.get(f"{mock.url}/vertex/v1/publishers/google/models/imagen-9",
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 404
    assert httpx.get(f"{mock.url}/vertex/v1/publishers/google/models/imagen-4", timeout=10).status_code == 401
    regional = httpx.get(f"{mock.url}/vertex/v1beta1/projects/shop/locations/us-central1/publishers/google/models/"
                         "gemini-2.5-flash-image", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert regional.status_code == 200 and "predictSchemata" not in regional.json()   # not an Imagen model

    import vertexai
    from vertexai.preview.vision_models import ImageGenerationModel

    vertexai.init(project="shop", location="us-central1", api_endpoint=f"{mock.url}/vertex", api_transport="rest",
                  credentials=google.oauth2.credentials.Credentials(token=TOKEN))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the SDK's own deprecation notice for vision_models
        model = ImageGenerationModel.from_pretrained("imagen-4.0-generate-001")
        response = model.generate_images(prompt=PROMPT, number_of_images=2, seed=11, add_watermark=False,
                                         guidance_scale=12, aspect_ratio="4:3", language="en",
                                         safety_filter_level="block_some", person_generation="allow_adult")
        again = model.generate_images(prompt=PROMPT, number_of_images=2, seed=11, add_watermark=False,
                                      aspect_ratio="4:3")
    images = response.images
    assert len(images) == 2 and all((im._image_bytes or b"").startswith(PNG) for im in images)
    ihdr = (images[0]._image_bytes or b"")[16:24]   # 4:3 at 1K is Imagen's 1280x896
    assert (int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:], "big")) == (1280, 896)
    assert again.images[0]._image_bytes == images[0]._image_bytes   # the seed holds through the SDK


def test_auth_is_required_by_default_and_relaxed_per_provider(start_mock) -> None:
    """LiteLLM, given a custom api_base for Vertex, posts to the predict URL with no token at all."""
    server = start_mock("--latency-scale", "0", "--set", "imagen-4.error_rate=0",
                        "--set", "imagen-4-fast.error_rate=0", "--set", "imagen-4.auth=optional")
    litellm_url = f"{server.url}/vertex/v1/projects/p/locations/l/publishers/google/models/imagen-4:predict"
    body = {"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": 1}}
    served = httpx.post(litellm_url, json=body, timeout=10)
    assert served.status_code == 200 and served.json()["predictions"][0]["bytesBase64Encoded"]
    # optional: none offered is served, a bad one is still refused; other providers keep requiring one.
    bad = httpx.post(litellm_url, json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"}, timeout=10)
    assert bad.status_code == 401
    fast = litellm_url.replace("imagen-4:", "imagen-4-fast:")
    assert httpx.post(fast, json=body, timeout=10).status_code == 401
    # Through the admin API: none checks nothing; back to required refuses again.
    assert server.admin("imagen-4-fast", auth="none")["settings"]["auth"] == "none"
    assert httpx.post(fast, json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"}, timeout=10).status_code == 200
    server.admin("imagen-4", auth="required")
    assert httpx.post(litellm_url, json=body, timeout=10).status_code == 401
    bad_setting = httpx.patch(f"{server.url}/admin/providers/imagen-4", json={"auth": "maybe"}, timeout=10)
    assert bad_setting.status_code == 400 and "required, optional, none" in bad_setting.json()["error"]["message"]


def test_auth_setting_is_checked_at_start(start_mock) -> None:
    with pytest.raises(RuntimeError) as refused:
        start_mock("--set", "imagen-4.auth=sometimes")
    assert "auth must be one of required, optional, none" in str(refused.value)


def test_express_mode_with_an_api_key(mock: MockServer) -> None:
    """google-genai's Vertex client with an API key calls publishers/google/models/... with no project."""
    express = genai.Client(vertexai=True, api_key="AQ.test-express-key",
                           http_options={"base_url": f"{mock.url}/vertex/"})
    result = express.models.generate_images(model="imagen-4.0-fast-generate-001", prompt=PROMPT)
    assert len(result.generated_images) == 1
    image = result.generated_images[0].image
    assert image is not None and (image.image_bytes or b"").startswith(PNG)
    r = httpx.post(f"{mock.url}/vertex/v1/publishers/google/models/imagen-4:predict",
                   json={"instances": [{"prompt": PROMPT}]}, timeout=10)
    assert r.status_code == 401   # no key, no token
