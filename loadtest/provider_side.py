"""The run's provider side: reset and window the mock's record (mockprovider.record) as the run goes,
read it at the end, match it with what the client sent, and describe it for summary.json.

The figures come from the record's exact histograms, which count everything; correlation ids
(the suite's `<generation>.<attempt>` x-request-id) only count matches, over the raw entries the
record still keeps (capped, see the mock's `--record-cap`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mockprovider.record_client import Histogram, RecordClient, RecordError, Series
from mockprovider.record_client import Summary as RecordSummary

from .attribution import Attribution, ProviderSide
from .context import SUITE_ID
from .gate import ThresholdResult
from .recorder import Recorder

if TYPE_CHECKING:
    from .summary import LatencyDoc, MatchDoc, ProviderLatencyDoc, ProviderSideDoc, SideBySideDoc

# summary.json's models are imported where a document is built (at the run's end), not with this module:
# RecordSession is used all through the run by the Locust process, which need not hold pydantic for it.

# Entries read a page at a time: a page of 10,000 parsed entries took about 15 MB of the generator's memory at
# once, 2,000 about 3 MB, for 100 requests to a mock that keeps 200,000.
PAGE = 2_000


def _r(x: float) -> float | None:
    return round(float(x), 3) if math.isfinite(x) else None


def histogram_doc(h: Histogram) -> LatencyDoc:
    from .summary import LATENCY_POINTS, LatencyDoc
    if not h.count:
        return LatencyDoc()
    values: dict[str, float | None] = {k: _r(v) for (k, _), v in
                                       zip(LATENCY_POINTS, h.percentiles(p for _, p in LATENCY_POINTS))}
    values.update(max=_r(h.max_ms), min=_r(h.min_ms), mean=_r(h.mean_ms))
    return LatencyDoc.model_validate(values)


def _latency(record: RecordSummary, **filters: str) -> ProviderLatencyDoc:
    from .summary import ProviderLatencyDoc
    return ProviderLatencyDoc(**{m: histogram_doc(record.histogram(m, **filters))
                                 for m in ("total", "queue", "service")})


def _outcomes(series: Iterable[Series]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in series:
        out[s.outcome] = out.get(s.outcome, 0) + s.requests
    return dict(sorted(out.items()))


class RecordSession:
    """One run's use of a mock's record: `start` resets it, `mark` opens a stage's window, `read` ends it."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = RecordClient(self.url, token=token, timeout=10.0)
        self.record_id: str | None = None
        self.error: str | None = None
        self.live_error: str | None = None

    def start(self, first_window: str) -> None:
        try:
            self.record_id = self.client.reset(first_window)
        except RecordError as exc:
            self.error = f"the provider-side record could not be reset: {exc}"

    def mark(self, window: str) -> None:
        if self.error is None:
            try:
                self.client.mark(window)
            except RecordError as exc:
                self.error = f"the provider-side record's window {window!r} could not be opened: {exc}"

    def peek(self, timeout_s: float) -> RecordSummary | None:
        """The record as it stands, mid-run (for the live gate): None, with `live_error` saying why, when it
        cannot be read within `timeout_s` or is not this run's. Never touches `error`: the end still reads."""
        if self.error is not None:     # never reset for this run: nothing of it to compare
            return None
        try:
            record = RecordClient(self.url, token=self.client.token, timeout=timeout_s).summary(seconds=False)
        except RecordError as exc:
            self.live_error = f"the provider-side record could not be read live: {exc}"
            return None
        if self.record_id is not None and record.record_id != self.record_id:
            self.live_error = (f"the provider-side record was reset by someone else during the run "
                               f"({self.record_id} -> {record.record_id})")
            return None
        self.live_error = None
        return record

    def read(self, recorder: Recorder) -> tuple[RecordSummary | None, MatchDoc | None]:
        if self.error is not None:
            return None, None
        try:
            record = self.client.summary()
            if self.record_id is not None and record.record_id != self.record_id:
                self.error = (f"the provider-side record was reset by someone else during the run "
                              f"({self.record_id} -> {record.record_id})")
                return None, None
            return record, self._match(record, recorder)
        except RecordError as exc:
            self.error = f"the provider-side record could not be read: {exc}"
            return None, None

    def _match(self, record: RecordSummary, recorder: Recorder) -> MatchDoc:
        from .summary import MatchDoc
        sel = recorder.select()
        # Each generation id as its 64-bit string hash, counted distinct at the end: the record keeps up to
        # 200,000 entries, and as a set of strings their ids took about 20 MB of the generator's memory.
        # Two ids among 200,000 share a hash with a chance of about 1 in 10^9.
        generations = array("q")
        attempts = 0
        kept = missed = 0
        if record.raw.get("cap", 0) > 0:
            since: int | str = 0
            while True:
                page = self.client.page(since, PAGE)
                if page.record_id != record.record_id:
                    break
                missed += page.missed
                kept += len(page.entries)
                for e in page.entries:
                    m = SUITE_ID.match(e.correlation_id or "")
                    if m:
                        attempts += 1
                        generations.append(hash(m.group(1)))
                since = page.next_since   # several mock workers: a cursor per worker
                if not page.more:
                    break
        if kept:
            distinct = int(np.unique(np.frombuffer(generations, dtype=np.int64)).size) if generations else 0
            return MatchDoc(client_requests=sel.requests, client_attempts=sel.attempts,
                            provider_requests=record.requests, method="correlation id",
                            matched_requests=distinct, matched_attempts=attempts,
                            matched_share=round(min(distinct, sel.requests) / sel.requests, 6)
                            if sel.requests else None, raw_kept=kept, raw_missed=missed)
        return MatchDoc(client_requests=sel.requests, client_attempts=sel.attempts, provider_requests=record.requests,
                        method="counts", matched_share=round(min(record.requests, sel.attempts) / sel.attempts, 6)
                        if sel.attempts else None)


