"""Capacity past saturation: slots, a bounded queue, latency rising in waves, then refusals."""

from __future__ import annotations

import asyncio
import time

import httpx
from mockserver import MockServer
from prometheus_client.parser import text_string_to_metric_families

PROMPT = "Linen summer dress on a wooden hanger, soft daylight"
OPENAI = ("/openai/v1/images/generations", {"Authorization": "Bearer sk-test-capacity-0001"},
          {"model": "dall-e-4", "prompt": PROMPT})
RELAY = ("/relay/v1/images/generations", {"Authorization": "Bearer hs_test_capacity_0001"},
         {"model": "imagen-4", "prompt": PROMPT})
VERTEX = ("/vertex/v1/projects/shop/locations/us-central1/publishers/google/models/imagen-4:predict",
          {"Authorization": "Bearer ya29.test-capacity-0001"}, {"instances": [{"prompt": PROMPT}]})


def gauges(server: MockServer, name: str) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {s.labels["provider"]: s.value for f in text_string_to_metric_families(text) if f.name == name
            for s in f.samples}


async def burst(url: str, route: tuple, count: int) -> list[tuple[float, httpx.Response]]:
    """`count` requests at once; (latency s, response) of each, in the order they were answered."""
    path, headers, body = route
    answered: list[tuple[float, httpx.Response]] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count)) as client:
        async def one() -> None:
            t0 = time.perf_counter()
            r = await client.post(url + path, json=body, headers=headers)
            answered.append((time.perf_counter() - t0, r))
        await asyncio.gather(*(one() for _ in range(count)))
    return answered


def test_latency_rises_in_waves_past_the_slots(start_mock, tmp_path) -> None:
    """4 slots, a queue of 8, 16 requests at once, every generation exactly 300 ms: 4 are refused
    at once, and the 12 admitted finish in three waves, the k-th no sooner than k x 300 ms."""
    profile = tmp_path / "steady.toml"
    profile.write_text("[dall-e-4]\nlatency = { p50_ms = 10000, p99_ms = 10000, min_ms = 0, max_ms = 60000 }\n")
    server = start_mock("--profiles", str(profile), "--latency-scale", "0.03", "--set", "dall-e-4.slots=4",
                        "--set", "dall-e-4.queue=8", "--set", "dall-e-4.error_rate=0")
    answered = asyncio.run(burst(server.url, OPENAI, 16))
    refused = [r for _, r in answered if r.status_code == 503]
    served = sorted(t for t, r in answered if r.status_code == 200)
    assert len(refused) == 4 and len(served) == 12
    for r in refused:
        assert r.json()["error"] == {"message": "The server is overloaded or not ready yet.",
                                     "type": "server_error", "param": None, "code": None}
    waves = [served[0:4], served[4:8], served[8:12]]
    for k, wave in enumerate(waves, 1):
        assert min(wave) >= k * 0.300 * 0.99   # a queued request waits for whole generations
    assert max(waves[0]) < min(waves[1]) and max(waves[1]) < min(waves[2])


def test_queue_depth_and_refusals_in_every_api_shape(start_mock) -> None:
    """Generations that take hours, so the state is still while it is looked at: 4 running and
    8 queued per provider, the 9th to wait refused in that provider's own way."""
    args = ["--latency-scale", "1"]
    for name in ("dall-e-4", "imagen-4", "relay", "midjourney-v7"):
        args += ["--set", f"{name}.slots=4", "--set", f"{name}.queue=8", "--set", f"{name}.error_rate=0",
                 "--set", f"{name}.latency_multiplier=1000"]
    server = start_mock(*args, "--set", "midjourney-v7.per_key_slots=0")

    async def saturate(client: httpx.AsyncClient, route: tuple) -> tuple[list[httpx.Response], list[asyncio.Task]]:
        """16 at once: the 4 refusals (only they answer), and the 12 still waiting, their clients connected."""
        path, headers, body = route
        tasks = [asyncio.create_task(client.post(server.url + path, json=body, headers=headers)) for _ in range(16)]
        refused: list[httpx.Response] = []
        for done in asyncio.as_completed(tasks):
            refused.append(await done)
            if len(refused) == 4:
                break
        return refused, [t for t in tasks if not t.done()]

    async def scenario() -> tuple[dict[str, list[httpx.Response]], dict[str, float], dict[str, float],
                                  dict[str, float]]:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=60)) as client:
            refused, waiting = {}, []
            for name, route in (("openai", OPENAI), ("vertex", VERTEX), ("relay", RELAY)):
                refused[name], pending = await saturate(client, route)
                waiting += pending
            codes = []
            for i in range(13):
                r = await client.post(f"{server.url}/midjourney/mj/submit/imagine", json={"prompt": PROMPT},
                                      headers={"mj-api-secret": f"mj-capacity-{i:04d}"})
                codes.append(r.json()["code"])
            assert codes == [1] * 4 + [22] * 8 + [23]
            queued, running = gauges(server, "mock_queue_depth"), gauges(server, "mock_in_flight")
            for t in waiting:   # the clients give up: their calls leave the slots and the queue
                t.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        for _ in range(200):
            after = gauges(server, "mock_in_flight")
            if all(after[name] == 0 for name in ("dall-e-4", "imagen-4", "relay")):
                break
            await asyncio.sleep(0.05)
        return refused, queued, running, after

    refused, queued, running, after = asyncio.run(scenario())
    assert [r.status_code for r in refused["openai"]] == [503] * 4
    assert refused["openai"][0].json()["error"]["type"] == "server_error"
    assert [r.status_code for r in refused["vertex"]] == [503] * 4
    assert refused["vertex"][0].json() == {"error": {"code": 503, "message": "The service is currently unavailable.",
                                                     "status": "UNAVAILABLE"}}
    assert [r.status_code for r in refused["relay"]] == [503] * 4
    assert refused["relay"][0].json()["error"]["code"] == "overloaded"
    for name in ("dall-e-4", "imagen-4", "relay", "midjourney-v7"):
        assert queued[name] == 8 and running[name] == 4, name
    # Abandoned calls are cancelled; submitted Midjourney jobs are not abandoned (no client waits on them).
    assert after["dall-e-4"] == after["imagen-4"] == after["relay"] == 0
    assert after["midjourney-v7"] == 4
    assert gauges(server, "mock_queue_depth")["dall-e-4"] == 0
    assert queued["dall-e-4-flash"] == 0 and running["dall-e-4-flash"] == 0
