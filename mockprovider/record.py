"""The provider-side record: what the simulated providers did with every request they answered.

Every answer of every wire route (refusals, bad input and errors included) becomes one entry:
provider, model and the model that served it (after a relay's failover), arrival (wall clock and
event-loop clock), queue wait, service time and total time in the mock, outcome and HTTP status,
the key (masked), the caller's correlation ids (`x-request-id` or the header named with
`--correlation-header`, and W3C `traceparent`'s trace-id and parent-id), images asked and
delivered, and the pixels (width x height) of each image, where the wire decides a size (OpenAI's
`size`; Imagen's `aspectRatio` and `sampleImageSize`, Gemini's `imageConfig`, as the size each serves;
0 elsewhere), which a series' `pixels` counts and a gateway's capability drift compares with what its
client asked. A Midjourney job is one entry, from its submit's arrival to the job's end, with the
polls it had by then (later polls are added to its series' `polls`); its polls are not entries
of their own (a poll of an unknown task is).

Times
    `total_ms` runs from the wire handler's start to its answer; `queue_ms` from the call's entry
    into the provider's behaviours to the start of generation (or, for a call refused after
    waiting for a slot, to its refusal); `service_ms` from the start of generation to the
    behaviours' answer; all three on `time.perf_counter()`, so queue + service <= total for every
    entry. `drawn_ms` is the generation time the latency behaviour drew for the call (scaled),
    which `service_ms` spends asleep: under uvloop, whose timers tick in whole milliseconds,
    service can come out up to 1.5 ms short of the draw, or over it by the event loop's delay.
    That delay, as the generation's sleep woke (`late`), is taken off the total in `intended_ms`:
    the time the profile meant the answer to take, so that a provider side that breaches only by
    running late (a mock starved of CPU) can be told from one whose profile breached.

Kept three ways
    - exact HDR histograms (mockprovider.hdr: microseconds, 1 us .. 1 h, 3 significant figures,
      the load generator's layout) of total, queue, service and intended time per (provider, model,
      window, outcome), with the status mix, the serving models and image counts beside them;
    - counts per second of answer per (provider, model, window, outcome);
    - the raw entries, in a ring of `cap` entries (default 200,000; the oldest are overwritten,
      the histograms and counts keep counting), kept by column in arrays allocated once: numbers
      in `array.array`s, the key and correlation ids in lists. An entry takes 80 bytes, plus the
      correlation strings a caller sent (about 190 bytes with both an x-request-id and a
      traceparent), so the default cap holds about 55 MB at most.

Cost
    The hot path (`answered`, called by every wire route's guard) reads the headers it needs,
    looks the entry's cell up (its api, provider, model, serving model, window, outcome, status
    and images asked, interned once) and stores the entry's values in the columns: no object
    the garbage collector tracks survives a request. Every FLUSH_AT entries, and before any
    read, the new entries are folded into the histograms and counts in a few numpy passes over
    zero-copy views of the columns, all cells at once, as the load generator's recorder does.

Windows
    A record is split into named windows the load generator marks (`mark`, `POST
    /admin/record/window`): a request belongs to the window current when it arrived. `reset`
    starts a fresh record (a new `record_id`; sequence numbers go on rising, never reused); an
    answer to a request that arrived before the reset belongs to no record and is counted in
    `stale` only.

Several worker processes
    Everything here adds up: a histogram adds bucket by bucket (decode each worker's HDR form and
    add; `record_client.merge_summaries`), counts and sums add, min and max take the extreme, and
    every raw entry carries its worker's id with a sequence number of that worker's own. An
    aggregator over N workers marks each window and resets on every worker (each keeps its own
    clock and window list; the marks' wall times show how well they line up), reads each
    worker's summary and merges the series by (provider, model, window, outcome), and pages each
    worker's raw entries by that worker's own `since`. Per-second rows count by wall-clock second
    since each worker's record start, so they add once shifted by the difference of the starts.
"""

from __future__ import annotations

import math
import os
import re
import time
from array import array
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from multidict import istr

from .behaviours.base import Kind, Outcome, Phase
from .hdr import FINE, HIGHEST_US, LOWEST_US, PERCENTILE_DEFINITION, SIGNIFICANT_FIGURES, Sparse, merged, to_us
from .metrics import BUCKETS

