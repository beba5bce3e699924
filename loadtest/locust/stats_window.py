"""Locust's per-second request counts, kept for the last minute only.

Each of Locust's stats entries counts requests and failures per wall-clock second
(`StatsEntry.num_reqs_per_sec`, `num_fail_per_sec`) for the whole run, and reads only the last
12 seconds of them (`current_rps`, `current_fail_per_sec`: the web UI's and the CSV history's
"current" rates). Over the seed's 4-hour run that is 14,400 keys per entry and dict, about
3.5 MB the process never needs again. The suite's own per-second timeline is the recorder's.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["KEEP_S", "forget_old_seconds"]

KEEP_S = 60        # five times what Locust reads, so a late report from a worker still lands
FORGET_EVERY_S = 60


def forget_old_seconds(stats: Any, now: float | None = None) -> int:
    """Drop the per-second counts older than KEEP_S from every entry of a Locust RequestStats (the
    totals too); how many were dropped."""
    cutoff = int(time.time() if now is None else now) - KEEP_S
    dropped = 0
    for entry in (*stats.entries.values(), stats.total):
        for per_second in (entry.num_reqs_per_sec, entry.num_fail_per_sec):
            old = [t for t in per_second if t < cutoff]
            for t in old:
                del per_second[t]
            dropped += len(old)
    return dropped
