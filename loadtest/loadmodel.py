"""Load models: how a scenario offers its load, each one type (as k6's executors are).

A model is plain data read from `[load]`: its stages, what it asks of Locust's shape each
tick, how many users it needs at the peak, and what it reports. What it does at run time
(think time between a closed user's generations, the open model's arrival clock) is its
driver, in `loadtest.locust.drivers`; this module stays free of Locust and gevent so a
scenario can be loaded and checked anywhere.

- `closed`: users with think time. A slow target slows the load with it.
- `open`: an arrival rate. Requests start on a schedule whatever the answers do; a start
  that finds every VU busy is dropped and counted against success. The starts follow the
  stages' rate evenly (`arrivals = "even"`, as k6 does), as a Poisson process (`"poisson"`),
  as a gamma renewal process with a burstiness factor (`"gamma"`, `burstiness` < 1 burstier
  than Poisson, > 1 more regular; vLLM's `--burstiness`), or replay a trace of real start
  times (`"trace"`, `trace = "sale.csv"`, `time_scale`; loadtest.trace). Random arrivals are
  drawn from `seed` (default: the scenario's `[mock] seed`), so a run is reproducible.

Adding a model is a class here with `KIND`, `parse`, `tick` and `report`, a driver, and a
line in `MODELS`.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from .fields import Problems, Table
from .trace import Trace, TraceError, read_trace

# Open model: VUs are all started first (like k6's pre-allocated VUs); the arrival clock
# starts once they are up, and a short drain lets the last scheduled requests finish.
OPEN_SPAWN_S = 2.0
DRAIN_S = 3.0
# Beyond any one run's reach (Locust runs a few thousand users per core): a figure past these is a typo.
MAX_USERS = 1_000_000
MAX_RATE = 1_000_000.0
# A stage's name is used as a threshold filter, latency{stage:NAME}, and in report file names.
_STAGE_NAME = re.compile(r"^[^\s,:{}'\"](?:[^,:{}'\"]*[^\s,:{}'\"])?$")


@dataclass(frozen=True)
class Stage:
    name: str
    duration_s: float
    users: int = 0              # closed: users at the end of the stage
    spawn_rate: float = 0.0     # closed: users started (or stopped) per second; 0: the default
    rate: float = 0.0           # open: arrivals per second at the end of the stage


def default_spawn_rate(delta_users: int, stage_s: float) -> float:
    # Reach the stage's users within a tenth of it: Locust's shape blocks while spawning,
    # so a ramp longer than its stage would swallow the next stage.
    return max(1.0, abs(delta_users) / max(0.5, 0.1 * stage_s))


@dataclass(frozen=True)
class LoadModel(ABC):
    KIND: ClassVar[str]
    STAGE_KEYS: ClassVar[frozenset[str]]
    stages: tuple[Stage, ...]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    def windows(self) -> list[tuple[str, float, float]]:
        """(stage, start s, end s) on the schedule's own clock."""
        out, t = [], 0.0
        for s in self.stages:
            out.append((s.name, t, t + s.duration_s))
            t += s.duration_s
        return out

    def stage_at(self, t: float) -> str | None:
        return next((name for name, a, b in self.windows() if a <= t < b), None)

    def scaled(self, k: float) -> LoadModel:
        """Every stage k times as long (DURATION=); rates and spawn rates stay as written."""
        return replace(self, stages=tuple(replace(s, duration_s=s.duration_s * k) for s in self.stages))

    # Seconds from Locust's test start to the schedule's t=0 (the open model spawns its VUs first).
    schedule_offset_s: ClassVar[float] = 0.0

    @property
    @abstractmethod
    def peak_users(self) -> int:
        """The most users (VUs) Locust runs at once."""

    @abstractmethod
    def tick(self, run_time_s: float) -> tuple[int, float] | None:
        """What Locust's LoadTestShape asks for at this run time: (users, spawn rate), or None at the end."""

    @abstractmethod
    def report(self) -> dict[str, Any]:
        """What the summary says of this load, beyond its stages."""

    @classmethod
    @abstractmethod
    def parse(cls, t: Table, stages: tuple[Stage, ...]) -> LoadModel:
        """The model from its `[load]` table; mistakes go to t.problems."""