if TYPE_CHECKING:
    from .behaviours.base import Call

FORMAT = "mockprovider.record/1"
REQUESTS_FORMAT = "mockprovider.record.requests/1"
LIVE_FORMAT = "mockprovider.record.live/1"

DEFAULT_CAP = 200_000
FLUSH_AT = 4096
DEFAULT_WINDOW = "default"
MAX_WINDOWS = 256            # distinct window names in one record
MAX_ID_CHARS = 128           # a correlation id longer than this is kept cut to this length
POINTS = (50.0, 90.0, 95.0, 99.0, 99.9)
LIVE_POINTS = (50.0, 90.0, 99.0)

REJECTED = "rejected"               # the wire format refused the request before the behaviours saw it
INTERNAL_ERROR = "internal_error"   # the mock itself failed answering
OUTCOMES = tuple(k.value for k in Kind) + (REJECTED, INTERNAL_ERROR)
KIND_NAME = {k: k.value for k in Kind}
MAX_TRACEPARENT_KEPT = 56   # enough to tell a version-00 header that is too long (validated when read)

TRACEPARENT = istr("traceparent")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE, _ZERO_PARENT = "0" * 32, "0" * 16
# ... and as the requests API gives it: these fields, in this order, per entry.
FIELDS = ("seq", "worker", "api", "provider", "model", "served_model", "window", "outcome", "status", "arrived_at",
          "arrived_loop", "queue_ms", "service_ms", "total_ms", "drawn_ms", "key", "correlation_id", "trace_id",
          "parent_id", "images_asked", "images_delivered", "polls")

# api, provider, model, served, window, outcome, status, n, pixels (width x height of each image; 0: not said),
# image format ("png", "jpeg", "webp"; "": not said)
CellKey = tuple[str, str, str, str, str, str, int, int, int, str]
SeriesKey = tuple[str, str, str, str]                 # provider, model, window, outcome


def valid_traceparent(value: str) -> str | None:
    """The W3C traceparent header's first four fields if it is well formed, else None (ignored, as
    the spec says a receiver must): lowercase hex, version ff invalid, all-zero ids invalid, and
    version 00 exactly 55 characters; a later version may add fields after a dash."""
    if _TRACEPARENT.match(value) is None:
        return None
    if len(value) != 55:
        if value[:2] == "00" or value[55:56] != "-":
            return None
        value = value[:55]
    if value[:2] == "ff" or value[3:35] == _ZERO_TRACE or value[36:52] == _ZERO_PARENT:
        return None
    return value


class Arrival(NamedTuple):
    """What a deferred entry (a Midjourney job) keeps of its submit until the job ends."""

    generation: int
    window: str
    api: str
    provider: str
    model: str
    status: int
    arrived_at: float
    t0: float
    key: str | None
    correlation: str | None
    traceparent: str | None


@dataclass
class Window:
    name: str
    started_at: float    # wall clock
    started_s: float     # seconds since the record started
    first_seq: int       # the first sequence number given out after the mark


class _Cell:
    """Entries alike in every label: (api, provider, model, served model, window, outcome, status,
    images asked)."""

    __slots__ = ("key", "series", "total", "queue", "service", "intended", "asked", "polls", "delivers", "prom")

    def __init__(self, key: CellKey, prom: int) -> None:
        self.key = key   # each label comes from a bounded set (profile names, windows, outcomes, statuses)
        self.series: SeriesKey = (key[1], key[2], key[4], key[5])
        self.total, self.queue, self.service, self.intended = Sparse(), Sparse(), Sparse(), Sparse()
        self.asked = self.polls = 0
        self.delivers = key[5] == Kind.OK.value and key[6] < 300   # a success delivers what was asked
        self.prom = prom   # its provider's row in the never-reset Prometheus totals


def _hist_json(h: Sparse, *, encode: bool = True) -> dict[str, Any]:
    empty = not h.count
    out: dict[str, Any] = {"count": h.count, "min": None if empty else round(h.min_ms, 3),
                           "max": None if empty else round(h.max_ms, 3),
                           "mean": None if empty else round(h.mean_ms, 3), "sum": round(h.sum_ms, 3),
                           "clamped": h.clamped}
    for p, v in zip(POINTS, h.percentiles(POINTS)):
        out[f"p{p:g}"] = None if empty else round(v, 3)
    if encode:
        out["hdr"] = h.encode()
    return out


