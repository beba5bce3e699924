"""The OpenAI Images wire format, spoken by the official `openai` SDK against the real mock."""

from __future__ import annotations

import base64
import time

import httpx
import openai
import pytest
from mockserver import MockServer
from prometheus_client.parser import text_string_to_metric_families

KEY = "sk-test-openai-0001"
PROMPT = "Minimalist white sneaker on marble surface, studio lighting"


@pytest.fixture(scope="module")
def mock():
    """Latency at 1 %, limits on, injected errors off: these tests check the wire format, not luck."""
    with MockServer("--latency-scale", "0.01", "--seed", "0", "--set", "dall-e-4.error_rate=0",
                    "--set", "dall-e-4-flash.error_rate=0") as server:
        yield server


def client(server: MockServer, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=f"{server.url}/openai/v1", max_retries=0, **kwargs)


def counts(server: MockServer, provider: str) -> dict[str, float]:
    """mock_requests_total for one provider, by status."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "mock_requests":
            for s in family.samples:
                if s.name == "mock_requests_total" and s.labels["provider"] == provider:
                    out[s.labels["status"]] = out.get(s.labels["status"], 0) + s.value
    return out


def test_generate_url_and_b64_with_the_sdk(mock: MockServer) -> None:
    sdk = client(mock)
    by_url = sdk.images.generate(model="dall-e-4", prompt=PROMPT, n=2, size="1024x1792", response_format="url")
    assert len(by_url.data) == 2
    urls = [d.url for d in by_url.data]
    assert all(u and u.startswith(f"{mock.url}/images/") for u in urls)
    assert urls[0] != urls[1]
    assert by_url.data[0].revised_prompt == PROMPT
    assert abs(by_url.created - time.time()) < 3600
    for u in urls:
        r = httpx.get(u, timeout=10)
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG\r\n\x1a\n")

    by_b64 = sdk.images.generate(model="dall-e-4-flash", prompt=PROMPT, size="512x512", response_format="b64_json")
    assert len(by_b64.data) == 1
    assert base64.b64decode(by_b64.data[0].b64_json or "").startswith(b"\x89PNG")


@pytest.mark.parametrize("size", ["256x256", "512x512", "1024x1024", "1792x1024"])
def test_every_supported_size(mock: MockServer, size: str) -> None:
    result = client(mock).images.generate(model="dall-e-4", prompt=PROMPT, size=size)  # type: ignore[arg-type]
    assert result.data[0].url


def test_sdk_raises_the_right_exception_with_the_openai_error_body(mock: MockServer) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        openai.OpenAI(api_key="not-a-key", base_url=f"{mock.url}/openai/v1", max_retries=0).images.generate(
            model="dall-e-4", prompt=PROMPT)
    assert auth.value.status_code == 401
    assert auth.value.code == "invalid_api_key" and auth.value.type == "invalid_request_error"
    assert isinstance(auth.value.body, dict) and "Incorrect API key provided" in auth.value.body["message"]
    assert "not-a-key" not in auth.value.body["message"]   # echoed masked, as OpenAI does

    with pytest.raises(openai.BadRequestError) as bad:
        client(mock).images.generate(model="dall-e-4", prompt=PROMPT, size="2048x2048")  # type: ignore[arg-type]
    assert bad.value.status_code == 400
    assert bad.value.param == "size" and bad.value.code == "invalid_value"
    assert set(bad.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]

    with pytest.raises(openai.BadRequestError) as too_many:
        client(mock).images.generate(model="dall-e-4", prompt=PROMPT, n=11)
    assert too_many.value.param == "n" and too_many.value.code == "integer_above_max_value"


def test_rate_limit_error_carries_openai_headers_and_body(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "dall-e-4.requests_per_minute=6",
                        "--set", "dall-e-4.burst=1")
    sdk = client(server)
    first = sdk.images.with_raw_response.generate(model="dall-e-4", prompt=PROMPT)
    assert first.headers["x-ratelimit-limit-requests"] == "6"
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.images.generate(model="dall-e-4", prompt=PROMPT)
    err = limited.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded" and err.type == "requests"
    assert "Rate limit reached for dall-e-4" in err.message
    headers = err.response.headers
    # One token per 10 s, so the wait is about 10 s: a whole number of seconds, and ms to match. The ms
    # form carries the server clock's 1 ms tick on top (see retry_after_headers), so a wait of exactly
    # 10 s reads 10001 ms and 10 s: the seconds are the ms without the tick, rounded up.
    assert headers["retry-after"] == str(-(-(int(headers["retry-after-ms"]) - 1) // 1000))
    assert 9_000 <= int(headers["retry-after-ms"]) <= 10_001
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "6"
    assert headers["x-request-id"].startswith("req_")


def test_sdk_retry_honours_retry_after(start_mock) -> None:
    """With 60 requests/minute and a burst of 1, the second request is refused once with a wait of
    about a second; the SDK waits what it is told and then succeeds. The server's own counters show
    the refusal and the success, and the client's wait is at least the retry-after it was given."""
    server = start_mock("--latency-scale", "0", "--set", "dall-e-4.requests_per_minute=60",
                        "--set", "dall-e-4.burst=1")
    seen: list[tuple[float, int, str | None]] = []

    def record(response) -> None:
        seen.append((time.monotonic(), response.status_code, response.headers.get("retry-after-ms")))

    http = openai.DefaultHttpxClient(event_hooks={"response": [record]})
    sdk = client(server, http_client=http).with_options(max_retries=2)
    sdk.images.generate(model="dall-e-4", prompt=PROMPT)
    result = sdk.images.generate(model="dall-e-4", prompt=PROMPT)
    assert result.data[0].url

    statuses = [status for _, status, _ in seen]
    assert statuses == [200, 429, 200]
    refused_at, _, wait_ms = seen[1]
    assert wait_ms is not None and 1 <= int(wait_ms) <= 1_002
    assert seen[2][0] - refused_at >= int(wait_ms) / 1000
    assert counts(server, "dall-e-4") == {"200": 2, "429": 1}