@dataclass(frozen=True)
class ClosedLoad(LoadModel):
    KIND: ClassVar[str] = "closed"
    STAGE_KEYS: ClassVar[frozenset[str]] = frozenset({"name", "duration", "users", "spawn_rate"})
    think_time_s: tuple[float, float] = (0.0, 0.0)

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.stages)

    def spawn_rates(self) -> list[float]:
        out, prev_users, prev_rate = [], 0, 1.0
        for stage in self.stages:
            if stage.spawn_rate:
                rate = stage.spawn_rate
            elif stage.users == prev_users:
                # Same users as before: repeat the previous tick exactly, so Locust does not
                # restart a ramp that is still going at a slower rate.
                rate = prev_rate
            else:
                rate = default_spawn_rate(stage.users - prev_users, stage.duration_s)
            out.append(rate)
            prev_users, prev_rate = stage.users, rate
        return out

    def tick(self, run_time_s: float) -> tuple[int, float] | None:
        elapsed = 0.0
        for stage, rate in zip(self.stages, self.spawn_rates()):
            if run_time_s < elapsed + stage.duration_s:
                return stage.users, rate
            elapsed += stage.duration_s
        return None

    def report(self) -> dict[str, Any]:
        return {"think_time_s": list(self.think_time_s)}

    @classmethod
    def parse(cls, t: Table, stages: tuple[Stage, ...]) -> ClosedLoad:
        think = t.raw.get("think_time", [0, 0])
        if isinstance(think, (int, float, str)) and not isinstance(think, bool):
            think = [think, think]
        lo = hi = 0.0
        if not isinstance(think, list) or len(think) != 2:
            t.fail("think_time", "must be a duration or [min, max], e.g. [\"0.5s\", \"0.9s\"]")
        else:
            pair = Table({"min": think[0], "max": think[1]}, t.at("think_time"), t.problems)
            lo, hi = pair.duration("min", 0.0), pair.duration("max", 0.0)
            if hi < lo:
                t.fail("think_time", "has its max below its min")
        for key in ("max_vus", "start_rate", *_ARRIVAL_KEYS):
            if key in t:
                t.fail(key, "is for an open model (model = \"open\")")
        return cls(stages=stages, think_time_s=(lo, hi))