def call_times(call: Call, end: float) -> tuple[float, float]:
    """Queue wait and service time of a call (ms); `end` stands for the behaviours' answer if not noted."""
    running = call.t_running
    if running:
        return (running - call.t_entered) * 1000.0, ((call.t_done or end) - running) * 1000.0
    if call.phase is Phase.QUEUED or call.phase is Phase.KEY_QUEUED:   # refused after waiting
        return ((call.t_done or end) - call.t_entered) * 1000.0, 0.0
    return 0.0, 0.0


class Record:
    def __init__(self, *, worker: str | None = None, cap: int = DEFAULT_CAP,
                 correlation_header: str = "x-request-id") -> None:
        if cap < 0:
            raise ValueError("the record's cap must be >= 0")
        self.worker = worker if worker is not None else str(os.getpid())
        self.cap = cap
        self.correlation_header = istr(correlation_header)
        # The ring doubles as the batch waiting to be folded, so it holds at least FLUSH_AT entries.
        # Entry `seq` sits at position seq % ring_size of every column.
        size = self.ring_size = max(cap, FLUSH_AT)
        self.col_cell = array("q", bytes(8 * size))        # place in `cells` (labels, images asked)
        self.col_arrived_at = array("d", bytes(8 * size))  # wall clock, s
        self.col_t0 = array("d", bytes(8 * size))          # arrival on perf_counter, s
        self.col_total = array("d", bytes(8 * size))       # ms
        self.col_queue = array("d", bytes(8 * size))
        self.col_service = array("d", bytes(8 * size))
        self.col_drawn = array("d", bytes(8 * size))
        self.col_late = array("d", bytes(8 * size))        # ms the generation's sleep woke late
        self.col_key: list[str | None] = [None] * size
        self.col_correlation: list[str | None] = [None] * size
        self.col_trace: list[str | None] = [None] * size   # as sent (cut), validated when read
        self.job_polls: dict[int, int] = {}                # seq -> polls, for job entries
        # Zero-copy views for the fold (the arrays are never resized, which their export forbids).
        self._np = {name: np.frombuffer(getattr(self, "col_" + name), dtype=np.int64 if name == "cell" else np.float64)
                    for name in ("cell", "arrived_at", "t0", "total", "queue", "service", "late")}
        self.seq = 0
        self.folded = 0
        self.loop_offset = 0.0   # loop.time() - perf_counter(), set when the loop starts
        self.generation = 0
        self.cell_of: dict[CellKey, int] = {}   # a cell's labels -> its place in `cells`
        # Prometheus wants totals that never go back: kept apart from the resettable record.
        self.prom_providers: list[str] = []
        self.prom_index: dict[str, int] = {}
        self.prom_queue = np.zeros((0, len(BUCKETS) + 1), dtype=np.int64)
        self.prom_service = np.zeros((0, len(BUCKETS) + 1), dtype=np.int64)
        self.prom_queue_sum = np.zeros(0)
        self.prom_service_sum = np.zeros(0)
        self._start(DEFAULT_WINDOW)
        self.answered = self._hot_path()

    def use_loop_clock(self, loop_time: Callable[[], float]) -> None:
        """Give arrivals on the event loop's clock too (it ticks in whole milliseconds under uvloop,
        so an arrival's loop time is this offset from the high-resolution clock, not a reading)."""
        self.loop_offset = loop_time() - time.perf_counter()

    # -- windows and resets ---------------------------------------------------------------

    def _start(self, window: str) -> None:
        self.fold()   # what the old record's last entries add to /metrics
        self.generation += 1
        self.record_id = os.urandom(6).hex()
        self.started_at = time.time()
        self.first_seq = self.seq + 1
        self.windows = [Window(window, self.started_at, 0.0, self.first_seq)]
        self.epoch = (window, self.generation)   # what a guard reads on arrival, in one load
        self.cells: list[_Cell] = []
        self.cell_of.clear()
        self.seconds: dict[int, Counter[int]] = {}
        self.late_polls: Counter[SeriesKey] = Counter()
        self.stale = 0

    def reset(self, window: str = DEFAULT_WINDOW) -> None:
        """A fresh record for a new run, its first window named `window`."""
        self._start(window)

    @property
    def window(self) -> str:
        return self.epoch[0]

    def mark(self, name: str) -> Window:
        """From now on arrivals belong to window `name` (marking a name again adds to it)."""
        names = {w.name for w in self.windows}
        if name not in names and len(names) >= MAX_WINDOWS:
            raise ValueError(f"a record holds at most {MAX_WINDOWS} window names; reset it for a new run")
        now = time.time()
        window = Window(name, now, now - self.started_at, self.seq + 1)
        self.windows.append(window)
        self.epoch = (name, self.generation)
        return window

    # -- recording (hot path) ---------------------------------------------------------------

    def _hot_path(self) -> Callable[..., None]:
        """`answered(api, labels, headers, status, t0, now, arrived_at, epoch, key, crashed)`: one answer of a
        wire route (wire.common.Wire.guarded), timed from t0 to now (perf_counter), arrived at
        `arrived_at` (wall clock) in the window of `epoch`, the caller's key already masked. A closure
        over the columns, as it runs for every answer and an attribute load per column is not free."""
        record = self
        size, cell_of, new_cell = self.ring_size, self.cell_of, self._new_cell
        # Stored through memoryviews: an array.array's own item assignment parses its value the slow way
        # (PyArg_Parse), a memoryview's converts it directly. (Typed Any: typeshed allows only ints.)
        views: list[Any] = [memoryview(c) for c in (self.col_cell, self.col_arrived_at, self.col_t0, self.col_total,
                                                     self.col_queue, self.col_service, self.col_drawn,
                                                     self.col_late)]
        col_cell, col_arrived_at, col_t0, col_total, col_queue, col_service, col_drawn, col_late = views
        col_key, col_correlation, col_trace = self.col_key, self.col_correlation, self.col_trace
        correlation_header = self.correlation_header
        queued, key_queued = Phase.QUEUED, Phase.KEY_QUEUED

        def answered(api: str, labels: Any, headers: Mapping[str, str], status: int, t0: float, now: float,
                     arrived_at: float, epoch: tuple[str, int], key: str | None, crashed: bool) -> None:
            window, generation = epoch
            if generation != record.generation:
                record.stale += 1
                return
            correlation = headers.get(correlation_header)
            if correlation is not None and len(correlation) > MAX_ID_CHARS:
                correlation = correlation[:MAX_ID_CHARS]
            traceparent = headers.get(TRACEPARENT)
            if traceparent is not None and len(traceparent) > MAX_TRACEPARENT_KEPT:
                traceparent = traceparent[:MAX_TRACEPARENT_KEPT]
            if labels.defer is not None:
                labels.defer(Arrival(generation, window, api, labels.provider, labels.model, status, arrived_at, t0,
                                     key, correlation, traceparent))
                return
            call: Call | None = labels.call
            if call is None:
                cell_key = (api, labels.provider, labels.model, "", window, INTERNAL_ERROR if crashed else REJECTED,
                            status, 0, 0, "")
                queue = service = drawn = late = 0.0
            else:
                done = call.outcome
                # `_value_`, not `.value` or a dict keyed by the member: both go through Python-level code.
                outcome = INTERNAL_ERROR if crashed else done.kind._value_ if done is not None else REJECTED
                cell_key = (api, labels.provider, labels.model, call.served_model, window, outcome, status, call.n,
                            call.pixels, call.image_format)
                running = call.t_running
                if running:
                    queue = (running - call.t_entered) * 1000.0
                    service = ((call.t_done or now) - running) * 1000.0
                elif call.phase is queued or call.phase is key_queued:   # refused after waiting
                    queue, service = ((call.t_done or now) - call.t_entered) * 1000.0, 0.0
                else:
                    queue = service = 0.0
                drawn = call.service_ms
                late = call.late_ms
            cell = cell_of.get(cell_key)
            if cell is None:
                cell = new_cell(cell_key)
            seq = record.seq + 1
            record.seq = seq
            i = seq % size
            col_cell[i] = cell
            col_arrived_at[i] = arrived_at
            col_t0[i] = t0
            col_total[i] = (now - t0) * 1000.0
            col_queue[i] = queue
            col_service[i] = service
            col_drawn[i] = drawn
            col_late[i] = late
            col_key[i] = key
            col_correlation[i] = correlation
            col_trace[i] = traceparent
            if seq - record.folded >= FLUSH_AT:
                record.fold()

        return answered

    def job_done(self, arrival: Arrival, call: Call, outcome: Outcome, polls: int) -> SeriesKey | None:
        """A deferred entry (a Midjourney job) at its end; its series, or None if it belongs to no record."""
        if arrival.generation != self.generation:
            self.stale += 1
            return None
        end = call.t_done or time.perf_counter()
        cell_key = (arrival.api, arrival.provider, arrival.model, call.served_model, arrival.window,
                    KIND_NAME[outcome.kind], arrival.status, call.n, call.pixels, call.image_format)
        cell = self.cell_of.get(cell_key)
        if cell is None:
            cell = self._new_cell(cell_key)
        self.cells[cell].polls += polls
        queue, service = call_times(call, end)
        seq = self.seq + 1
        self.seq = seq
        i = seq % self.ring_size
        self.col_cell[i] = cell
        self.col_arrived_at[i] = arrival.arrived_at
        self.col_t0[i] = arrival.t0
        self.col_total[i] = (end - arrival.t0) * 1000.0
        self.col_queue[i] = queue
        self.col_service[i] = service
        self.col_drawn[i] = call.service_ms
        self.col_late[i] = call.late_ms
        self.col_key[i] = arrival.key
        self.col_correlation[i] = arrival.correlation
        self.col_trace[i] = arrival.traceparent
        if polls:
            self.job_polls[seq] = polls
        if seq - self.folded >= FLUSH_AT:
            self.fold()
        return self.cells[cell].series

    def late_poll(self, series: SeriesKey, generation: int) -> None:
        """A poll of a job whose entry is already written: counted with its series' polls."""
        if generation == self.generation:
            self.late_polls[series] += 1

    def _new_cell(self, key: CellKey) -> int:
        provider = key[1]
        prom = self.prom_index.get(provider)
        if prom is None:
            prom = self.prom_index[provider] = len(self.prom_providers)
            self.prom_providers.append(provider)
            grow = np.zeros((1, len(BUCKETS) + 1), dtype=np.int64)
            self.prom_queue = np.vstack((self.prom_queue, grow))
            self.prom_service = np.vstack((self.prom_service, grow))
            self.prom_queue_sum = np.append(self.prom_queue_sum, 0.0)
            self.prom_service_sum = np.append(self.prom_service_sum, 0.0)
        pos = self.cell_of[key] = len(self.cells)
        self.cells.append(_Cell(key, prom))
        return pos

    # -- folding the new entries into histograms and counts -----------------------------------

    def _positions(self, first: int, count: int) -> np.ndarray | slice:
        """Where entries first .. first + count - 1 sit in the columns (all still in them)."""
        start = first % self.ring_size
        if start + count <= self.ring_size:
            return slice(start, start + count)
        return np.arange(first, first + count) % self.ring_size

    def fold(self) -> None:
        """Fold the entries recorded since the last fold into the histograms and counts."""
        n = self.seq - self.folded
        if n <= 0:
            return
        first = max(self.folded + 1, self.seq - self.ring_size + 1)
        at = self._positions(first, self.seq - first + 1)
        self.folded = self.seq
        if self.job_polls and len(self.job_polls) > self.ring_size // 8:   # forget polls of overwritten entries
            oldest = self.seq - self.cap
            self.job_polls = {k: v for k, v in self.job_polls.items() if k > oldest}
        views = self._np
        codes = views["cell"][at]
        total = views["total"][at]
        queue = views["queue"][at]
        service = views["service"][at]
        intended = total - views["late"][at]

        # Group by cell: a stable sort, then one run of every array per cell present.
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        bounds = np.append(starts, codes.size)
        positions = sorted_codes[starts].tolist()
        present = [self.cells[p] for p in positions]
        for cell, size in zip(present, np.diff(bounds).tolist()):
            cell.asked += size * cell.key[7]
        for attr, values in (("total", total), ("queue", queue), ("service", service), ("intended", intended)):
            _fold_metric(present, attr, values[order], starts, bounds)

        # Per second of answer (arrival + total time) since the record started, per cell.
        answered_s = np.floor(views["arrived_at"][at] + total / 1000.0 - self.started_at)
        np.maximum(answered_s, 0, out=answered_s)
        width = len(self.cells)
        pairs, counts = np.unique(answered_s.astype(np.int64) * width + codes, return_counts=True)
        for pair, count in zip(pairs.tolist(), counts.tolist()):
            second, pos = divmod(pair, width)
            row = self.seconds.get(second)
            if row is None:
                row = self.seconds[second] = Counter()
            row[pos] += count

        # Prometheus: per provider, `le` buckets (a bucket includes its bound), never reset.
        prom_of = np.repeat(np.array([c.prom for c in present], dtype=np.int64), np.diff(bounds))   # sorted order
        nb = len(BUCKETS) + 1
        limits = np.array(BUCKETS)
        stages: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (self.prom_queue, self.prom_queue_sum, queue[order]),
            (self.prom_service, self.prom_service_sum, service[order])]
        for hist, sums, values in stages:
            in_s = values / 1000.0
            cells_at = prom_of * nb + np.searchsorted(limits, in_s, side="left")
            hist += np.bincount(cells_at, minlength=hist.size).reshape(hist.shape)
            sums += np.bincount(prom_of, weights=in_s, minlength=sums.size)

    # -- reading --------------------------------------------------------------------------------

    def _head(self, fmt: str) -> dict[str, Any]:
        return {"format": fmt, "record_id": self.record_id, "worker": self.worker, "started_at": self.started_at,
                "now": time.time(), "window": self.window, "seq": self.seq}

    def _windows_json(self) -> list[dict[str, Any]]:
        return [{"name": w.name, "started_at": w.started_at, "started_s": round(w.started_s, 6),
                 "first_seq": w.first_seq} for w in self.windows]

    def raw_range(self) -> tuple[int, int]:
        """The sequence numbers of the raw entries still kept, first and last (first > last: none)."""
        return max(self.first_seq, self.seq - self.cap + 1), self.seq

    def series(self) -> dict[SeriesKey, list[_Cell]]:
        """Cells grouped by (provider, model, window, outcome), in the order the series first appeared."""
        self.fold()
        out: dict[SeriesKey, list[_Cell]] = {}
        for cell in self.cells:
            out.setdefault(cell.series, []).append(cell)
        return out

    def summary(self, *, encode: bool = True, seconds: bool = True) -> dict[str, Any]:
        """Everything folded: per series counts, status mix, percentiles and HDR histograms, and per second
        (`seconds=False`: an empty list, for a reader that reads often and needs no timeline: the rows grow
        with the run, one per second and series)."""
        groups = self.series()
        first, last = self.raw_range()
        series_at = {key: i for i, key in enumerate(groups)}
        series: list[dict[str, Any]] = []
        requests = 0
        for i, (key, cells) in enumerate(groups.items()):
            count = sum(c.total.count for c in cells)
            requests += count
            status: Counter[int] = Counter()
            served: Counter[str] = Counter()
            pixels: Counter[int] = Counter()
            shapes: Counter[str] = Counter()     # "pixels:format" of each answer, where the wire said either
            for c in cells:
                status[c.key[6]] += c.total.count
                if c.key[3]:
                    served[c.key[3]] += c.total.count
                if c.key[8]:
                    pixels[c.key[8]] += c.total.count
                if c.key[8] or c.key[9]:
                    shapes[f"{c.key[8]}:{c.key[9]}"] += c.total.count
            series.append({
                "index": i, "api": cells[0].key[0], "provider": key[0], "model": key[1], "window": key[2],
                "outcome": key[3], "requests": count,
                "status": {str(k): v for k, v in sorted(status.items())}, "served": dict(sorted(served.items())),
                "pixels": {str(k): v for k, v in sorted(pixels.items())},
                "shapes": dict(sorted(shapes.items())),
                "images_asked": sum(c.asked for c in cells),
                "images_delivered": sum(c.asked for c in cells if c.delivers),
                "polls": sum(c.polls for c in cells) + self.late_polls.get(key, 0),
                "total_ms": _hist_json(merged(c.total for c in cells), encode=encode),
                "queue_ms": _hist_json(merged(c.queue for c in cells), encode=encode),
                "service_ms": _hist_json(merged(c.service for c in cells), encode=encode),
                "intended_ms": _hist_json(merged(c.intended for c in cells), encode=encode),
            })
        rows: list[list[int]] = []
        for second in sorted(self.seconds) if seconds else ():
            per_series: Counter[int] = Counter()
            for pos, count in self.seconds[second].items():
                per_series[series_at[self.cells[pos].series]] += count
            rows.extend([second, s, count] for s, count in sorted(per_series.items()))
        out = self._head(FORMAT)
        out.update({
            "precision": {"unit": "us", "lowest_us": LOWEST_US, "highest_us": HIGHEST_US,
                          "significant_figures": SIGNIFICANT_FIGURES},
            "percentile_definition": PERCENTILE_DEFINITION,
            "windows": self._windows_json(),
            "requests": requests,
            "stale": self.stale,
            "raw": {"cap": self.cap, "first_seq": first, "last_seq": last, "kept": max(0, last - first + 1),
                    "overwritten": max(0, first - self.first_seq)},
            "series": series,
            "seconds": rows,
        })
        return out

    def requests(self, since: int = 0, limit: int = 1000) -> dict[str, Any]:
        """Raw entries with sequence numbers above `since`, oldest first, at most `limit` of them."""
        first, last = self.raw_range()
        lo = max(since + 1, first)
        hi = min(last, lo + limit - 1)
        count = max(0, hi - lo + 1)
        worker, offset = self.worker, self.loop_offset
        rows = []
        cells, size, polls = self.cells, self.ring_size, self.job_polls
        for seq in range(lo, lo + count):
            i = seq % size
            cell = cells[self.col_cell[i]]
            api, provider, model, served, window, outcome, status, asked, _, _ = cell.key
            tp = self.col_trace[i]
            if tp is not None:
                tp = valid_traceparent(tp)
            rows.append((seq, worker, api, provider, model, served, window, outcome, status, self.col_arrived_at[i],
                         round(self.col_t0[i] + offset, 6), round(self.col_queue[i], 3),
                         round(self.col_service[i], 3), round(self.col_total[i], 3), round(self.col_drawn[i], 3),
                         self.col_key[i], self.col_correlation[i], tp[3:35] if tp else None,
                         tp[36:52] if tp else None, asked, asked if cell.delivers else 0, polls.get(seq, 0)))
        out = self._head(REQUESTS_FORMAT)
        out.update({
            "fields": FIELDS, "requests": rows, "since": since,
            "last_seq": hi if count else max(since, last),   # the `since` of the next page
            "more": count > 0 and hi < last,
            "missed": max(0, first - max(since + 1, self.first_seq)),
            "raw": {"cap": self.cap, "first_seq": first, "last_seq": last},
        })
        return out

    def live(self, since_s: int = 0, *, with_hdr: bool = False) -> dict[str, Any]:
        """The cheap view for a live page: per window and provider/model, counts by outcome and a few
        percentiles of total time; and per second from `since_s` on, answers by outcome. `with_hdr`:
        each group's histogram of total time too (HDR base64, "hdr"), so several workers' views add
        exactly (record_merge.merge_live)."""
        self.fold()
        by_window: dict[str, list[_Cell]] = {}
        for c in self.cells:
            by_window.setdefault(c.key[4], []).append(c)
        windows = []
        seen = set()
        for w in self.windows:
            if w.name in seen:
                continue
            seen.add(w.name)
            parts = by_window.get(w.name, [])
            groups: dict[tuple[str, str], list[_Cell]] = {}
            for c in parts:
                groups.setdefault((c.key[1], c.key[2]), []).append(c)
            windows.append({
                "name": w.name, "started_s": round(w.started_s, 6), **_live_stats(parts, with_hdr),
                "providers": [{"provider": p, "model": m, **_live_stats(g, with_hdr)}
                              for (p, m), g in sorted(groups.items())],
            })
        seconds = []
        for second in sorted(s for s in self.seconds if s >= since_s):
            outcomes: Counter[str] = Counter()
            for pos, count in self.seconds[second].items():
                outcomes[self.cells[pos].key[5]] += count
            seconds.append({"t_s": second, "requests": sum(outcomes.values()),
                            "outcomes": dict(sorted(outcomes.items()))})
        out = self._head(LIVE_FORMAT)
        out.update({"now_s": round(time.time() - self.started_at, 3), "windows": windows, "seconds": seconds})
        return out


