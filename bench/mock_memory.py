"""The mock's memory and speed under floods of distinct clients: is every table it keeps bounded?

One mock per flood (`python -m mockprovider --latency-scale 0 --seed 0`, limits on, injected errors off,
pinned to CPU 1), the client on CPU 0: 64 keep-alive connections of a small asyncio client sending
requests one after another on each, every request with a key (or job, or image) never used before.
The mock's RSS is sampled (psutil) before the flood, every 20,000 requests during it, and 5 s after it.

- relay: `POST /relay/v1/images/generations`, `Authorization: Bearer hs_flood_<n>`, 240,000 keys;
  requests_per_minute at its floor (one an hour), so no rate-limit bucket ever refills and the
  bucket table can only be bounded by its cap;
- openai: `POST /openai/v1/images/generations` (dall-e-4), `Bearer sk-flood-<n>`, 240,000 keys, the same;
- midjourney: `POST /midjourney/mj/submit/imagine`, `mj-api-secret: mj-flood-<n>`, 360,000 jobs (each
  secret an account with its own per-key pool; finished jobs are kept for their retention time, at
  most 100,000 of them; the provider-side record keeps the newest 200,000 answers), so past
  200,000 every table the flood fills is full;
- images: `POST /relay/v1/images/generations` with `"response_format": "b64_json"` and `--image-kb` at
  its largest, a new image (digest) in each answer, for at most 60 s (image URLs are signed, so a
  client cannot make up new ones).

    python bench/mock_memory.py [relay openai midjourney images]   # the tables on stdout
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
from procs import CLIENT_CPU, mock_command, server

from mockprovider.images import MAX_IMAGE_BYTES
from mockprovider.limits import MAX_RATE_LIMIT_KEYS as TABLE_CAP
from mockprovider.record import DEFAULT_CAP as RECORD_CAP

CONNECTIONS = 64
SAMPLE_EVERY = 20_000
PROMPT = "Minimalist white sneaker on marble surface, studio lighting"
SLOWEST_RPM = "0.0166667"   # limits.SETTING_RANGES' floor, one request an hour, as --set text
IMAGE_SECONDS = 60.0
MAX_KB = MAX_IMAGE_BYTES // 1024


def _post(path: str, headers: str, body: bytes) -> Callable[[int], bytes]:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n\r\n")
    return lambda n: head.replace("{n}", f"{n:07d}").encode() + body


@dataclass
class Flood:
    name: str
    what: str
    request: Callable[[int], bytes]
    count: int
    mock_args: tuple[str, ...] = ()
    seconds: float | None = None       # a time limit, for floods too slow to finish
    connections: int = CONNECTIONS


def floods() -> dict[str, Flood]:
    body = json.dumps({"prompt": PROMPT}).encode()
    return {f.name: f for f in (
        Flood("relay", "distinct relay keys", count=240_000,
              request=_post("/relay/v1/images/generations", "Authorization: Bearer hs_flood_{n}", body),
              mock_args=("--set", "relay.error_rate=0", "--set", f"relay.requests_per_minute={SLOWEST_RPM}")),
        Flood("openai", "distinct OpenAI keys", count=240_000,
              request=_post("/openai/v1/images/generations", "Authorization: Bearer sk-flood-{n}",
                            json.dumps({"model": "dall-e-4", "prompt": PROMPT}).encode()),
              mock_args=("--set", "dall-e-4.error_rate=0", "--set", f"dall-e-4.requests_per_minute={SLOWEST_RPM}")),
        Flood("midjourney", "Midjourney jobs, each from a distinct secret", count=360_000, seconds=240.0,
              request=_post("/midjourney/mj/submit/imagine", "mj-api-secret: mj-flood-{n}", body),
              mock_args=("--set", "midjourney-v7.error_rate=0")),
        Flood("images", f"distinct images of the largest size allowed ({MAX_KB:,} KB)", count=100_000,
              seconds=IMAGE_SECONDS, connections=4,
              request=_post("/relay/v1/images/generations", "Authorization: Bearer hs_flood_{n}",
                            json.dumps({"prompt": PROMPT, "response_format": "b64_json"}).encode()),
              mock_args=("--image-kb", str(MAX_KB), "--set", "relay.error_rate=0",
                         "--set", "relay.requests_per_minute=1000000", "--set", "relay.burst=1000000")),
    )}


@dataclass
class Result:
    flood: Flood
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    rss_before: int = 0
    rss_after: int = 0
    samples: list[tuple[int, float, int]] = field(default_factory=list)   # (requests done, seconds, RSS)
    seconds: float = 0.0
    stopped: str = ""


async def _connection(port: int, flood: Flood, result: Result, next_n: list[int], deadline: float,
                      on_done: Callable[[], None]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while next_n[0] < flood.count and time.monotonic() < deadline:
            n = next_n[0]
            next_n[0] += 1
            writer.write(flood.request(n))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.sent += 1
            on_done()
    finally:
        writer.close()


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def run_flood(flood: Flood) -> Result:
    result = Result(flood)
    with server(mock_command("--latency-scale", "0", "--seed", "0", *flood.mock_args)) as url:
        port = int(url.rsplit(":", 1)[1])
        time.sleep(1.0)
        result.rss_before = _rss(url.pid)
        started = time.monotonic()
        deadline = started + flood.seconds if flood.seconds else float("inf")

        def on_done() -> None:
            if result.sent % SAMPLE_EVERY == 0:
                result.samples.append((result.sent, time.monotonic() - started, _rss(url.pid)))

        async def drive() -> None:
            next_n = [0]
            await asyncio.gather(*(_connection(port, flood, result, next_n, deadline, on_done)
                                   for _ in range(flood.connections)))

        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
        try:
            asyncio.run(drive())
        finally:
            os.sched_setaffinity(0, affinity)
        result.seconds = time.monotonic() - started
        if result.sent < flood.count:
            result.stopped = f"stopped at the {flood.seconds:.0f} s limit"
        if not result.samples or result.samples[-1][0] != result.sent:
            result.samples.append((result.sent, result.seconds, _rss(url.pid)))
        time.sleep(5.0)
        result.rss_after = _rss(url.pid)
    return result


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def section(results: list[Result]) -> str:
    out = ["## Mock provider: memory under floods of distinct clients", "",
           "Command: `python bench/run.py mock_memory` (or `python bench/mock_memory.py [FLOOD...]`). "
           + __doc__.split("\n\n")[1].replace("\n", " ").strip(), ""]
    for line in __doc__.split("\n\n")[2].strip().splitlines():
        out.append(line)
    out += ["", "| flood | requests | answers | RSS before | RSS at the end | RSS 5 s after | growth |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        answers = ", ".join(f"{s}: {c:,}" for s, c in sorted(r.statuses.items()))
        out.append(f"| {r.flood.what} | {r.sent:,}{' (' + r.stopped + ')' if r.stopped else ''} | {answers} | "
                   f"{_mb(r.rss_before)} | {_mb(r.samples[-1][2])} | {_mb(r.rss_after)} | "
                   f"{_mb(r.rss_after - r.rss_before)} |")
    for r in results:
        out += ["", f"### {r.flood.what}", "",
                "| requests done | RSS | requests/s over the last window |", "| ---: | ---: | ---: |"]
        prev_n, prev_t = 0, 0.0
        rates = []
        for n, t, rss in r.samples:
            rate = (n - prev_n) / (t - prev_t) if t > prev_t else 0.0
            rates.append(rate)
            out.append(f"| {n:,} | {_mb(rss)} | {rate:,.0f} |")
            prev_n, prev_t = n, t
        if len(rates) >= 2:
            out += ["", f"Requests/s: first window {rates[0]:,.0f}, last {rates[-1]:,.0f}, median "
                        f"{statistics.median(rates):,.0f}; {r.sent:,} requests in {r.seconds:.1f} s."]
            if rates[-1] < 0.1 * statistics.median(rates):
                out[-1] += " The last window ran at under a tenth of the median: the flood stalled the mock."
        cap, table = ((RECORD_CAP, "the provider-side record's ring (200,000 answers), the last table to fill")
                      if r.flood.name == "midjourney" else (TABLE_CAP, "the rate-limit table's cap"))
        past = [rss for n, _, rss in r.samples if n > cap]
        if r.flood.name in ("relay", "openai", "midjourney") and len(past) >= 2:
            out += ["", f"Past {table} ({cap:,}): RSS {_mb(past[0])} at the first "
                        f"sample, {_mb(past[-1])} at the last, {_mb(max(past) - min(past))} apart over "
                        f"{r.sent - cap:,} more."]
    return "\n".join(out) + "\n"


def run(names: list[str] | None = None) -> str:
    chosen = floods()
    results = []
    for name in names or list(chosen):
        print(f"mock_memory: {chosen[name].what} ...", flush=True)
        results.append(run_flood(chosen[name]))
    return section(results)


if __name__ == "__main__":
    print(run(sys.argv[1:] or None))
