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
from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence


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


class Call:
    """One request as the behaviours see it: who asks, for what, and how far it got."""

    __slots__ = ("model", "served_model", "key", "n", "received_at", "phase",
                 "service_ms", "running_since", "queued_ms", "rate", "extra_ms",
                 "fault", "_admitted", "loop")

    def __init__(self, model: str, key: str, n: int = 1, *, watch_admission: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.model = model
        self.served_model = model   # a relay may fail over to another model
        self.key = key
        self.n = n
        self.received_at = self.loop.time()
        self.phase = Phase.RECEIVED
        self.service_ms = 0.0       # generation time drawn for this call
        self.running_since = 0.0
        self.queued_ms = 0.0
        self.extra_ms = 0.0         # added by behaviours before the draw (failover hop)
        self.rate: RateInfo | None = None
        self.fault: Kind | None = None   # drawn on arrival by the fault behaviour
        self._admitted: asyncio.Future[None] | None = self.loop.create_future() if watch_admission else None

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase
        if phase is Phase.RUNNING:
            self.running_since = self.loop.time()
            self.queued_ms = (self.running_since - self.received_at) * 1000.0
        if phase >= Phase.KEY_QUEUED and self._admitted is not None and not self._admitted.done():
            self._admitted.set_result(None)

    @property
    def admitted(self) -> asyncio.Future[None]:
        if self._admitted is None:
            raise RuntimeError("this call was not created with watch_admission=True")
        return self._admitted

    def elapsed_ms(self) -> float:
        return (self.loop.time() - self.received_at) * 1000.0


Proceed = Callable[[], Awaitable[Outcome]]


class Behaviour:
    """Base class: pass every call through unchanged."""

    name = "passthrough"

    def prepare(self, call: Call) -> None:
        """Draw this call's randomness, on arrival, in chain order (keeps runs reproducible)."""

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        return await proceed()


class Chain:
    """Behaviours applied in order; the last `proceed()` means "generated"."""

    __slots__ = ("behaviours",)

    def __init__(self, behaviours: Sequence[Behaviour]) -> None:
        self.behaviours = tuple(behaviours)

    async def run(self, call: Call) -> Outcome:
        for b in self.behaviours:
            b.prepare(call)
        return await self._step(call, 0)

    def _step(self, call: Call, i: int) -> Awaitable[Outcome]:
        if i == len(self.behaviours):
            return _generated()
        return self.behaviours[i].handle(call, lambda: self._step(call, i + 1))

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.behaviours]


async def _generated() -> Outcome:
    return OK