def _fold_metric(present: list[_Cell], attr: str, values: np.ndarray, starts: np.ndarray,
                 bounds: np.ndarray) -> None:
    """Add one metric's values (grouped by cell: `bounds` delimit each cell's run) to the cells' histograms."""
    if not values.any():   # all zero (no queue; a refusal's service): every value in bucket 0
        sizes = np.diff(bounds).tolist()
        zero, one = np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)
        for cell, size in zip(present, sizes):
            h: Sparse = getattr(cell, attr)
            h.add_counts(zero, one * size)
            h.count += size
            h.min_ms = min(h.min_ms, 0.0)
            h.max_ms = max(h.max_ms, 0.0)
        return
    us, _ = to_us(values)
    over = us >= HIGHEST_US
    idx = FINE.index(us)
    # One sort for all cells: (cell, bucket) pairs; a cell's run of pairs starts where its values did.
    runs = np.repeat(np.arange(len(present), dtype=np.int64), np.diff(bounds))
    pairs, counts = np.unique(runs * FINE.counts_len + idx, return_counts=True)
    run_of = pairs // FINE.counts_len
    edges = np.searchsorted(run_of, np.arange(len(present) + 1))
    sums = np.add.reduceat(values, starts).tolist()
    mins = np.minimum.reduceat(values, starts).tolist()
    maxs = np.maximum.reduceat(values, starts).tolist()
    clamped = np.add.reduceat(over.astype(np.int64), starts).tolist()
    sizes = np.diff(bounds).tolist()
    for i, cell in enumerate(present):
        h = getattr(cell, attr)
        a, b = edges[i], edges[i + 1]
        h.add_counts(pairs[a:b] - i * FINE.counts_len, counts[a:b])
        h.count += sizes[i]
        h.sum_ms += sums[i]
        h.min_ms = min(h.min_ms, mins[i])
        h.max_ms = max(h.max_ms, maxs[i])
        h.clamped += clamped[i]


