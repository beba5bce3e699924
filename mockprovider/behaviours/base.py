"""The one interface every behaviour implements, and the call it acts on.

A behaviour is like a Toxiproxy toxic: a small unit that sees a call on its way
in, may answer it itself (refuse, fail, delay) or pass it on with `proceed()`,
and may look at the outcome on its way out. A provider's behaviour is a chain of
them built from its profile; the wire format turns the final `Outcome` into the
provider's own HTTP answer.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from xxhash import xxh3_64_intdigest

from ..limits import MAX_KEY_BYTES


class Kind(enum.Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"      # the key's request budget is spent
    OVERLOADED = "overloaded"          # no slot and no room in the queue
    SERVER_ERROR = "server_error"      # the provider failed while generating
    CONTENT_POLICY = "content_policy"  # the prompt was refused
    TIMEOUT = "timeout"                # the provider hung past any sane client timeout
    OUTAGE = "outage"                  # the provider is down


class Phase(enum.IntEnum):
    RECEIVED = 0
    KEY_QUEUED = 1   # waiting behind the key's own running jobs
    QUEUED = 2       # waiting for one of the provider's slots
    RUNNING = 3
    DONE = 4


@dataclass(slots=True)
class Outcome:
    kind: Kind
    retry_after_s: float | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is Kind.OK


OK = Outcome(Kind.OK)


@dataclass(slots=True)
class RateInfo:
    """What the rate limiter knows of this key, for the x-ratelimit-* headers."""
    limit: int
    remaining: int
    reset_s: float


class Answering(Protocol):
    """What a wire format's guard keeps for the request it is answering (wire.common.Labels)."""

    call: Call | None


# The request being answered in this task, set by the wire formats' guard: a Call made while
# answering it hands itself over, so the provider-side record finds the call behind every
# answer without each wire format passing it on (aiohttp answers each request in its own task).
answering: ContextVar[Answering | None] = ContextVar("answering", default=None)


class Call:
    """One request as the behaviours see it: who asks, for what, and how far it got.

    Fields a behaviour may set later start as class attributes, so a call costs
    only the stores it needs (this object is made for every request).

    Two clocks: `received_at` and `running_since` are the event loop's (what the
    rate limiter and the Midjourney job view count in; uvloop's ticks in whole
    milliseconds); `t_entered`, `t_running` and `t_done` are `time.perf_counter()`
    readings for the provider-side record, whose queue and service times must
    resolve a microsecond.
    """

    phase = Phase.RECEIVED
    service_ms = 0.0          # generation time drawn for this call
    late_ms = 0.0             # how much later than drawn the generation's sleep woke (the event loop's delay)
    running_since = 0.0
    queued_ms = 0.0
    extra_ms = 0.0            # added by behaviours before the draw (failover hop)
    quality = ""              # what the request asked for, where the latency depends on it
    pixels = 0                # width x height of each image asked for (0: the reference size)
    image_format = ""         # the format each image is served in ("png", "jpeg", "webp"; "": not said)
    rate: RateInfo | None = None
    fault: Kind | None = None   # drawn on arrival by the fault behaviour
    outcome: Outcome | None = None   # set once the behaviours have answered
    t_entered = 0.0           # perf_counter() when a behaviour first stepped in (0: none did)
    t_running = 0.0           # perf_counter() when generation started (0: it never did)
    t_done = 0.0              # perf_counter() when the behaviours answered (0: not yet, or at once)
    _admitted: asyncio.Future[None] | None = None

    def __init__(self, model: str, key: str, n: int = 1, *, loop: asyncio.AbstractEventLoop | None = None,
                 watch_admission: bool = False) -> None:
        if loop is None:
            loop = asyncio.get_running_loop()
        self.loop = loop
        self.model = self.served_model = model   # a relay may fail over to another model
        self.key = key
        self.n = n
        self.received_at = loop.time()
        if watch_admission:
            self._admitted = loop.create_future()
        request = answering.get()
        if request is not None:
            request.call = self

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        if phase is Phase.RUNNING:
            self.t_running = perf_counter()
            self.running_since = self.loop.time()
            self.queued_ms = (self.t_running - self.t_entered) * 1000.0
        if phase >= Phase.KEY_QUEUED and self._admitted is not None and not self._admitted.done():
            self._admitted.set_result(None)

    @property
    def admitted(self) -> asyncio.Future[None]:
        if self._admitted is None:
            raise RuntimeError("this call was not created with watch_admission=True")
        return self._admitted

    def phase_change(self) -> asyncio.Future[None]:
        """A future resolved at this call's next phase from KEY_QUEUED on: a watcher of a queued
        call learns when it starts running without polling."""
        self._admitted = self.loop.create_future()
        return self._admitted

    def elapsed_ms(self) -> float:
        return (self.loop.time() - self.received_at) * 1000.0


