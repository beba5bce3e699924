"""Run-time control and observation: the admin API, /metrics, /healthz, --seed, --latency-scale 0,
--no-limits, and user profile files."""

from __future__ import annotations

import asyncio
import time

import httpx
from mockserver import MockServer
from prometheus_client.parser import text_string_to_metric_families

PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
RELAY_KEY = {"Authorization": "Bearer hs_test_admin_0001"}
OPENAI_KEY = {"Authorization": "Bearer sk-test-admin-0001"}


def relay(server: MockServer, **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/relay/v1/images/generations", json={"prompt": PROMPT, **body},
                      headers=RELAY_KEY, timeout=30)


def openai_images(server: MockServer, **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/openai/v1/images/generations",
                      json={"model": "dall-e-4", "prompt": PROMPT, **body}, headers=OPENAI_KEY, timeout=30)


def admin(server: MockServer, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}/admin{path}", timeout=10, **kwargs)


def requests_total(server: MockServer) -> dict[tuple[str, str, str], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {(s.labels["provider"], s.labels["model"], s.labels["status"]): s.value
            for f in text_string_to_metric_families(text) if f.name == "mock_requests"
            for s in f.samples if s.name == "mock_requests_total"}


def test_each_admin_setting_changes_what_clients_see(start_mock) -> None:
    server = start_mock("--latency-scale", "0.01", "--set", "relay.error_rate=0", "--set", "dall-e-4.error_rate=0")
    assert relay(server).status_code == 200

    server.admin("relay", outage=True)
    down = relay(server)
    assert down.status_code == 503 and down.json()["error"] == {"code": "upstream_unavailable",
                                                                "message": "The relay is unavailable"}
    server.admin("relay", outage=False)
    assert relay(server).status_code == 200

    server.admin("relay", error_rate=1.0)
    failed = [relay(server) for _ in range(10)]
    assert all(r.status_code in (400, 500, 503, 504) for r in failed)
    assert all(r.json()["error"]["code"] in ("server_error", "overloaded", "content_policy_violation",
                                             "upstream_timeout") for r in failed)
    server.admin("relay", error_rate=0.0)
    assert relay(server).status_code == 200

    # dall-e-4 never takes less than 800 ms; at scale 0.01 and 20x that is at least 160 ms.
    server.admin("dall-e-4", latency_multiplier=20)
    for _ in range(3):
        t0 = time.perf_counter()
        r = openai_images(server)
        assert r.status_code == 200 and time.perf_counter() - t0 >= 0.160
        assert int(r.headers["openai-processing-ms"]) >= 160
    server.admin("dall-e-4", latency_multiplier=1)

    server.admin("relay", requests_per_minute=60, burst=1)
    assert relay(server).status_code == 200
    limited = relay(server)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"

    status = server.admin("relay", capacity={"slots": 1, "queue": 0}, requests_per_minute=6000, burst=100,
                          latency_multiplier=1000)
    assert status["settings"]["slots"] == 1 and status["settings"]["queue"] == 0

    async def two_at_once() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            tasks = [asyncio.create_task(client.post(f"{server.url}/relay/v1/images/generations",
                                                     json={"prompt": PROMPT}, headers=RELAY_KEY))
                     for _ in range(2)]
            first = await next(asyncio.as_completed(tasks))   # the one with no slot, at once
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return [first.status_code, first.json()["error"]["code"]]

    assert asyncio.run(two_at_once()) == [503, "overloaded"]


def test_admin_reset_and_bad_admin_requests(start_mock) -> None:
    server = start_mock("--latency-scale", "0")
    before = admin(server, "GET", "/providers").json()
    assert before["relay"]["behaviours"] == ["outage", "rate_limit", "faults", "failover", "capacity", "latency"]
    server.admin("relay", outage=True, error_rate=0.5, slots=3)
    server.admin("imagen-4", latency_multiplier=4)
    assert admin(server, "GET", "/providers/relay").json()["settings"]["slots"] == 3
    assert admin(server, "POST", "/reset").status_code == 200
    after = admin(server, "GET", "/providers").json()
    assert {n: p["settings"] for n, p in after.items()} == {n: p["settings"] for n, p in before.items()}

    assert admin(server, "PATCH", "/providers/relay", json={"error_rate": 3}).status_code == 400
    assert admin(server, "PATCH", "/providers/relay", json={"slots": "many"}).status_code == 400
    assert admin(server, "PATCH", "/providers/relay", json={"colour": "red"}).status_code == 400
    assert admin(server, "PATCH", "/providers/relay", content=b"[1, 2]").status_code == 400
    assert admin(server, "PATCH", "/providers/relay", content=b"{not json").status_code == 400
    assert admin(server, "PATCH", "/providers/relay", content=b'{"slots": Infinity}').status_code == 400
    assert admin(server, "PATCH", "/providers/relay", content=b"[" * 30_000 + b"]" * 30_000).status_code == 400
    assert admin(server, "PATCH", "/providers/relay", content=b"[" * 100_000 + b"]" * 100_000).status_code == 413
    assert admin(server, "PATCH", "/providers/dall-e-9", json={"outage": True}).status_code == 404
    profiles = admin(server, "GET", "/profiles").json()
    assert profiles["midjourney-v7"]["slots"] == 98 and profiles["relay"]["sigma"] == 0.3228
    assert relay(server).status_code == 200   # none of that disturbed serving


def test_metrics_count_by_provider_model_and_status_and_healthz(start_mock) -> None:
    server = start_mock("--latency-scale", "0", "--set", "relay.error_rate=0", "--set", "dall-e-4.error_rate=0")
    for _ in range(3):
        assert relay(server, model="imagen-4").status_code == 200
    assert relay(server, model="dall-e-4").status_code == 200
    assert openai_images(server).status_code == 200
    httpx.post(f"{server.url}/openai/v1/images/generations", json={"prompt": PROMPT}, timeout=10)   # no key
    assert relay(server, model="nope").status_code == 400
    counts = requests_total(server)
    assert counts == {("relay", "imagen-4", "200"): 3, ("relay", "dall-e-4", "200"): 1,
                      ("dall-e-4", "dall-e-4", "200"): 1, ("openai", "", "401"): 1, ("relay", "", "400"): 1}
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = {s.labels.get("le"): s.value for s in families["mock_request_duration_seconds"].samples
                 if s.name.endswith("_bucket") and s.labels["provider"] == "relay"}
    assert histogram["+Inf"] == 5
    assert set(families) >= {"mock_in_flight", "mock_queue_depth"}
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and "relay" in health["providers"] and "imagen-4" in health["providers"]


def failure_pattern(seed: str) -> str:
    with MockServer("--seed", seed, "--latency-scale", "0", "--set", "relay.error_rate=0.3") as server:
        with httpx.Client(timeout=10) as client:
            codes = [client.post(f"{server.url}/relay/v1/images/generations", json={"prompt": PROMPT},
                                 headers=RELAY_KEY).status_code for _ in range(40)]
    return "".join("." if c == 200 else "x" for c in codes)


def test_the_same_seed_replays_the_same_failures() -> None:
    first, again, other = failure_pattern("5"), failure_pattern("5"), failure_pattern("6")
    assert first == again
    assert first != other
    assert 4 <= first.count("x") <= 22   # 30 % of 40, give or take 3 standard deviations


def test_no_limits_turns_off_rate_limits_capacity_and_errors(start_mock) -> None:
    server = start_mock("--no-limits", "--latency-scale", "0.01", "--set", "relay.error_rate=1",
                        "--set", "relay.slots=1", "--set", "relay.queue=0", "--set", "relay.requests_per_minute=1",
                        "--set", "relay.burst=1")

    async def many() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            rs = await asyncio.gather(*(client.post(f"{server.url}/relay/v1/images/generations",
                                                    json={"prompt": PROMPT}, headers=RELAY_KEY) for _ in range(30)))
            return [r.status_code for r in rs]

    assert asyncio.run(many()) == [200] * 30
    assert admin(server, "GET", "/providers/relay").json()["behaviours"] == ["outage", "failover", "latency"]
    # An outage is switched on on purpose, so it still applies.
    server.admin("relay", outage=True)
    assert relay(server).status_code == 503


def test_user_profiles_override_and_add_providers(start_mock, tmp_path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(
        "# our contract price for dall-e-4, and a model of our own built on it\n"
        "[dall-e-4]\nprice_usd = 0.045\n\n"
        '[acme-diffusion]\nbase = "dall-e-4"\nprice_usd = 0.01\n'
        "latency = { p50_ms = 900, p99_ms = 2000, min_ms = 100, max_ms = 30000 }\n")
    server = start_mock("--profiles", str(path), "--latency-scale", "0", "--set", "dall-e-4.error_rate=0",
                        "--set", "acme-diffusion.error_rate=0")
    assert openai_images(server).headers["x-cost-usd"] == "0.0450"
    added = openai_images(server, model="acme-diffusion", n=2)
    assert added.status_code == 200 and added.headers["x-cost-usd"] == "0.0200"
    assert len(added.json()["data"]) == 2
    described = admin(server, "GET", "/profiles").json()["acme-diffusion"]
    assert described["api"] == "openai" and described["p50_ms"] == 900 and described["slots"] == 99
    assert "acme-diffusion" in httpx.get(f"{server.url}/healthz", timeout=10).json()["providers"]
    # The relay keeps its own price for dall-e-4, and does not front a model it was not told of.
    assert relay(server, model="dall-e-4").json()["cost"]["usd"] == 0.05
    assert relay(server, model="acme-diffusion").status_code == 400