def _side(name: str, recorder: Recorder, filters: Mapping[str, str], provider: Histogram) -> SideBySideDoc:
    from .summary import SideBySideDoc
    sel = recorder.select(filters)
    c50, c99 = (sel.percentile(50.0), sel.percentile(99.0)) if sel.requests else (math.nan, math.nan)
    p50, p99 = provider.percentiles((50.0, 99.0)) if provider.count else (math.nan, math.nan)
    return SideBySideDoc(name=name, client_p50_ms=_r(c50), client_p99_ms=_r(c99), provider_p50_ms=_r(p50),
                         provider_p99_ms=_r(p99), gap_p50_ms=_r(c50 - p50), gap_p99_ms=_r(c99 - p99))


def describe(url: str, record: RecordSummary | None, side: ProviderSide | None, recorder: Recorder,
             matched: MatchDoc | None, found: Mapping[int, Attribution], results: Sequence[ThresholdResult],
             error: str | None) -> ProviderSideDoc:
    from .summary import AttributionDoc, ProviderDoc, ProviderSideDoc, ProviderStageDoc
    if record is None or side is None:
        return ProviderSideDoc(url=url, error=error or "the provider-side record was not read")
    providers = sorted({s.provider for s in record.series})
    rows = [_side("run", recorder, {}, side.histogram(()) or Histogram())]
    for name, _, _ in recorder.stages:
        h = side.histogram((("stage", name),))
        if h is not None:
            rows.append(_side(name, recorder, {"stage": name}, h))
    return ProviderSideDoc(
        url=url, record_id=record.record_id, providers_compared=list(side.providers), requests=record.requests,
        stale=record.stale, outcomes=_outcomes(record.series), latency_ms=_latency(record),
        providers=[ProviderDoc(provider=p, requests=sum(s.requests for s in record.select(provider=p)),
                               outcomes=_outcomes(record.select(provider=p)),
                               status_codes={str(k): v for k, v in sorted(record.status_mix(provider=p).items())},
                               latency_ms=_latency(record, provider=p)) for p in providers],
        stages=[ProviderStageDoc(name=w, requests=sum(s.requests for s in record.select(window=w)),
                                 latency_ms=histogram_doc(record.histogram("total", window=w)))
                for w in record.window_names()],
        matched=matched, side_by_side=rows,
        attribution=[AttributionDoc(threshold=r.threshold.label(), kind=a.kind,  # type: ignore[arg-type]
                                    client=round(a.client_ms, 3), provider=round(a.provider_ms, 3),
                                    provider_samples=a.provider_samples, text=a.text)
                     for r in results if (a := found.get(id(r))) is not None],
        error=error)


__all__ = ["RecordSession", "describe", "histogram_doc"]
