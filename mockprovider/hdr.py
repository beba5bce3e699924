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
V2), which any HdrHistogram implementation decodes; `Sparse.decode` reads one back, through one
dense scratch array kept for the purpose rather than a new dense HdrHistogram per histogram (a
live read of the record decodes dozens, every 2 s). Adding two
histograms adds their counts bucket by bucket, so the merge of N workers' histograms is exact.

Percentile definition (the load generator's): HDR nearest rank, p(N) is the value at rank
ceil(N/100 x count), reported as the highest value equivalent to its bucket (never under-reports),
capped at the exact maximum; p(0) is the exact minimum. min, max and mean are exact (kept beside
the counts); a histogram decoded from HDR's form alone knows them only to its bucket.
"""

from __future__ import annotations

import binascii
import math
import threading
import weakref
import zlib
from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pyhdrh
from hdrh.codec import HdrCookieException, HdrHistogramEncoder, HdrLengthException, payload_header_size
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
            self.idx, self.cnt = add_buckets(((self.idx, self.cnt), (idx, cnt)))
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
        return bucket_percentiles(self.idx, self.cnt, points, self.min_ms, self.max_ms)

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
    def decode(cls, encoded: str | bytes, *, sum_ms: float | None = None, min_ms: float | None = None,
               max_ms: float | None = None) -> Sparse:
        """Read HDR's compressed base64 form back (ValueError if it is not one, or not this layout); exact
        sum, min and max if the sender gave them, else their bucket edges."""
        idx, cnt = decode_buckets(encoded)
        out = cls()
        if not idx.size:
            return out
        out.idx, out.cnt = idx, cnt
        out.count = int(cnt.sum())
        out.min_ms = min_ms if min_ms is not None else float(FINE.lowest[idx[0]]) / 1000.0
        out.max_ms = max_ms if max_ms is not None else float(FINE.highest[idx[-1]]) / 1000.0
        out.sum_ms = sum_ms if sum_ms is not None else float((FINE.lowest[idx] * cnt).sum()) / 1000.0
        return out


NO_BUCKETS = np.zeros(0, dtype=np.int64)     # an empty histogram's indices and counts, shared: read-only
NO_BUCKETS.flags.writeable = False
_scratch: np.ndarray | None = None        # FINE.counts_len zeros between decodes
_scratch_lock = threading.Lock()


def _check_layout(lowest: int, highest: int, figures: int) -> None:
    if (lowest, highest, figures) != (LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES):
        raise ValueError(f"a histogram for {lowest}..{highest} us at {figures} significant figures does not have "
                         f"this layout ({LOWEST_US}..{HIGHEST_US} us, {SIGNIFICANT_FIGURES} figures)")


def decode_buckets(encoded: str | bytes) -> tuple[np.ndarray, np.ndarray]:
    """HDR's compressed base64 form (V2) as sparse buckets: sorted bucket indices and their counts.

    hdrh decodes into a new dense counts array (184 KB at this layout) for every histogram; here its
    C decoder writes into one scratch array, which is read sparse and zeroed again."""
    global _scratch
    try:
        payload = HdrHistogramEncoder.decode(encoded)
    except (binascii.Error, zlib.error, HdrCookieException, HdrLengthException, TypeError, ValueError) as exc:
        raise ValueError(f"not an HDR histogram in its compressed base64 form: {exc or type(exc).__name__}") from None
    head = payload.payload
    _check_layout(head.lowest_trackable_value, head.highest_trackable_value, head.significant_figures)
    with _scratch_lock:
        if _scratch is None:
            _scratch = np.zeros(FINE.counts_len, dtype=np.int64)
        try:
            pyhdrh.decode(payload._data, payload_header_size, _scratch.ctypes.data, FINE.counts_len, 8)
        except (IndexError, ValueError) as exc:
            _scratch[:] = 0
            raise ValueError(f"the HDR histogram's counts do not fit its layout: {exc}") from None
        idx = np.flatnonzero(_scratch)
        cnt = _scratch[idx]              # a copy (fancy indexing)
        _scratch[idx] = 0
    if (cnt < 0).any():
        raise ValueError("the HDR histogram holds a negative count")
    return idx.astype(np.int64), cnt


def add_buckets(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several sparse histograms' (indices, counts) summed bucket by bucket, in one pass."""
    full = [p for p in parts if p[0].size]
    if not full:
        return NO_BUCKETS, NO_BUCKETS
    if len(full) == 1:
        return full[0]
    idx, inverse = np.unique(np.concatenate([i for i, _ in full]), return_inverse=True)
    cnt = np.zeros(idx.size, dtype=np.int64)
    np.add.at(cnt, inverse, np.concatenate([c for _, c in full]))
    return idx, cnt


def bucket_percentiles(idx: np.ndarray, cnt: np.ndarray, points: Sequence[float], min_ms: float,
                       max_ms: float) -> list[float]:
    """The percentile definition above over sparse buckets with counts (not empty): p(0) the exact minimum."""
    cum = np.cumsum(cnt)
    n = int(cum[-1])
    ranks = np.array([rank(p, n) for p in points], dtype=np.int64)
    values = np.minimum(FINE.highest[idx[np.searchsorted(cum, ranks, side="left")]] / 1000.0, max_ms)
    return [min_ms if p == 0 else float(v) for p, v in zip(points, values)]


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


__all__ = ["FINE", "HIGHEST_US", "LOWEST_US", "NO_BUCKETS", "PERCENTILE_DEFINITION", "SIGNIFICANT_FIGURES", "Layout",
           "Sparse", "acyclic", "add_buckets", "bucket_counts", "bucket_percentiles", "decode_buckets", "merged",
           "rank", "to_us"]
