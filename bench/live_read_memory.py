"""What the live gate's reads of the providers' record do to a process's RSS, alone.

Starts the mock, gives its record two windows of relay answers, then reads the record's summary 600 times
(as the live gate does, at most every 2 s of a run: without the per-second rows) with a few small objects
made and dropped between reads, and prints the process's RSS growth every 150 reads (READS=N for more).
Each read decodes the record's exact histograms, sparse (mockprovider.hdr.decode_buckets: the buckets
with counts, a few kilobytes each, not a dense 184 KB HdrHistogram).

    python bench/live_read_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mockprovider.record_client import RecordClient  # noqa: E402

READS = int(__import__("os").environ.get("READS", "600"))


def post(url: str, path: str, body: dict, headers: dict[str, str] | None = None) -> None:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        urllib.request.urlopen(req, timeout=10).read()
    except OSError:
        pass


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        mock = subprocess.Popen([sys.executable, "-m", "mockprovider", "--port", "0", "--latency-scale", "0",
                                 "--ready-file", str(ready)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (ready.exists() and ready.read_text().strip()):
                if time.monotonic() > deadline:
                    raise RuntimeError("the mock did not start")
                time.sleep(0.1)
            url = json.loads(ready.read_text())["url"]
            body = {"model": "midjourney-v7", "prompt": "a mug", "n": 1}
            for window in ("ramp", "hold"):
                post(url, "/admin/record/window", {"name": window})
                for i in range(300):
                    post(url, "/relay/v1/images/generations", body, {"Authorization": f"Bearer sk-relay-{i % 64:05d}"})
            client = RecordClient(url)
            me = psutil.Process()
            print("series in the record:", len(client.summary().series))
            start = me.memory_info().rss
            kept: list[list[str]] = []
            for k in range(1, READS + 1):
                client.summary(seconds=False)
                kept.append([str(i) * 3 for i in range(200)])   # small long-lived objects, as a run makes
                if len(kept) > 50:
                    kept.pop(0)
                if k % 150 == 0:
                    print(f"{k} reads: RSS +{(me.memory_info().rss - start) / 1e6:.1f} MB")
        finally:
            mock.terminate()
            mock.wait(10)


if __name__ == "__main__":
    main()
