"""The client side of the latest requests one by one, under the correlation id each carried, so that a
gateway run can set each against the upstream call that answered it (loadtest/gateway_figures.py).

The recorder's histograms count every request but forget which was which; this keeps the last `cap` of
them, as the providers' record keeps its last `--record-cap` raw entries: both ends drop the oldest first,
so what is left of each still overlaps. Only [sut] runs keep them (a gateway between Locust and the mock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# As many as the mock's record keeps by default (mockprovider.record.DEFAULT_CAP): ~100 bytes each.
DEFAULT_CAP = 200_000


@dataclass(frozen=True, slots=True)
class Sample:
    generation: str      # the suite's correlation id without its attempt ("lt<pid hex>-<n>")
    stage: str
    latency_ms: float
    ok: bool
    ended_at: float      # wall clock when the client had its answer (or gave up)


class RequestSamples:
    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap <= 0:
            raise ValueError(f"cap must be positive, got {cap}")
        self.cap = cap
        self._rows: deque[Sample] = deque(maxlen=cap)
        self.dropped = 0                      # pushed out by newer ones (the oldest go first)

    def add(self, generation: str, stage: str, latency_ms: float, ok: bool, ended_at: float) -> None:
        if len(self._rows) == self.cap:
            self.dropped += 1
        self._rows.append(Sample(generation, stage, latency_ms, ok, ended_at))

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._rows)

    # -- workers: drain on the worker, merge on the master ---------------------------------

    def drain(self) -> list[list[object]]:
        """A worker's samples since its last report, handed to the master (which keeps them)."""
        rows: list[list[object]] = [[s.generation, s.stage, s.latency_ms, s.ok, s.ended_at] for s in self._rows]
        self._rows.clear()
        return rows

    def merge(self, rows: Iterable[Sequence[object]]) -> None:
        for generation, stage, latency_ms, ok, ended_at in rows:
            self.add(str(generation), str(stage), float(latency_ms), bool(ok), float(ended_at))  # type: ignore[arg-type]


__all__ = ["DEFAULT_CAP", "RequestSamples", "Sample"]
