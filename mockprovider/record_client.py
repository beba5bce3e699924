"""Read a running mock's provider-side record (mockprovider.record) over its admin API.

What the load generator's gate calls to set what the client saw beside what the simulated
providers did:

    client = RecordClient("http://127.0.0.1:8000")
    client.reset("baseline")                 # a fresh record for this run; first window "baseline"
    client.mark("surge")                     # from now on arrivals belong to window "surge"
    summary = client.summary()
    p99 = summary.histogram("total", provider="relay", window="surge").percentile(99)
    for entry in client.entries():           # every raw entry still kept, paged
        ...entry.correlation_id, entry.trace_id, entry.total_ms...

Histograms arrive in HDR's standard base64 form and are decoded into sparse buckets (the ones
with counts; mockprovider.hdr), with the record's exact count, sum, min and max beside them;
adding two (windows, outcomes, or the same series from several mock workers: `merge_summaries`)
adds their counts bucket by bucket, so every merge is exact. Percentiles follow the record's
definition (mockprovider.hdr), the load generator's own.

Stdlib HTTP (urllib) and the histogram packages only: nothing here imports the load generator
or the server.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .hdr import NO_BUCKETS, add_buckets, bucket_percentiles, decode_buckets

FORMAT = "mockprovider.record/1"
REQUESTS_FORMAT = "mockprovider.record.requests/1"
LIVE_FORMAT = "mockprovider.record.live/1"
WORKERS_FORMAT = "mockprovider.record.workers/1"
REQUESTS_WORKERS_FORMAT = "mockprovider.record.requests.workers/1"
METRICS = ("total", "queue", "service", "intended")


class RecordError(Exception):
    """The mock answered with an error, or with a record this reader does not understand."""


@dataclass(frozen=True)
class Histogram:
    """One exact latency histogram (ms): HDR's buckets, sparse (the sorted bucket indices it has counts in,
    and their counts: mockprovider.hdr's layout), and the exact count, sum, min and max. Immutable: adding
    two makes a third, so the arrays may be shared."""

    idx: np.ndarray = field(default_factory=lambda: NO_BUCKETS, compare=False, repr=False)
    cnt: np.ndarray = field(default_factory=lambda: NO_BUCKETS, compare=False, repr=False)
    count: int = 0
    sum_ms: float = 0.0
    min_ms: float = math.nan
    max_ms: float = math.nan
    clamped: int = 0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Histogram:
        count = int(d["count"])
        try:
            idx, cnt = decode_buckets(d["hdr"]) if d.get("hdr") else (NO_BUCKETS, NO_BUCKETS)
        except ValueError as exc:
            raise RecordError(f"a histogram could not be read: {exc}") from None
        if int(cnt.sum()) != count:
            raise RecordError(f"a histogram holds {int(cnt.sum())} values but says it counts {count}")
        return cls(idx=idx, cnt=cnt, count=count, sum_ms=float(d.get("sum") or 0.0),
                   min_ms=math.nan if d.get("min") is None else float(d["min"]),
                   max_ms=math.nan if d.get("max") is None else float(d["max"]), clamped=int(d.get("clamped", 0)))

    @property
    def mean_ms(self) -> float:
        return self.sum_ms / self.count if self.count else math.nan

    def percentiles(self, points: Iterable[float]) -> list[float]:
        """HDR nearest rank, the upper edge of the bucket, capped at the exact maximum; p(0) the exact minimum."""
        points = list(points)
        for p in points:
            if not 0 <= p <= 100:
                raise ValueError(f"a percentile must be between 0 and 100, got {p}")
        if not self.count:
            return [math.nan for _ in points]
        return bucket_percentiles(self.idx, self.cnt, points, self.min_ms, self.max_ms)

    def percentile(self, p: float) -> float:
        return self.percentiles((p,))[0]

    def __add__(self, other: Histogram) -> Histogram:
        if not isinstance(other, Histogram):
            return NotImplemented
        return merge_histograms((self, other))


def _extreme(pick: Any, values: Iterable[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return float(pick(known)) if known else math.nan


def merge_histograms(parts: Iterable[Histogram]) -> Histogram:
    """Histograms added bucket by bucket, in one pass: exact."""
    full = [h for h in parts if h.count]
    if len(full) <= 1:
        return full[0] if full else Histogram()
    idx, cnt = add_buckets((h.idx, h.cnt) for h in full)
    return Histogram(idx=idx, cnt=cnt, count=sum(h.count for h in full), sum_ms=sum(h.sum_ms for h in full),
                     min_ms=_extreme(min, [h.min_ms for h in full]), max_ms=_extreme(max, [h.max_ms for h in full]),
                     clamped=sum(h.clamped for h in full))


def _counter_add(a: Mapping[Any, int], b: Mapping[Any, int]) -> dict[Any, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


@dataclass(frozen=True)
class Series:
    """One (provider, model, window, outcome) of the record."""

    provider: str
    model: str
    window: str
    outcome: str
    api: str
    requests: int
    status: dict[int, int]           # HTTP status -> answers
    served: dict[str, int]           # model that served it (a relay's failover) -> answers
    images_asked: int
    images_delivered: int
    polls: int                       # Midjourney: fetches of these jobs
    total: Histogram
    queue: Histogram
    service: Histogram
    # total less the time the mock lost waking late (mockprovider.record): what its profile meant; a record
    # from before it was kept reads as empty
    intended: Histogram = field(default_factory=Histogram)
    pixels: dict[int, int] = field(default_factory=dict)   # width x height of each image asked -> answers
    # "pixels:format" of each image (0 / "": not said) -> answers: what a capability drift compares as one
    shapes: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.provider, self.model, self.window, self.outcome)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Series:
        return cls(provider=d["provider"], model=d["model"], window=d["window"], outcome=d["outcome"],
                   api=d.get("api", ""), requests=int(d["requests"]),
                   status={int(k): int(v) for k, v in d["status"].items()},
                   served={str(k): int(v) for k, v in d["served"].items()}, images_asked=int(d["images_asked"]),
                   images_delivered=int(d["images_delivered"]), polls=int(d["polls"]),
                   total=Histogram.from_json(d["total_ms"]), queue=Histogram.from_json(d["queue_ms"]),
                   service=Histogram.from_json(d["service_ms"]),
                   intended=Histogram.from_json(d["intended_ms"]) if "intended_ms" in d else Histogram(),
                   pixels={int(k): int(v) for k, v in d.get("pixels", {}).items()},
                   shapes={str(k): int(v) for k, v in d.get("shapes", {}).items()})

    def __add__(self, other: Series) -> Series:
        if not isinstance(other, Series):
            return NotImplemented
        if other.key != self.key:
            raise ValueError(f"cannot add series {other.key} to {self.key}")
        return replace(self, requests=self.requests + other.requests,
                       status=_counter_add(self.status, other.status),
                       served=_counter_add(self.served, other.served),
                       images_asked=self.images_asked + other.images_asked,
                       images_delivered=self.images_delivered + other.images_delivered,
                       polls=self.polls + other.polls, pixels=_counter_add(self.pixels, other.pixels),
                       shapes=_counter_add(self.shapes, other.shapes),
                       total=self.total + other.total,
                       queue=self.queue + other.queue, service=self.service + other.service,
                       intended=self.intended + other.intended)


@dataclass(frozen=True)
class Window:
    name: str
    started_at: float      # wall clock, seconds
    started_s: float       # seconds since the record started
    first_seq: int
    worker: str = ""


@dataclass(frozen=True)
class Summary:
    record_id: str
    worker: str            # "a+b" once merged across workers
    started_at: float
    now: float
    window: str            # the window arrivals go to now
    seq: int
    requests: int
    stale: int
    windows: list[Window]
    series: list[Series]
    seconds: list[tuple[int, int, int]]    # (second since start, index into `series`, answers)
    raw: dict[str, int]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Summary:
        if d.get("format") != FORMAT:
            raise RecordError(f"expected a record of format {FORMAT!r}, got {d.get('format')!r}")
        return cls(record_id=d["record_id"], worker=str(d["worker"]), started_at=float(d["started_at"]),
                   now=float(d["now"]), window=d["window"], seq=int(d["seq"]), requests=int(d["requests"]),
                   stale=int(d["stale"]),
                   windows=[Window(w["name"], float(w["started_at"]), float(w["started_s"]), int(w["first_seq"]),
                                   str(d["worker"])) for w in d["windows"]],
                   series=[Series.from_json(s) for s in d["series"]],
                   seconds=[(int(a), int(b), int(c)) for a, b, c in d["seconds"]],
                   raw={k: int(v) for k, v in d["raw"].items()})

    def window_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for w in self.windows:
            seen.setdefault(w.name)
        return list(seen)

    def select(self, *, provider: str | None = None, model: str | None = None, window: str | None = None,
               outcome: str | Iterable[str] | None = None) -> list[Series]:
        """The series matching every filter given (outcome: one name or several)."""
        outcomes = {outcome} if isinstance(outcome, str) else set(outcome) if outcome is not None else None
        return [s for s in self.series
                if (provider is None or s.provider == provider) and (model is None or s.model == model)
                and (window is None or s.window == window) and (outcomes is None or s.outcome in outcomes)]

    def histogram(self, metric: str = "total", **filters: Any) -> Histogram:
        """The merged histogram of `metric` ("total", "queue", "service" or "intended") over the matching series:
        leave out `window` to merge every window."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        return merge_histograms(getattr(s, metric) for s in self.select(**filters))

    def status_mix(self, **filters: Any) -> dict[int, int]:
        out: dict[int, int] = {}
        for s in self.select(**filters):
            out = _counter_add(out, s.status)
        return out


