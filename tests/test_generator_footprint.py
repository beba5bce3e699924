"""What the Locust process carries: the libraries it imports, and the heap pages it hands back.

Each library below cost the process megabytes of RSS for a little use (BENCHMARKS.md, the 10-minute
memory run): scipy (14 MB) for the binomial quantile, Faker (6 MB) for the prompts' pools, Pillow (4 MB)
for the photos only edits upload. loadtest.locust.heap hands freed heap pages back, so a long run's RSS
is its live memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# In a fresh process: 80 MB in 1 KB blocks (malloc's heap, below its mmap threshold), every 64th kept so
# the heap cannot shrink from its top, the rest freed. RSS stays up until trim() hands the pages back.
CODE = """
import gc
from loadtest.locust import heap
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024
blocks = [bytearray(1024) for _ in range(80_000)]
kept = blocks[::64]
del blocks
gc.collect()
before = rss()
trimmed = heap.trim()
after = rss()
print(before, after, trimmed, len(kept))
"""


def test_the_locust_process_imports_neither_scipy_nor_faker_nor_pillow() -> None:
    # What the Locust process does for a scenario without edits: load the locustfile, draw prompts of every
    # use case, compute the percentiles' intervals (at a 4-hour run's size too).
    code = ("import sys; import locustfiles.imagegen; from loadtest import confidence; "
            "from loadtest.prompts import CatalogPrompts, USE_CASES; "
            "p = CatalogPrompts(1, tuple((c, 1.0) for c in USE_CASES)); [p.next() for _ in range(100)]; "
            "confidence.order_ranks(54_000, 0.99, 0.95); confidence.order_ranks(17_280_000, 0.5, 0.99); "
            "left = sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'faker', 'PIL')); "
            "assert not left, left")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr


def test_trim_hands_freed_heap_pages_back() -> None:
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    before, after, trimmed, _ = proc.stdout.split()
    assert trimmed == "True"
    # 78 of the 80 MB were freed; at least half of them must leave RSS.
    assert int(before) - int(after) > 40 * 2 ** 20, (before, after)
