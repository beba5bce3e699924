"""Exact latency histograms in HDR's layout, kept sparse, for the provider-side record and its reader.

The layout is the load generator's (loadtest/recorder.py): integer microseconds, 1 us .. 1 hour
(longer values are clamped to 1 hour and counted in `clamped`), 3 significant figures, so the two
ends of a run can be compared bucket for bucket. The mock package does not import the load
generator, so the few lines of index arithmetic live here too.

Kept sparse: a histogram holds only the buckets it has counts in (sorted bucket indices and
their counts, in numpy arrays), because the mock keeps three histograms per provider, model,
outcome and window, and HDR's dense array (23,552 counters, 184 KB) each would be tens of
megabytes for an ordinary run. A latency distribution spread over 30-150 ms fills about 2,000
buckets (32 KB). Values arrive in batches (`add`), so the cost per value is a share of one
numpy pass.

Exchange format: `encode()` gives HDR's standard compressed base64 form (`HdrHistogram.encode()`,
V2), which any HdrHistogram implementation decodes; `Sparse.from_hdr` reads one back. Adding two
histograms adds their counts bucket by bucket, so the merge of N workers' histograms is exact.

Percentile definition (the load generator's): HDR nearest rank, p(N) is the value at rank
ceil(N/100 x count), reported as the highest value equivalent to its bucket (never under-reports),
capped at the exact maximum; p(0) is the exact minimum. min, max and mean are exact (kept beside
the counts); a histogram decoded from HDR's form alone knows them only to its bucket.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_FIGURES = 3

PERCENTILE_DEFINITION = (
    "HDR nearest rank: p(N) is the value at rank ceil(N/100 x count), reported as the upper edge of its "
    "HDR bucket (microseconds, 3 significant figures: at most 0.1 % above the exact value), capped at the "
    "exact maximum; p(0) is the exact minimum. min, max and mean are exact."
)


class Layout:
    """HDR's bucket layout for one precision, with its index arithmetic done in numpy."""

    def __init__(self, significant_figures: int) -> None:
        proto = HdrHistogram(LOWEST_US, HIGHEST_US, significant_figures)
        self.significant_figures = significant_figures
        self.counts_len: int = proto.counts_len
        self.unit_mag: int = proto.unit_magnitude
        self.half_mag: int = proto.sub_bucket_half_count_magnitude
        self.half_count: int = proto.sub_bucket_half_count
        self.mask: int = proto.sub_bucket_mask
        idx = np.arange(self.counts_len, dtype=np.int64)
        bucket = (idx >> self.half_mag) - 1
        sub = (idx & (self.half_count - 1)) + self.half_count
        sub = np.where(bucket < 0, sub - self.half_count, sub)
        bucket = np.maximum(bucket, 0)
        self.lowest: np.ndarray = sub << (bucket + self.unit_mag)
        self.highest: np.ndarray = self.lowest + (np.int64(1) << (bucket + self.unit_mag)) - 1

    def index(self, us: np.ndarray) -> np.ndarray:
        """HdrHistogram._counts_index_for over an int64 array (values < 2**53)."""
        bits = np.frexp((us | self.mask).astype(np.float64))[1].astype(np.int64)
        bucket = bits - self.unit_mag - (self.half_mag + 1)
        sub = us >> (bucket + self.unit_mag)
        return ((bucket + 1) << self.half_mag) + sub - self.half_count


FINE = Layout(SIGNIFICANT_FIGURES)


def to_us(ms: np.ndarray) -> tuple[np.ndarray, int]:
    """Milliseconds -> integer microseconds, rounded up (never under-report), clamped to the range."""
    # The tiny offset keeps float noise (0.1 ms * 1000 = 100.00000000000001) from adding a microsecond.
    us = np.ceil(ms * 1000.0 - 1e-6)
    np.maximum(us, 0.0, out=us)
    over = us > HIGHEST_US
    clamped = int(np.count_nonzero(over))
    if clamped:
        us[over] = HIGHEST_US
    return us.astype(np.int64), clamped


@lru_cache(maxsize=256)
def _fraction(p: float) -> Fraction:
    return Fraction(repr(float(p))) / 100