def merge_summaries(summaries: Iterable[Summary]) -> Summary:
    """Several mock workers' records as one: series added by (provider, model, window, outcome),
    windows listed per worker, per-second rows shifted onto the earliest start."""
    parts = list(summaries)
    if not parts:
        raise ValueError("nothing to merge")
    start = min(p.started_at for p in parts)
    series: dict[tuple[str, str, str, str], Series] = {}
    seconds: dict[tuple[int, tuple[str, str, str, str]], int] = {}
    for p in parts:
        shift = int(round(p.started_at - start))
        for s in p.series:
            series[s.key] = series[s.key] + s if s.key in series else s
        for second, index, count in p.seconds:
            k = (second + shift, p.series[index].key)
            seconds[k] = seconds.get(k, 0) + count
    order = list(series)
    at = {k: i for i, k in enumerate(order)}
    raw: dict[str, int] = {}
    for p in parts:
        raw = _counter_add(raw, {k: v for k, v in p.raw.items() if k in ("cap", "kept", "overwritten")})
    return Summary(record_id="+".join(p.record_id for p in parts), worker="+".join(p.worker for p in parts),
                   started_at=start, now=max(p.now for p in parts), window=parts[0].window,
                   seq=sum(p.seq for p in parts), requests=sum(p.requests for p in parts),
                   stale=sum(p.stale for p in parts), windows=[w for p in parts for w in p.windows],
                   series=[series[k] for k in order],
                   seconds=sorted((sec, at[k], n) for (sec, k), n in seconds.items()), raw=raw)


