"""Vertex AI Imagen predict, over httpx with a Bearer access token, against the real mock."""

from __future__ import annotations

import base64

import httpx
import pytest
from mockserver import MockServer

TOKEN = "ya29.test-vertex-0001"
PROMPT = "White cotton t-shirt on a mannequin, soft box lighting, pure white background"


def predict_url(server: MockServer, model: str = "imagen-4", project: str = "shop") -> str:
    return (f"{server.url}/vertex/v1/projects/{project}/locations/us-central1/publishers/google/models/"
            f"{model}:predict")


def predict(server: MockServer, body: dict, model: str = "imagen-4", token: str | None = TOKEN,
            project: str = "shop") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(predict_url(server, model, project), json=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0.01", "--seed", "0", "--set", "imagen-4.error_rate=0",
                    "--set", "imagen-4-enterprise.error_rate=0") as server:
        yield server


def test_predict_round_trip(mock: MockServer) -> None:
    r = predict(mock, {"instances": [{"prompt": PROMPT}],
                       "parameters": {"sampleCount": 3, "aspectRatio": "3:4", "addWatermark": False}})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert len(predictions) == 3
    for p in predictions:
        assert p["mimeType"] == "image/png"
        assert base64.b64decode(p["bytesBase64Encoded"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert r.headers["x-cost-usd"] == "0.2400"   # 3 x 0.08


def test_seed_gives_the_same_image_and_another_seed_another(mock: MockServer) -> None:
    def image(seed: int, model: str = "imagen-4") -> bytes:
        r = predict(mock, {"instances": [{"prompt": PROMPT}], "parameters": {"seed": seed}}, model=model)
        assert r.status_code == 200
        return base64.b64decode(r.json()["predictions"][0]["bytesBase64Encoded"])

    assert image(7) == image(7)
    assert image(7) != image(8)


def test_errors_have_googles_shape(mock: MockServer) -> None:
    r = predict(mock, {"instances": [{"prompt": PROMPT}]}, token=None)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
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
    r = predict(mock, {"instances": [{"prompt": PROMPT}], "parameters": {"sampleCount": 9}})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "sampleCount" in r.json()["error"]["message"]


def test_quota_exhausted_is_a_429_resource_exhausted_per_project(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "imagen-4.requests_per_minute=1",
                        "--set", "imagen-4.burst=1", "--set", "imagen-4.error_rate=0")
    body = {"instances": [{"prompt": PROMPT}]}
    assert predict(server, body).status_code == 200
    r = predict(server, body)
    assert r.status_code == 429
    err = r.json()["error"]
    assert err["code"] == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    assert "online_prediction_requests_per_base_model" in err["message"]
    assert "retry-after" not in r.headers   # Google's 429s carry none: clients back off on their own
    # Quota is per project and base model.
    assert predict(server, body, project="another-project").status_code == 200
    assert predict(server, body, model="imagen-4-enterprise").status_code == 200