def rank(p: float, n: int) -> int:
    """ceil(p/100 * n), computed exactly: 99.9 % of 1000 is rank 999, not 1000 from float noise."""
    q = _fraction(p) * n
    return max(1, -((-q.numerator) // q.denominator))


def bucket_counts(us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted bucket indices that values fall in, and how many fall in each."""
    idx, cnt = np.unique(FINE.index(us), return_counts=True)
    return idx.astype(np.int64), cnt.astype(np.int64)


class Sparse:
    """One exact latency histogram: the buckets it has counts in, and exact count, sum, min and max."""

    __slots__ = ("idx", "cnt", "count", "sum_ms", "min_ms", "max_ms", "clamped")

    def __init__(self) -> None:
        self.idx: np.ndarray = np.zeros(0, dtype=np.int64)   # sorted, distinct bucket indices
        self.cnt: np.ndarray = np.zeros(0, dtype=np.int64)
        self.count = 0
        self.sum_ms = 0.0
        self.min_ms = math.inf
        self.max_ms = -math.inf
        self.clamped = 0

    def add(self, ms: np.ndarray) -> None:
        """Count a batch of values, in milliseconds."""
        if not ms.size:
            return
        us, clamped = to_us(ms)
        idx, cnt = bucket_counts(us)
        self.add_counts(idx, cnt)
        self.count += int(ms.size)
        self.sum_ms += float(ms.sum())
        self.min_ms = min(self.min_ms, float(ms.min()))
        self.max_ms = max(self.max_ms, float(ms.max()))
        self.clamped += clamped

    def add_counts(self, idx: np.ndarray, cnt: np.ndarray) -> None:
        """Add counts at sorted, distinct bucket indices; count, sum and extremes are the caller's."""
        if not idx.size:
            return
        if self.idx.size:
            at = np.searchsorted(self.idx, idx)
            inside = at < self.idx.size
            if inside.all() and (self.idx[at] == idx).all():   # the usual case: buckets seen before
                self.cnt[at] += cnt
                return
            union = np.unique(np.concatenate((self.idx, idx)), return_inverse=True)
            self.idx = union[0]
            self.cnt = np.bincount(union[1], weights=np.concatenate((self.cnt, cnt)),
                                   minlength=self.idx.size).astype(np.int64)
        else:
            self.idx, self.cnt = idx.astype(np.int64), cnt.astype(np.int64)

    def merge(self, other: Sparse) -> None:
        if not other.count:
            return
        self.add_counts(other.idx, other.cnt)
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)
        self.clamped += other.clamped

    @property
    def mean_ms(self) -> float:
        return self.sum_ms / self.count if self.count else math.nan

    def percentiles(self, points: Sequence[float]) -> list[float]:
        """Values at each percentile point (ms), by the definition above; nan when empty."""
        if not self.count:
            return [math.nan for _ in points]
        cum = np.cumsum(self.cnt)
        n = int(cum[-1])
        ranks = np.array([rank(p, n) for p in points], dtype=np.int64)
        at = self.idx[np.searchsorted(cum, ranks, side="left")]
        values = np.minimum(FINE.highest[at] / 1000.0, self.max_ms)
        return [self.min_ms if p == 0 else float(v) for p, v in zip(points, values)]

    def percentile(self, p: float) -> float:
        return self.percentiles((p,))[0]

    def to_hdr(self) -> HdrHistogram:
        """An HdrHistogram (dense) with these counts, its own bookkeeping as its decoder would set it."""
        hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        if self.count:
            counts = np.ctypeslib.as_array(hist.counts)
            counts[self.idx] = self.cnt.astype(counts.dtype)
            hist.set_internal_tacking_values(int(self.idx[0]), int(self.idx[-1]), int(self.cnt.sum()))
        return hist

    def encode(self) -> str:
        """HDR's standard compressed base64 form (V2), as `HdrHistogram.encode()` gives it."""
        encoded = acyclic(self.to_hdr()).encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)

    @classmethod
    def from_hdr(cls, hist: HdrHistogram, *, sum_ms: float | None = None, min_ms: float | None = None,
                 max_ms: float | None = None) -> Sparse:
        """Read a (decoded) HdrHistogram back; exact sum, min and max if the sender gave them."""
        layout = (hist.lowest_trackable_value, hist.highest_trackable_value, hist.significant_figures)
        if layout != (LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES) or hist.counts_len != FINE.counts_len:
            raise ValueError(f"a histogram for {layout[0]}..{layout[1]} us at {layout[2]} significant figures does "
                             f"not have this layout ({LOWEST_US}..{HIGHEST_US} us, {SIGNIFICANT_FIGURES} figures)")
        out = cls()
        counts = np.ctypeslib.as_array(hist.counts).astype(np.int64)
        nz = np.flatnonzero(counts)
        if not nz.size:
            return out
        out.idx, out.cnt = nz.astype(np.int64), counts[nz]
        out.count = int(out.cnt.sum())
        out.min_ms = min_ms if min_ms is not None else float(FINE.lowest[nz[0]]) / 1000.0
        out.max_ms = max_ms if max_ms is not None else float(FINE.highest[nz[-1]]) / 1000.0
        out.sum_ms = sum_ms if sum_ms is not None else float((FINE.lowest[nz] * out.cnt).sum()) / 1000.0
        return out


def merged(parts: Iterable[Sparse]) -> Sparse:
    out = Sparse()
    for part in parts:
        out.merge(part)
    return out


def acyclic(hist: HdrHistogram) -> HdrHistogram:
    """`hist` with its encoder's reference back to it made weak, so that dropping it frees it at once.

    hdrh keeps each histogram and its encoder in a reference cycle, which only the cyclic collector breaks.
    A process that makes and drops histograms (about 190 KB of counts each at this precision: every read of
    the record for the live gate decodes a few dozen) leaves them to the rare full collection, and its RSS
    swings by tens of MB meanwhile. The encoder is only ever used through its histogram, so a weak
    reference back loses nothing: it still encodes, adds and is added to."""
    hist.encoder.histogram = weakref.proxy(hist)
    return hist


__all__ = ["FINE", "HIGHEST_US", "LOWEST_US", "Layout", "PERCENTILE_DEFINITION", "SIGNIFICANT_FIGURES", "Sparse",
           "acyclic", "bucket_counts", "merged", "rank", "to_us"]
