"""What the Locust process carries: the libraries it imports, the heap pages it hands back, its allocator
setting and what Locust keeps per second.

Each library below cost the process megabytes of RSS for a little use (BENCHMARKS.md, the 10-minute
memory run): scipy (14 MB) for the binomial quantile, Faker (6 MB) for the prompts' pools, Pillow (4 MB)
for the photos only edits upload; Flask and its kin (6 MB) for a web UI a headless run never serves;
pydantic and the summary's models (8 MB) for a document built once, at the run's end; matplotlib (15 MB,
about 40 MB with the figures drawn) for report.html, drawn in a child process instead.
loadtest.locust.heap hands freed heap pages back, so a long run's RSS is its live memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -c code args` in a fresh process, from the project's root."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent)


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
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


WEB_STACK = ("flask", "werkzeug", "flask_login", "flask_cors")


def test_a_process_with_no_web_ui_does_not_import_flask_until_a_web_ui_is_made() -> None:
    # What `python -m loadtest.locust.headless` does before Locust's main: the locustfile and Locust's
    # Environment load without Flask; making a web UI after all loads it and gives Locust's real one.
    code = ("import sys; from loadtest.locust import headless; headless.defer_web_ui(); "
            "import locust.main, locustfiles.imagegen; from locust.env import Environment; "
            f"web = sorted(m for m in sys.modules if m.split('.')[0] in {WEB_STACK!r}); "
            "assert not web, web; "
            "env = Environment(); ui = env.create_web_ui('127.0.0.1', 0); "
            "import locust.web; assert type(ui) is locust.web.WebUI, type(ui); "
            "assert 'flask' in sys.modules; print('ok')")
    proc = run_python(code)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr


def test_a_locust_process_imports_pydantic_only_when_it_builds_the_summary() -> None:
    # Everything a headless run loads before its first request: Locust's main, the suite's plugin and
    # the locustfile. The summary's models arrive with the document, and build it.
    code = ("import sys; from loadtest.locust import headless; headless.defer_web_ui(); "
            "import locust.main, loadtest.locust.plugin, loadtest.locust.run, locustfiles.imagegen; "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' or m == 'loadtest.summary'); "
            "assert not heavy, heavy; "
            "from loadtest.summary import Summary; assert 'pydantic' in sys.modules; "
            "print(Summary.__name__)")
    proc = run_python(code)
    assert proc.returncode == 0 and proc.stdout.strip() == "Summary", proc.stderr


def test_a_locust_process_ends_its_run_without_importing_matplotlib(tmp_path: Path) -> None:
    # What the run's end loads in the Locust process (the verdict, the summary, its files and the hand-over
    # of report.html to a child), then the hand-over itself: the page is there, matplotlib never came.
    code = ("import sys; from pathlib import Path; from loadtest.locust import headless; "
            "headless.defer_web_ui(); import locust.main, loadtest.locust.plugin, loadtest.locust.run; "
            "from loadtest import provider_side, gate, summary; from loadtest.report import console, write_all, "
            "write_html_apart; from loadtest.summary import Summary; "
            "doc = Summary.read('tests/data/flash_sale-dall-e-4.json'); out = Path(sys.argv[1]); "
            "write_all(doc, out); page = write_html_apart(doc, out); "
            "drawn = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'); "
            "assert not drawn, drawn; print(page.name, page.stat().st_size > 10_000)")
    proc = run_python(code, str(tmp_path))
    assert proc.returncode == 0 and proc.stdout.split() == ["report.html", "True"], proc.stderr
    assert (tmp_path / "latency_over_time.png").stat().st_size > 10_000


def test_trim_hands_freed_heap_pages_back() -> None:
    proc = run_python(CODE)
    assert proc.returncode == 0, proc.stderr
    before, after, trimmed, _ = proc.stdout.split()
    assert trimmed == "True"
    # 78 of the 80 MB were freed; at least half of them must leave RSS.
    assert int(before) - int(after) > 40 * 2 ** 20, (before, after)


def test_locust_per_second_counts_keep_the_last_minute_and_the_current_rate() -> None:
    from locust.stats import RequestStats

    from loadtest.locust.stats_window import KEEP_S, forget_old_seconds

    stats = RequestStats()
    now = 2_000_000_000.0
    for name in ("relay midjourney-v7", "openai dall-e-4"):
        for entry in (stats.get(name, "POST"), stats.total):
            for age in range(600):              # ten minutes of seconds, 1,000 requests and 3 failures each
                entry.num_reqs_per_sec[int(now) - age] += 1000
                entry.num_fail_per_sec[int(now) - age] += 3
    stats.total.last_request_timestamp = now
    stats.total.start_time = now - 600
    before = (stats.total.current_rps, stats.total.current_fail_per_sec,
              [stats.get(n, "POST").current_rps for n in ("relay midjourney-v7", "openai dall-e-4")])
    assert before == (2000.0, 6.0, [1000.0, 1000.0])
    dropped = forget_old_seconds(stats, now=now)
    assert dropped == 3 * 2 * (600 - KEEP_S - 1)          # 3 entries (the total too), 2 dicts each
    for entry in (stats.total, stats.get("relay midjourney-v7", "POST")):
        assert sorted(entry.num_reqs_per_sec) == list(range(int(now) - KEEP_S, int(now) + 1))
    after = (stats.total.current_rps, stats.total.current_fail_per_sec,
             [stats.get(n, "POST").current_rps for n in ("relay midjourney-v7", "openai dall-e-4")])
    assert after == before                                  # what Locust reads of them is unchanged
    assert forget_old_seconds(stats, now=now) == 0


def test_locust_chart_history_is_thinned_evenly_to_its_limit() -> None:
    from loadtest.locust.stats_window import HistoryThinner

    thin = HistoryThinner(limit=10)
    history: list[int] = []
    for made in range(1, 101):          # Locust appends a point; the thinner looks every 7 points
        history.append(made - 1)
        if made % 7 == 0:
            thin(history)
            assert len(history) <= 10, (made, history)
            gaps = {b - a for a, b in zip(history, history[1:])}
            assert gaps == {thin.stride}, (made, history)      # evenly spaced, the spacing one stride
    thin(history)
    assert thin.stride == 16 and history == [0, 16, 32, 48, 64, 80, 96]
    history = list(range(12))            # Locust's reset_all() (a new list): a new run, at full resolution
    thin(history)
    assert history == [0, 2, 4, 6, 8, 10] and thin.stride == 2


def test_health_samples_are_doubles_and_travel_as_plain_lists() -> None:
    import json
    from array import array

    from loadtest.health import HealthSamples

    worker = HealthSamples(cpu=[50.0, 97.5], lag_ms=[1.0, 250.0], lag_at=[10.0, 10.25])
    assert all(isinstance(getattr(worker, f), array) for f in ("cpu", "lag_ms", "lag_at", "machine_cpu"))
    worker.machine_cpu.append(40.0)
    worker.add_schedule_lag(3.2)
    sent = json.loads(json.dumps(worker.drain()))          # a worker's report to the master
    assert sent == {"lag_ms": [1.0, 250.0], "lag_at": [10.0, 10.25], "cpu": [50.0, 97.5], "machine_cpu": [40.0],
                    "schedule_lag": {"4": 1}}
    assert not worker.cpu and not worker.lag_ms and worker.schedule_lag == {}
    master = HealthSamples()
    master.merge(sent)
    master.merge(sent)
    assert list(master.cpu) == [50.0, 97.5, 50.0, 97.5] and master.schedule_lag == {4: 2}
    assert master.worst_stall_ms(10.1, 10.3) == 250.0


# In a fresh process: a 4 MB block freed (glibc now raises its mmap threshold to 4 MB), then ten 200 KB blocks
# held; how many of them have their own mapping (mallinfo2's hblks), with the threshold fixed or not.
MMAP_CODE = """
import ctypes, sys
from loadtest.locust import heap
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MI
big = bytearray(4 * 2 ** 20)
del big
fixed = heap.fix_mmap_threshold() if sys.argv[1] == "fix" else None
before = libc.mallinfo2().hblks
blocks = [bytearray(200 * 1024) for _ in range(10)]
print(fixed, libc.mallinfo2().hblks - before)
"""


def test_a_fixed_mmap_threshold_gives_large_blocks_their_own_mapping() -> None:
    def mapped(how: str) -> tuple[str, int]:
        proc = run_python(MMAP_CODE, how)
        assert proc.returncode == 0, proc.stderr
        took, count = proc.stdout.split()
        return took, int(count)

    assert mapped("glibc") == ("None", 0)        # glibc's own raised threshold: all ten from the heap
    assert mapped("fix") == ("True", 10)         # fixed at 128 KB: each its own mapping, unmapped when freed