@dataclass(frozen=True)
class OpenLoad(LoadModel):
    KIND: ClassVar[str] = "open"
    STAGE_KEYS: ClassVar[frozenset[str]] = frozenset({"name", "duration", "rate"})
    schedule_offset_s: ClassVar[float] = OPEN_SPAWN_S
    max_vus: int = 1
    start_rate: float | None = None   # rate at t=0 (default: the first stage's rate)
    arrivals: str = "even"            # even | poisson | gamma | trace
    burstiness: float = 1.0           # gamma: the shape of the gaps between starts (1: Poisson)
    seed: int | None = None           # random arrivals: their seed (None: the scenario's [mock] seed)
    trace: Trace | None = None        # arrivals = "trace": the start times replayed

    @property
    def peak_users(self) -> int:
        return self.max_vus

    def scaled(self, k: float) -> LoadModel:
        """A trace stretches with its stages: the same arrivals, spread over k times the time."""
        out = super().scaled(k)
        assert isinstance(out, OpenLoad)
        return replace(out, trace=self.trace.scaled(k)) if self.trace is not None else out

    def tick(self, run_time_s: float) -> tuple[int, float] | None:
        if run_time_s >= OPEN_SPAWN_S + self.duration_s + DRAIN_S:
            return None
        return self.max_vus, max(100.0, self.max_vus / (OPEN_SPAWN_S / 2))

    @property
    def scheduled_starts(self) -> float:
        """Arrivals the schedule makes: the integral of its piecewise-linear rate (the expected number for
        random arrivals), or the trace's arrivals within the stages."""
        if self.trace is not None:
            return float(self.trace.count_between(0.0, self.duration_s))
        total, prev = 0.0, self.stages[0].rate if self.start_rate is None else self.start_rate
        for s in self.stages:
            total += (prev + s.rate) / 2 * s.duration_s
            prev = s.rate
        return total

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"max_vus": self.max_vus, "scheduled_starts": round(self.scheduled_starts),
                               "arrivals": self.arrivals}
        if self.arrivals == "gamma":
            out["burstiness"] = self.burstiness
        if self.arrivals in ("poisson", "gamma"):
            out["arrival_seed"] = self.seed
        if self.trace is not None:
            out["trace"] = {"path": self.trace.path, "arrivals": self.trace.arrivals,
                            "duration_s": round(self.trace.duration_s, 3), "time_scale": self.trace.time_scale,
                            "models": list(self.trace.models),
                            "use_cases": self.trace.use_case_index is not None}
        return out

    @classmethod
    def parse(cls, t: Table, stages: tuple[Stage, ...]) -> OpenLoad:
        max_vus = 1
        if t.required("max_vus", "max_vus = 600, how many requests may be in flight at once"):
            max_vus = t.integer("max_vus", 1, lo=1, hi=MAX_USERS)
        start_rate = t.number("start_rate", 0.0, lo=0.0, hi=MAX_RATE) if "start_rate" in t else None
        if "think_time" in t:
            t.fail("think_time", "is for a closed model: an open model's arrival rate sets the pace")
        if stages and not math.isfinite(sum(s.rate for s in stages)):
            t.fail("stages", "rates must be finite")
        arrivals = t.string("arrivals", "even")
        if arrivals not in ARRIVALS:
            t.fail("arrivals", f"must be one of {', '.join(repr(a) for a in ARRIVALS)} (even: evenly spaced; poisson; "
                               f"gamma: bursty, with burstiness; trace: replayed from a CSV file), got {arrivals!r}")
            arrivals = "even"
        burstiness = 1.0
        if "burstiness" in t:
            if arrivals != "gamma":
                t.fail("burstiness", "is for arrivals = \"gamma\" (Poisson is gamma with burstiness 1)")
            burstiness = t.number("burstiness", 1.0, above=0.0)
        seed = t.integer("seed", 0, lo=0) if "seed" in t else None
        if seed is not None and arrivals not in ("poisson", "gamma"):
            t.fail("seed", "is for random arrivals (arrivals = \"poisson\" or \"gamma\")")
        for key in ("trace", "time_scale"):
            if key in t and arrivals != "trace":
                t.fail(key, "is for arrivals = \"trace\"")
        if "start_rate" in t and arrivals == "trace":
            t.fail("start_rate", "does not apply to a trace: its own times set the pace")
        return cls(stages=stages, max_vus=max_vus, start_rate=start_rate, arrivals=arrivals, burstiness=burstiness,
                   seed=seed)


MODELS: dict[str, type[LoadModel]] = {m.KIND: m for m in (ClosedLoad, OpenLoad)}
ARRIVALS = ("even", "poisson", "gamma", "trace")
_ARRIVAL_KEYS = ("arrivals", "burstiness", "seed", "trace", "time_scale")


def parse_load(raw: Any, problems: Problems, base: Path | None = None) -> LoadModel:
    """`base`: the folder a trace's relative path is read from (the scenario file's)."""
    t = Table(raw, "load", problems)
    if raw is None:
        problems.add("[load] is required: a model and its stages")
        return ClosedLoad(stages=(Stage("stage1", 1.0, users=1),))
    if not isinstance(raw, Mapping):     # Table said so; nothing in it to read further
        return ClosedLoad(stages=(Stage("stage1", 1.0, users=1),))
    kind = t.string("model", "closed")
    cls = MODELS.get(kind)
    if cls is None:
        t.fail("model", f"must be one of {', '.join(repr(k) for k in MODELS)} "
                        f"(closed: users with think time; open: an arrival rate), got {kind!r}")
        cls = ClosedLoad
    t.only({"model", "stages", "think_time", "max_vus", "start_rate", *_ARRIVAL_KEYS})
    if cls is OpenLoad and t.raw.get("arrivals") == "trace":
        trace = _trace(t, base)
        model = cls.parse(t, _trace_stages(t, trace))
        assert isinstance(model, OpenLoad)
        return replace(model, trace=trace) if trace is not None else model
    stages = _stages(t, cls)
    return cls.parse(t, stages)