def _live_stats(parts: list[_Cell], with_hdr: bool = False) -> dict[str, Any]:
    total = merged(c.total for c in parts)
    outcomes: Counter[str] = Counter()
    for c in parts:
        outcomes[c.key[5]] += c.total.count
    out = live_group(total, outcomes)
    if with_hdr:
        out["hdr"] = total.encode()
    return out


def live_group(total: Sparse, outcomes: Mapping[str, int]) -> dict[str, Any]:
    """A live view's group: answers, answers by outcome, and total time's LIVE_POINTS and maximum."""
    values = total.percentiles(LIVE_POINTS)
    stats: dict[str, Any] = {f"p{p:g}": None if not total.count or math.isnan(v) else round(v, 3)
                             for p, v in zip(LIVE_POINTS, values)}
    stats["max"] = round(total.max_ms, 3) if total.count else None
    return {"requests": total.count, "outcomes": dict(sorted(outcomes.items())), "total_ms": stats}


class JobEntry:
    """A Midjourney job's one entry, written when both its submit's answer and its end are known
    (either can come first: a job can end before its submit is answered)."""

    __slots__ = ("record", "call", "arrival", "outcome", "polls", "written", "series")

    def __init__(self, record: Record, call: Call) -> None:
        self.record = record
        self.call = call
        self.arrival: Arrival | None = None
        self.outcome: Outcome | None = None
        self.polls = 0
        self.written = False
        self.series: SeriesKey | None = None   # once written (None: it belonged to no record)

    def submitted(self, arrival: Arrival) -> None:
        self.arrival = arrival
        if self.outcome is not None:
            self._write()

    def finished(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            if self.arrival is not None:
                self._write()

    def polled(self, arrival: Arrival) -> None:
        if not self.written:
            self.polls += 1
        elif self.series is not None and self.arrival is not None:
            self.record.late_poll(self.series, self.arrival.generation)

    def _write(self) -> None:
        assert self.arrival is not None and self.outcome is not None
        self.written = True
        self.series = self.record.job_done(self.arrival, self.call, self.outcome, self.polls)


__all__ = ["Arrival", "DEFAULT_CAP", "FIELDS", "FLUSH_AT", "FORMAT", "JobEntry", "LIVE_FORMAT", "MAX_ID_CHARS",
           "MAX_WINDOWS", "OUTCOMES", "REQUESTS_FORMAT", "Record", "Window", "valid_traceparent"]
