"""With `--workers N`, the raw entries and the live view of every worker's record as one answer.

The summary is merged by the reader (record_client.merge_summaries: exact histograms added); these
two are merged by the worker asked, so a live page or a pager reads one answer whatever it runs on.

Raw entries
    Each worker numbers its entries itself, so a merged page is read with one cursor per worker
    ("s0,s1,...", by worker index; a plain number is the same `since` for every worker). Each
    worker gives up to `limit` entries after its own cursor; the pages are merged by arrival time
    (`arrived_at`) and cut at `limit`. Every worker's entries keep their own order (their sequence
    numbers, the order they were answered in), so each worker's cursor moves to the last entry of
    its that was kept, and every entry is given once, on some page, whatever the interleaving.

Live view
    Every worker's view with its histograms of total time (HDR), added by window and by
    provider/model: counts and outcomes add, and the percentiles come from the added histograms,
    so they are exactly what one record of every answer would show. Per-second rows count from
    each worker's record start; they are shifted onto the earliest start (as merge_summaries does).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .hdr import Sparse
from .record import FIELDS, LIVE_FORMAT, live_group

REQUESTS_WORKERS_FORMAT = "mockprovider.record.requests.workers/1"
_ARRIVED_AT = FIELDS.index("arrived_at")
_SEQ = FIELDS.index("seq")
# A worker's per-second rows are asked from this many seconds before the merged `since`: how far
# apart the workers' records may have started (a reset reaches them all within milliseconds; at
# start-up they begin within a second or two of each other).
START_SKEW_S = 60


class BadCursor(ValueError):
    pass


def parse_cursor(text: str | None, workers: int) -> list[int]:
    """The per-worker `since` values of a merged page: "s0,s1,..." or one number for all."""
    if text is None or text == "":
        return [0] * workers
    parts = text.split(",")
    if len(parts) == 1:
        parts = parts * workers
    if len(parts) != workers:
        raise BadCursor(f"since must be one number or {workers} comma-separated numbers (one per worker), "
                        f"got {len(parts)}")
    try:
        values = [int(p, 10) for p in parts]
    except ValueError:
        raise BadCursor(f"since must be integers, got {text[:80]!r}") from None
    if not all(0 <= v <= 2**63 - 1 for v in values):
        raise BadCursor("since must be from 0 to 2**63-1")
    return values


def merge_requests(pages: Sequence[dict[str, Any]], since: list[int], limit: int) -> dict[str, Any]:
    """Every worker's page (record.requests, by worker index) as one page of at most `limit` entries."""
    streams = [[(row[_ARRIVED_AT], i, row) for row in page["requests"]] for i, page in enumerate(pages)]
    taken = [0] * len(pages)
    rows: list[Any] = []
    for _, i, row in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
        if len(rows) == limit:
            break
        rows.append(row)
        taken[i] += 1
    cursors: list[int] = []
    workers: list[dict[str, Any]] = []
    missed = 0
    for i, page in enumerate(pages):
        given = page["requests"]
        if taken[i] == len(given):
            cursor = int(page["last_seq"])            # all of it: where the worker itself says to go on
        else:
            cursor = int(given[taken[i] - 1][_SEQ]) if taken[i] else since[i]
        if taken[i] or not given:
            missed += int(page["missed"])             # else reported again with its next page
        cursors.append(cursor)
        workers.append({"worker": page["worker"], "record_id": page["record_id"], "since": since[i],
                        "cursor": cursor, "entries": taken[i],
                        "more": bool(page["more"]) or taken[i] < len(given), "raw": page["raw"]})
    head = _joined_head(pages, REQUESTS_WORKERS_FORMAT)
    head.update({"fields": list(FIELDS), "requests": rows, "since": ",".join(map(str, since)),
                 "cursor": ",".join(map(str, cursors)), "more": any(w["more"] for w in workers),
                 "missed": missed, "workers": workers})
    return head


def merge_live(views: Sequence[dict[str, Any]], since_s: int) -> dict[str, Any]:
    """Every worker's live view (record.live(with_hdr=True), by worker index) as one, in the one
    worker's shape (LIVE_FORMAT) plus `workers`."""
    start = min(float(v["started_at"]) for v in views)
    windows: dict[str, dict[str, Any]] = {}
    seconds: dict[int, Counter[str]] = {}
    for v in views:
        offset = float(v["started_at"]) - start
        shift = int(round(offset))
        for w in v["windows"]:
            merged = windows.setdefault(w["name"], {"started_s": float(w["started_s"]) + offset,
                                                    "all": _Group(), "providers": {}})
            merged["started_s"] = min(merged["started_s"], float(w["started_s"]) + offset)
            merged["all"].add(w)
            for p in w["providers"]:
                merged["providers"].setdefault((p["provider"], p["model"]), _Group()).add(p)
        for row in v["seconds"]:
            t = int(row["t_s"]) + shift
            if t >= since_s:
                seconds.setdefault(t, Counter()).update(row["outcomes"])
    out = _joined_head(views, LIVE_FORMAT)
    out["started_at"] = start
    out.update({
        "now_s": round(max(float(v["now"]) for v in views) - start, 3),
        "windows": [{"name": name, "started_s": round(w["started_s"], 6), **w["all"].json(),
                     "providers": [{"provider": p, "model": m, **g.json()}
                                   for (p, m), g in sorted(w["providers"].items())]}
                    for name, w in windows.items()],
        "seconds": [{"t_s": t, "requests": sum(c.values()), "outcomes": dict(sorted(c.items()))}
                    for t, c in sorted(seconds.items())],
        "workers": [{"worker": v["worker"], "record_id": v["record_id"], "started_at": v["started_at"]}
                    for v in views],
    })
    return out


def peer_live_since(since_s: int) -> int:
    return max(0, since_s - START_SKEW_S)


class _Group:
    __slots__ = ("total", "outcomes")

    def __init__(self) -> None:
        self.total = Sparse()
        self.outcomes: Counter[str] = Counter()

    def add(self, group: dict[str, Any]) -> None:
        if not group["requests"]:
            return
        # The exact maximum caps the top percentiles, as in one record (rounded alike: the same answer).
        self.total.merge(Sparse.decode(group["hdr"], max_ms=group["total_ms"]["max"]))
        self.outcomes.update(group["outcomes"])

    def json(self) -> dict[str, Any]:
        return live_group(self.total, self.outcomes)


def _joined_head(parts: Sequence[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """The head of a merged answer: ids and names joined by "+" in worker order, as merge_summaries does."""
    return {"format": fmt, "record_id": "+".join(p["record_id"] for p in parts),
            "worker": "+".join(str(p["worker"]) for p in parts), "started_at": min(p["started_at"] for p in parts),
            "now": max(p["now"] for p in parts), "window": parts[0]["window"], "seq": sum(p["seq"] for p in parts)}


__all__ = ["BadCursor", "REQUESTS_WORKERS_FORMAT", "merge_live", "merge_requests", "parse_cursor",
           "peer_live_since"]
