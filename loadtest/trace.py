"""Arrival traces: the request start times of a real sale (or a synthetic one), replayed by the open model.

A trace is a CSV file. Its first row may be a header naming the columns; without one, the first
column holds the times. The columns the suite reads:

- the time of each request: a column named `timestamp`, `time`, `ts`, `t`, `start` or `started_at`
  (or the first column): seconds as a number (epoch or relative), or an ISO 8601 date-time as an
  access log writes it (`2026-11-27T09:00:00.125Z`);
- `model` (optional): the model each request asked for (a relay serves several);
- `use_case` (optional): product_mockup, lifestyle or abandoned_cart, for the prompt.

Locust's own stats history (`--csv` writes `<prefix>_stats_history.csv`) works as it is: its
"Aggregated" rows' `Requests/s` become that many starts, evenly spread, in each interval.

Times are sorted (access logs are not always in order), shifted so the first request starts at 0,
and multiplied by `time_scale` (0.5 replays twice as fast). The replay keeps the trace's own
timing, so latency still counts from each request's scheduled start.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from .prompts import USE_CASES

__all__ = ["Trace", "TraceError", "read_trace", "TIME_COLUMNS"]

TIME_COLUMNS = ("timestamp", "time", "ts", "t", "start", "started_at")
_MAX_PROBLEMS = 5


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file and the lines."""


@dataclass(frozen=True, eq=False)
class Trace:
    path: str
    offsets_s: np.ndarray = field(repr=False)        # float64, sorted, from 0, already time-scaled
    models: tuple[str, ...] = ()                     # the distinct models named, if the trace has a model column
    model_index: np.ndarray | None = field(default=None, repr=False)     # int32 into `models`, per arrival
    use_case_index: np.ndarray | None = field(default=None, repr=False)  # int32 into USE_CASES, per arrival
    time_scale: float = 1.0

    @property
    def arrivals(self) -> int:
        return int(self.offsets_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.offsets_s[-1]) if self.offsets_s.size else 0.0

    def count_between(self, a: float, b: float) -> int:
        """Arrivals in [a, b) seconds."""
        return int(np.searchsorted(self.offsets_s, b, side="left") - np.searchsorted(self.offsets_s, a, side="left"))

    def scaled(self, k: float) -> Trace:
        """The same arrivals, k times slower (k < 1: faster)."""
        return Trace(self.path, self.offsets_s * k, self.models, self.model_index, self.use_case_index,
                     self.time_scale * k)

    def replay(self, index: int = 0, count: int = 1, until_s: float = math.inf
               ) -> Iterator[tuple[float, str | None, str | None]]:
        """(offset s, model, use case) of every `count`-th arrival from `index`: one process's part of it."""
        for i in range(index, self.arrivals, max(1, count)):
            t = float(self.offsets_s[i])
            if t >= until_s:
                return
            model = self.models[int(self.model_index[i])] if self.model_index is not None else None
            case = USE_CASES[int(self.use_case_index[i])] if self.use_case_index is not None else None
            yield t, model, case


def _seconds(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return None
        return stamp.timestamp()
    return value if math.isfinite(value) else None


def read_trace(path: str | Path, time_scale: float = 1.0) -> Trace:
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise TraceError(f"trace file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: cannot read it as a CSV file: {exc}") from None
    rows = [r for r in rows if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise TraceError(f"{p}: the trace is empty; it needs one request start time per line")
    header = [c.strip().lower() for c in rows[0]]
    if "requests/s" in header and "timestamp" in header and "name" in header:
        times, models, cases = _from_locust_history(p, header, rows[1:]), None, None
    else:
        times, models, cases = _from_starts(p, header, rows)
    order = np.argsort(times, kind="stable")
    offsets = (times[order] - times[order][0]) * time_scale
    model_names: tuple[str, ...] = ()
    model_index = use_case_index = None
    if models is not None:
        model_names = tuple(sorted(set(models)))
        lookup = {m: i for i, m in enumerate(model_names)}
        model_index = np.array([lookup[m] for m in models], dtype=np.int32)[order]
    if cases is not None:
        use_case_index = np.array([USE_CASES.index(c) for c in cases], dtype=np.int32)[order]
    return Trace(str(p), offsets, model_names, model_index, use_case_index, time_scale)


def _from_starts(p: Path, header: Sequence[str], rows: list[list[str]]
                 ) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    has_header = _seconds(rows[0][0]) is None
    if has_header:
        time_col = next((header.index(c) for c in TIME_COLUMNS if c in header), 0)
        model_col = header.index("model") if "model" in header else None
        case_col = header.index("use_case") if "use_case" in header else None
        body, first_line = rows[1:], 2
    else:
        time_col, model_col, case_col, body, first_line = 0, None, None, rows, 1
    problems: list[str] = []
    times: list[float] = []
    models: list[str] | None = [] if model_col is not None else None
    cases: list[str] | None = [] if case_col is not None else None
    for line, row in enumerate(body, start=first_line):
        if len(problems) >= _MAX_PROBLEMS:
            break
        cell = row[time_col] if time_col < len(row) else ""
        t = _seconds(cell)
        if t is None:
            problems.append(f"line {line}: {cell.strip()!r} is not a time (seconds, or an ISO 8601 date-time)")
            continue
        if models is not None:
            model = row[model_col].strip() if model_col is not None and model_col < len(row) else ""
            if not model:
                problems.append(f"line {line}: no model")
                continue
            models.append(model)
        if cases is not None:
            case = row[case_col].strip() if case_col is not None and case_col < len(row) else ""
            if case not in USE_CASES:
                problems.append(f"line {line}: use_case {case!r} is not one of {', '.join(USE_CASES)}")
                if models is not None:
                    models.pop()
                continue
            cases.append(case)
        times.append(t)
    if problems:
        raise TraceError(f"{p}: " + "; ".join(problems))
    if not times:
        raise TraceError(f"{p}: the trace has a header but no request start times")
    return np.array(times, dtype=np.float64), models, cases


def _from_locust_history(p: Path, header: Sequence[str], rows: list[list[str]]) -> np.ndarray:
    """Locust's stats history: per-interval request rates, turned into evenly spread starts."""
    t_col, rate_col, name_col = header.index("timestamp"), header.index("requests/s"), header.index("name")
    points: list[tuple[float, float]] = []
    for line, row in enumerate(rows, start=2):
        if len(row) <= max(t_col, rate_col, name_col) or row[name_col].strip() != "Aggregated":
            continue
        t, rate = _seconds(row[t_col]), _seconds(row[rate_col])
        if t is None or rate is None or rate < 0:
            raise TraceError(f"{p}: line {line}: cannot read its Timestamp and Requests/s")
        points.append((t, rate))
    points.sort()
    if len(points) < 2:
        raise TraceError(f"{p}: a Locust stats history needs at least two Aggregated rows")
    times: list[float] = []
    carry = 0.0
    for (t0, rate), (t1, _) in zip(points, points[1:]):
        span = t1 - t0
        due = rate * span + carry
        k = int(due)
        carry = due - k
        if k:
            times.extend(t0 + span * (j + 0.5) / k for j in range(k))
    if not times:
        raise TraceError(f"{p}: the Locust stats history shows no requests")
    return np.array(times, dtype=np.float64)