def _trace(t: Table, base: Path | None) -> Trace | None:
    if not t.required("trace", 'trace = "sale.csv", a CSV file of request start times'):
        return None
    name = t.string("trace", "")
    scale = t.number("time_scale", 1.0, above=0.0)
    path = Path(name)
    if not path.is_absolute() and base is not None and (base / path).exists():
        path = base / path
    try:
        return read_trace(path, scale)
    except TraceError as exc:
        t.problems.add(f"{t.at('trace')}: {exc}")
        return None


def _trace_stages(t: Table, trace: Trace | None) -> tuple[Stage, ...]:
    """A trace's stages name windows of it (name, duration); without them, one stage spans the whole trace."""
    length = math.floor(trace.duration_s) + 1.0 if trace is not None else 1.0
    raw = t.raw.get("stages")
    if raw is None:
        stages: tuple[Stage, ...] = (Stage("replay", length),)
    elif not isinstance(raw, list) or not raw:
        t.fail("stages", "must be a non-empty list of { name, duration }, or left out (one stage, the whole trace)")
        stages = (Stage("replay", length),)
    else:
        out = []
        for i, entry in enumerate(raw):
            st = Table(entry, f"load.stages[{i}]", t.problems)
            st.only({"name", "duration"}, hint="a trace's stages name windows of it; its own times set the rate")
            st.required("duration", "duration = \"30s\"")
            out.append(Stage(st.string("name", f"stage{i + 1}"), st.duration("duration", 1.0, positive=True)))
        stages = tuple(out)
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            t.fail("stages", f"need unique names, got {names}")
    if trace is None:
        return stages
    # Each stage's rate is the trace's mean over it: what the report shows, not what drives the starts.
    windowed, at = [], 0.0
    for stage in stages:
        windowed.append(replace(stage, rate=trace.count_between(at, at + stage.duration_s) / stage.duration_s))
        at += stage.duration_s
    return tuple(windowed)


def _stages(t: Table, cls: type[LoadModel]) -> tuple[Stage, ...]:
    raw = t.raw.get("stages")
    if not isinstance(raw, list) or not raw:
        t.fail("stages", "must be a non-empty list of stages, e.g. "
                         "[{ name = \"hold\", duration = \"30s\", users = 100 }]")
        return (Stage("stage1", 1.0, users=1, rate=1.0),)
    stages: list[Stage] = []
    for i, entry in enumerate(raw):
        s = Table(entry, f"load.stages[{i}]", t.problems)
        s.only(cls.STAGE_KEYS, hint=f"for a {cls.KIND} model")
        s.required("duration", "duration = \"30s\"")
        duration = s.duration("duration", 1.0, positive=True)
        name = s.string("name", f"stage{i + 1}")
        if not _STAGE_NAME.match(name):
            s.fail("name", f"must be a name without , : {{ }} quotes or white space at its ends (thresholds "
                           f"name stages as latency{{stage:NAME}}), got {name!r}")
        if cls is ClosedLoad:
            s.required("users", "users = 100")
            stages.append(Stage(name, duration, users=s.integer("users", 0, lo=0, hi=MAX_USERS),
                                spawn_rate=s.number("spawn_rate", 0.0, lo=0.0, hi=MAX_RATE)))
        else:
            s.required("rate", "rate = 1200, arrivals per second at the end of the stage")
            stages.append(Stage(name, duration, rate=s.number("rate", 0.0, lo=0.0, hi=MAX_RATE)))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        t.fail("stages", f"need unique names, got {names}")
    if cls is ClosedLoad and stages and max(s.users for s in stages) < 1:
        t.fail("stages", "ask for no users at all")
    if cls is OpenLoad and stages and max(s.rate for s in stages) <= 0:
        t.fail("stages", "have no arrivals at all (every rate is 0)")
    return tuple(stages)