@dataclass(frozen=True)
class Entry:
    """One raw entry of the record: one answered request, or one Midjourney job from submit to end."""

    seq: int
    worker: str
    api: str
    provider: str
    model: str
    served_model: str
    window: str
    outcome: str
    status: int
    arrived_at: float          # wall clock, seconds
    arrived_loop: float        # the mock's event-loop clock, seconds
    queue_ms: float
    service_ms: float
    total_ms: float
    drawn_ms: float
    key: str | None            # masked
    correlation_id: str | None
    trace_id: str | None
    parent_id: str | None
    images_asked: int
    images_delivered: int
    polls: int


_ENTRY_FIELDS = tuple(Entry.__dataclass_fields__)


@dataclass(frozen=True)
class Page:
    record_id: str         # several workers: every worker's, joined by "+" (as the merged summary's)
    worker: str
    entries: list[Entry]
    last_seq: int          # one worker: the `since` of the next page; several: the sum of their cursors
    more: bool
    missed: int            # entries after `since` that the cap had already overwritten
    cursor: str = ""       # several workers: the `since` of the next page, one sequence number per worker

    @property
    def next_since(self) -> int | str:
        """What to pass as `since` for the next page, with one worker or several."""
        return self.cursor or self.last_seq


@dataclass(frozen=True)
class LiveGroup:
    name: str              # a window's name, or "provider/model"
    requests: int
    outcomes: dict[str, int]
    total_ms: dict[str, float | None]   # p50, p90, p99, max


@dataclass(frozen=True)
class LiveWindow:
    group: LiveGroup
    started_s: float
    providers: list[LiveGroup]


@dataclass(frozen=True)
class Live:
    record_id: str
    worker: str
    now_s: float
    window: str
    windows: list[LiveWindow]
    seconds: list[tuple[int, int, dict[str, int]]]   # (second since start, answers, by outcome)
    workers: tuple[str, ...] = ()   # several workers: each one's name, their views added