def tracked_key(key: str) -> str | int:
    """What per-key state is kept under: the key, or for a long one its 64-bit digest (a client
    sending 8 KB keys must not make each entry of a table 8 KB)."""
    return key if len(key) <= MAX_KEY_BYTES else xxh3_64_intdigest(key.encode("utf-8", "surrogateescape"))


Proceed = Callable[[], Awaitable[Outcome]]
Step = Callable[["Call", Proceed], Coroutine[Any, Any, Outcome]]
# A chain's step, bound once: (prepare, admit or None, handle); see Chain.
_Bound = tuple[Callable[["Call"], "bool | None"], "Callable[[Call], Outcome | None] | None", Step]


class Behaviour:
    """Base class: pass every call through unchanged."""

    name = "passthrough"

    def prepare(self, call: Call) -> bool | None:
        """Draw this call's randomness, on arrival, in chain order (keeps runs reproducible).

        Returning False stands this behaviour aside for this call (its `handle` is
        not run), like a toxic whose toxicity did not fire: a provider that is up
        needs no outage step, an answer with no latency no sleep.
        """
        return None

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        return await proceed()


class Admission(Behaviour):
    """A behaviour that decides at once, without waiting: `admit` answers the call (an Outcome) or
    lets it pass (None). The chain runs it in line, with no coroutine of its own, as a rate limit or
    an outage check runs for every request. A subclass that overrides `handle` is an ordinary,
    awaited step again (its `handle` is what the chain runs)."""

    def admit(self, call: Call) -> Outcome | None:
        return None

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        outcome = self.admit(call)
        return outcome if outcome is not None else await proceed()


def _no_prepare(call: Call) -> None:
    return None


class Chain:
    """Behaviours applied in order; the last `proceed()` means "generated"."""

    __slots__ = ("behaviours", "_steps", "_done")

    def __init__(self, behaviours: Sequence[Behaviour]) -> None:
        self.behaviours = tuple(behaviours)
        self._done: asyncio.Future[Outcome] | None = None
        # Bound once: the chain runs for every request, and most behaviours draw nothing. An
        # Admission whose `handle` is still Admission's is run in line through `admit`.
        self._steps: tuple[_Bound, ...] = tuple((b.prepare if type(b).prepare is not Behaviour.prepare else _no_prepare,
                                                 b.admit if isinstance(b, Admission)
                                                 and type(b).handle is Admission.handle else None,
                                                 b.handle)
                                                for b in self.behaviours)

    def run(self, call: Call) -> Awaitable[Outcome]:
        """Prepare now (draws happen in arrival order), and return what serves the call, to await."""
        steps = [step for step in self._steps if step[0](call) is not False]
        if steps:
            call.t_entered = perf_counter()
            i = 0
            for step in steps:
                admit = step[1]
                if admit is None:   # the first step that may wait: it and the rest run as a coroutine
                    return _served(call, steps, i)
                outcome = admit(call)
                if outcome is not None:   # answered in line (refused), as its handle would have
                    call.t_done = perf_counter()
                    call.outcome = outcome
                    answered = call.loop.create_future()
                    answered.set_result(outcome)
                    return answered
                i += 1
            call.t_done = perf_counter()   # every step let it pass, none waited
        # Nothing left that waits (no latency, no capacity): an already finished future, shared, because
        # building and running a coroutine for nothing is a measurable share of the cheapest answer.
        call.outcome = OK
        done = self._done
        if done is None or done.get_loop() is not call.loop:
            done = self._done = call.loop.create_future()
            done.set_result(OK)
        return done

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.behaviours]


async def _served(call: Call, steps: list[_Bound], first: int) -> Outcome:
    """The chain's answer from `steps[first]` on, noting on the call what it was and when it came (for
    the record)."""
    try:
        outcome = await _step(call, steps, first)
    finally:
        call.t_done = perf_counter()
    call.outcome = outcome
    return outcome


def _step(call: Call, steps: list[_Bound], i: int) -> Coroutine[Any, Any, Outcome]:
    if i == len(steps):
        return _generated()
    return steps[i][2](call, lambda: _step(call, steps, i + 1))


async def _generated() -> Outcome:
    return OK
