"""Midjourney submits into a full task store cost what they cost into an empty one; RSS stays bounded.

One mock (`--latency-scale 0 --no-limits`: tasks finish at once and stay held). Rounds of 5,000
submits (64 at a time, 500 accounts) into the empty store alternate with floods that fill it to
its 100,000 tasks and then with 100,000 tasks of 6,000-character prompts (which hit the bytes
bound first). The ratio of the rates is what counts; the mock's RSS is read after each stage.

    flock /tmp/cpu.lock .venv/bin/python bench/midjourney_store.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtest.mockproc import MockProcess  # noqa: E402

SMALL = "Gold watch on black velvet, dramatic rim light --ar 1:1"
LARGE = "x" * 6000


async def flood(url: str, n: int, prompt: str, concurrency: int = 64) -> float:
    """Submits per second over n submits."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate, session.post(f"{url}/midjourney/mj/submit/imagine", json={"prompt": prompt},
                                          headers={"mj-api-secret": f"bench-{i % 500}"}) as resp:
                body = await resp.json()
                if body["code"] != 1:
                    raise RuntimeError(f"submit refused: {body}")

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - start)


async def main() -> None:
    with MockProcess("--latency-scale", "0", "--no-limits") as mock:
        assert mock.proc is not None
        proc = psutil.Process(mock.proc.pid)

        def rss() -> float:
            return proc.memory_info().rss / 2**20

        print(f"RSS at start: {rss():.0f} MB")
        empty = await flood(mock.url, 5000, SMALL)
        await flood(mock.url, 95_000, SMALL)
        print(f"RSS with 100,000 tasks held: {rss():.0f} MB")
        full = await flood(mock.url, 5000, SMALL)
        await flood(mock.url, 100_000, LARGE)
        large = await flood(mock.url, 5000, LARGE)
        print(f"RSS after 105,000 more with 6,000-character prompts: {rss():.0f} MB")
        print(f"submits/s: empty store {empty:,.0f}; 100,000 held {full:,.0f} (x{full / empty:.2f}); "
              f"held at the bytes bound, largest prompts {large:,.0f} (x{large / empty:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