class RecordClient:
    """The record of the mock at `base_url`, e.g. http://127.0.0.1:8000: with `--workers N`, every
    worker's, merged (the summary here, the pages and the live view by the worker asked)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, query: Mapping[str, Any] | None = None,
              body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RecordError(f"{method} {path} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise RecordError(f"{method} {url}: {exc}") from None
        if not isinstance(payload, dict):
            raise RecordError(f"{method} {path} did not answer a JSON object")
        return payload

    def summary(self, *, seconds: bool = True) -> Summary:
        """The record as it stands; `seconds=False` leaves out the per-second rows (empty `seconds`), which
        grow with the run: for a reader that reads often (the live gate) and needs only the histograms."""
        d = self._call("GET", "/admin/record", None if seconds else {"seconds": 0})
        if d.get("format") == WORKERS_FORMAT:   # a mock of several workers: each one's record, merged here
            return merge_summaries(Summary.from_json(w) for w in d["workers"])
        return Summary.from_json(d)

    def page(self, since: int | str = 0, limit: int = 1000) -> Page:
        """Raw entries after `since` (a sequence number; with several workers, a Page's `next_since`,
        or 0 for the start), at most `limit`."""
        d = self._call("GET", "/admin/record/requests", {"since": since, "limit": limit})
        fmt = d.get("format")
        if fmt not in (REQUESTS_FORMAT, REQUESTS_WORKERS_FORMAT):
            raise RecordError(f"expected format {REQUESTS_FORMAT!r} or {REQUESTS_WORKERS_FORMAT!r}, got {fmt!r}")
        fields = tuple(d["fields"])
        if fields != _ENTRY_FIELDS:
            raise RecordError(f"the entries' fields {fields} are not the ones this reader knows {_ENTRY_FIELDS}")
        entries = [Entry(*row) for row in d["requests"]]
        if fmt == REQUESTS_WORKERS_FORMAT:   # several workers, merged by arrival; one cursor per worker
            return Page(record_id=d["record_id"], worker=str(d["worker"]), entries=entries,
                        last_seq=sum(int(w["cursor"]) for w in d["workers"]), more=bool(d["more"]),
                        missed=int(d["missed"]), cursor=str(d["cursor"]))
        return Page(record_id=d["record_id"], worker=str(d["worker"]), entries=entries, last_seq=int(d["last_seq"]),
                    more=bool(d["more"]), missed=int(d["missed"]))

    def entries(self, since: int | str = 0, page_size: int = 1000) -> Iterator[Entry]:
        """Every raw entry after `since` still kept, oldest first (several workers: merged by arrival),
        page by page (one record: a reset in between ends the iteration)."""
        record_id = None
        while True:
            page = self.page(since, page_size)
            if record_id is None:
                record_id = page.record_id
            elif page.record_id != record_id:
                return
            yield from page.entries
            since = page.next_since
            if not page.more:
                return

    def live(self, since_s: int = 0) -> Live:
        d = self._call("GET", "/admin/record/live", {"since": since_s})
        if d.get("format") != LIVE_FORMAT:
            raise RecordError(f"expected format {LIVE_FORMAT!r}, got {d.get('format')!r}")

        def group(name: str, g: Mapping[str, Any]) -> LiveGroup:
            return LiveGroup(name, int(g["requests"]), dict(g["outcomes"]), dict(g["total_ms"]))

        return Live(record_id=d["record_id"], worker=str(d["worker"]), now_s=float(d["now_s"]), window=d["window"],
                    windows=[LiveWindow(group(w["name"], w), float(w["started_s"]),
                                        [group(f"{p['provider']}/{p['model']}", p) for p in w["providers"]])
                             for w in d["windows"]],
                    seconds=[(int(s["t_s"]), int(s["requests"]), dict(s["outcomes"])) for s in d["seconds"]],
                    workers=tuple(str(w["worker"]) for w in d.get("workers", ())))

    def mark(self, name: str) -> Window:
        d = self._call("POST", "/admin/record/window", body={"name": name})
        w = d["window"]
        return Window(w["name"], float(w["started_at"]), float(w["started_s"]), int(w["first_seq"]), str(d["worker"]))

    def reset(self, window: str | None = None) -> str:
        """Start a fresh record (its first window named `window`); its record id."""
        d = self._call("POST", "/admin/record/reset", body={"window": window} if window else {})
        return str(d["record_id"])


__all__ = ["Entry", "Histogram", "Live", "LiveGroup", "LiveWindow", "Page", "RecordClient", "RecordError", "Series",
           "Summary", "Window", "merge_histograms", "merge_summaries"]
