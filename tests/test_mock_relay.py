"""The aggregating relay, driven by an httpx client written the way the seed's client is."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import openai
import pytest
from mockserver import MockServer
from openai.types import ImagesResponse
from prometheus_client.parser import text_string_to_metric_families

KEY = "hs_test_relay_0001"
PROMPT = "Minimalist white sneaker on marble surface, studio lighting, transparent background"


class RelayClient:
    """The seed's integration pattern: one POST per image, a semaphore for batches, and a retry on
    429 with exponential backoff plus jitter (`base * 2**attempt + uniform(0, 1)`, 5 tries)."""

    def __init__(self, base_url: str, api_key: str, *, base_delay: float = 1.0, jitter: float = 1.0,
                 rng: random.Random | None = None) -> None:
        self.base_url = f"{base_url}/relay/v1"
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.base_delay, self.jitter = base_delay, jitter
        self.rng = rng or random.Random(0)
        self.retries = 0

    async def generate_image(self, client: httpx.AsyncClient, prompt: str, model: str = "midjourney-v7",
                             width: int = 1024, height: int = 1024, style_preset: str | None = None,
                             seed: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"prompt": prompt, "model": model, "width": width, "height": height}
        if style_preset:
            payload["style_preset"] = style_preset
        if seed is not None:
            payload["seed"] = seed
        response = await client.post(f"{self.base_url}/images/generations", headers=self.headers, json=payload)
        response.raise_for_status()
        return response.json()

    async def generate_with_retry(self, client: httpx.AsyncClient, prompt: str, max_retries: int = 5,
                                  **kwargs: Any) -> dict[str, Any]:
        for attempt in range(max_retries):
            try:
                return await self.generate_image(client, prompt, **kwargs)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 429:
                    raise
                self.retries += 1
                await asyncio.sleep(self.base_delay * 2 ** attempt + self.rng.uniform(0, self.jitter))
        raise RuntimeError(f"failed after {max_retries} tries")

    async def batch_generate(self, prompts: list[str], max_concurrent: int = 10, **kwargs: Any) -> list[dict]:
        semaphore = asyncio.Semaphore(max_concurrent)
        async with httpx.AsyncClient(timeout=30.0) as client:
            async def one(prompt: str) -> dict[str, Any]:
                async with semaphore:
                    return await self.generate_with_retry(client, prompt, **kwargs)
            return await asyncio.gather(*(one(p) for p in prompts))


def statuses(server: MockServer, provider: str = "relay") -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics", timeout=10).text):
        for s in family.samples:
            if s.name == "mock_requests_total" and s.labels["provider"] == provider:
                out[s.labels["status"]] = out.get(s.labels["status"], 0) + s.value
    return out


@pytest.fixture(scope="module")
def mock():
    with MockServer("--latency-scale", "0.05", "--seed", "0", "--set", "relay.error_rate=0") as server:
        yield server


def post(server: MockServer, body: dict[str, Any], key: str = KEY) -> httpx.Response:
    return httpx.post(f"{server.url}/relay/v1/images/generations", json=body,
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_seed_client_single_image(mock: MockServer) -> None:
    client = RelayClient(mock.url, KEY)

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await client.generate_image(http, PROMPT, model="midjourney-v7", style_preset="photography",
                                               seed=42)

    result = asyncio.run(go())
    image = result["data"][0]
    assert image["url"].startswith(f"{mock.url}/images/") and image["seed"] == 42
    assert image["revised_prompt"] == PROMPT
    assert result["model"] == "midjourney-v7"
    assert 0.9 <= result["quality_score"] <= 0.99
    assert result["cost"] == {"images": 1, "usd": 0.08} and "usage" not in result
    assert httpx.get(image["url"], timeout=10).headers["content-type"] == "image/png"


def test_seed_client_batch_with_a_semaphore(mock: MockServer) -> None:
    prompts = [f"Professional product photo of {p} on white background"
               for p in ("sneaker", "watch", "handbag", "sunglasses", "jewelry")] * 6
    results = asyncio.run(RelayClient(mock.url, KEY).batch_generate(prompts, max_concurrent=10, model="dall-e-4"))
    assert len(results) == 30
    assert {r["model"] for r in results} == {"dall-e-4"}
    assert all(r["cost"]["usd"] == 0.05 for r in results)   # the relay's price, below direct 0.06
    assert len({r["data"][0]["url"] for r in results}) == 30      # no seed: every image differs


def test_seed_client_retries_429_with_backoff_until_served(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.requests_per_minute=600", "--set", "relay.burst=2")
    client = RelayClient(server.url, "hs_test_retry_0001", base_delay=0.05, jitter=0.2)
    results = asyncio.run(client.batch_generate([PROMPT] * 8, max_concurrent=8, model="imagen-4"))
    assert len(results) == 8 and all(r["data"][0]["url"] for r in results)
    assert client.retries >= 1
    seen = statuses(server)
    assert seen["200"] == 8 and seen["429"] == client.retries


def test_rate_limited_answer_has_the_seed_shape_and_retry_after(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.requests_per_minute=1", "--set", "relay.burst=1")
    assert post(server, {"prompt": PROMPT}).status_code == 200
    refused = post(server, {"prompt": PROMPT})
    assert refused.status_code == 429
    assert refused.json() == {"error": {"code": "rate_limit_exceeded", "message": "Too many requests"}}
    assert 59 <= int(refused.headers["retry-after"]) <= 60
    # The bucket is per key: another key is served at once.
    assert post(server, {"prompt": PROMPT}, key="hs_another_key_0002").status_code == 200


def test_auth_and_validation_errors_have_the_seed_shape(mock: MockServer) -> None:
    r = post(mock, {"prompt": PROMPT}, key="sk-not-a-relay-key")
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "invalid_api_key", "message": "Invalid API key"}}
    r = post(mock, {"prompt": PROMPT, "width": 100, "height": 100})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["message"].startswith("Width must be between")
    r = post(mock, {"prompt": "too short"})
    assert r.status_code == 400 and "at least 10 characters" in r.json()["error"]["message"]
    r = post(mock, {"prompt": PROMPT, "style_preset": "watercolour"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "style_preset"


def test_failover_to_the_fallback_model_and_its_price(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0")
    server.admin("midjourney-v7", outage=True)
    r = post(server, {"prompt": PROMPT, "model": "midjourney-v7"})
    assert r.status_code == 200
    assert r.headers["x-relay-failover"] == "midjourney-v7->dall-e-4-flash"
    assert r.json()["model"] == "dall-e-4-flash"
    assert r.headers["x-cost-usd"] == "0.0200"                  # dall-e-4-flash's own price
    assert r.json()["cost"]["usd"] == 0.02
    # A model whose upstream is up is served by it, without the header.
    direct = post(server, {"prompt": PROMPT, "model": "dall-e-4"})
    assert direct.status_code == 200 and "x-relay-failover" not in direct.headers

    server.admin("dall-e-4-flash", outage=True)
    r = post(server, {"prompt": PROMPT, "model": "midjourney-v7"})
    assert r.status_code == 200 and r.headers["x-relay-failover"] == "midjourney-v7->dall-e-4"
    server.admin("dall-e-4", outage=True)
    r = post(server, {"prompt": PROMPT, "model": "midjourney-v7"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "upstream_unavailable"

    httpx.post(f"{server.url}/admin/reset", timeout=10).raise_for_status()
    r = post(server, {"prompt": PROMPT, "model": "midjourney-v7"})
    assert r.status_code == 200 and "x-relay-failover" not in r.headers


def test_the_openai_sdk_reads_the_relays_answer(mock: MockServer) -> None:
    """Pointed at the relay, `client.images.generate` parses the answer with its own types: the cost is
    a field and a header of its own, and OpenAI's size and quality are honoured."""
    sdk = openai.OpenAI(api_key=KEY, base_url=f"{mock.url}/relay/v1", max_retries=0)
    raw = sdk.images.with_raw_response.generate(model="dall-e-4", prompt=PROMPT, size="1024x1792", quality="high")
    result = raw.parse()
    assert isinstance(result, ImagesResponse)
    assert result.usage is None and result.size == "1024x1792" and result.quality == "high"
    image = (result.data or [])[0]
    assert image.url and image.url.startswith(f"{mock.url}/images/") and image.revised_prompt == PROMPT
    assert raw.headers["x-cost-usd"] == "0.0500"
    assert result.model_extra is not None and result.model_extra["cost"] == {"images": 1, "usd": 0.05}
    # The seed's own fields are still there for the seed's client.
    assert result.model_extra["model"] == "dall-e-4" and 0.9 <= result.model_extra["quality_score"] <= 0.99

    with pytest.raises(openai.BadRequestError) as bad:
        sdk.images.generate(model="dall-e-4", prompt=PROMPT, size="2048x2048")
    assert bad.value.status_code == 400 and bad.value.code == "invalid_request" and bad.value.param == "size"
    with pytest.raises(openai.BadRequestError) as quality:
        sdk.images.generate(model="dall-e-4", prompt=PROMPT, quality="ultra")  # type: ignore[arg-type]
    assert quality.value.param == "quality"


def test_size_or_width_and_height_but_they_must_agree(mock: MockServer) -> None:
    wide = post(mock, {"prompt": PROMPT, "model": "dall-e-4", "size": "1792x1024"})
    assert wide.status_code == 200 and wide.json()["size"] == "1792x1024"
    same = post(mock, {"prompt": PROMPT, "model": "dall-e-4", "size": "1792x1024", "width": 1792, "height": 1024})
    assert same.status_code == 200 and same.json()["size"] == "1792x1024"
    clash = post(mock, {"prompt": PROMPT, "model": "dall-e-4", "size": "1792x1024", "width": 1024})
    assert clash.status_code == 400 and clash.json()["error"]["param"] == "size"
    seed_shape = post(mock, {"prompt": PROMPT, "model": "dall-e-4", "width": 1024, "height": 1024}).json()
    assert "size" not in seed_shape and "quality" not in seed_shape   # the seed's request gets the seed's answer
    standard = post(mock, {"prompt": PROMPT, "model": "dall-e-4", "quality": "standard"}).json()
    assert standard["size"] == "1024x1024" and "quality" not in standard   # not a value the SDK's type names
