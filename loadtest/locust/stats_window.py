"""Locust's per-second request counts, kept for the last minute only; its chart history, thinned.

Each of Locust's stats entries counts requests and failures per wall-clock second
(`StatsEntry.num_reqs_per_sec`, `num_fail_per_sec`) for the whole run, and reads only the last
12 seconds of them (`current_rps`, `current_fail_per_sec`: the web UI's and the CSV history's
"current" rates). Over the seed's 4-hour run that is 14,400 keys per entry and dict, about
3.5 MB the process never needs again. The suite's own per-second timeline is the recorder's.

Locust also appends a point to `RequestStats.history` (the charts of its web UI and HTML page) every 5 s,
about 1 KB each: 2,880 points, 2.9 MB, over 4 hours. `HistoryThinner` keeps at most HISTORY_LIMIT of
them, evenly spaced: each time the list outgrows the limit, every other point goes and the spacing doubles
(5 s for the first hour of a run, 10 s up to two hours, 20 s up to four).
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["HISTORY_LIMIT", "KEEP_S", "HistoryThinner", "forget_old_seconds"]

KEEP_S = 60        # five times what Locust reads, so a late report from a worker still lands
FORGET_EVERY_S = 60
HISTORY_LIMIT = 720     # an hour of Locust's 5-second points


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


class HistoryThinner:
    """Keeps a Locust `RequestStats.history` at or under `limit` points, evenly spaced in the order they came."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        if limit < 2:
            raise ValueError(f"a history limit must be at least 2, got {limit}")
        self.limit = limit
        self.stride = 1        # one point kept in every `stride` Locust made
        self._seen = 0         # points Locust made that were looked at
        self._done = 0         # the history's points up to here are thinned
        self._history: list[Any] | None = None

    def __call__(self, history: list[Any]) -> None:
        if history is not self._history or len(history) < self._done:
            # Locust's reset_all() (a new run) gives the stats a new, empty list: start over.
            self.stride, self._seen, self._done, self._history = 1, 0, 0, history
        new = history[self._done:]
        history[self._done:] = [p for i, p in enumerate(new, start=self._seen) if i % self.stride == 0]
        self._seen += len(new)
        while len(history) > self.limit:
            history[:] = history[::2]
            self.stride *= 2
        self._done = len(history)
