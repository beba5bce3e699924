"""Injected failures: outages, and a per-request error mix matching the provider's uptime."""

from __future__ import annotations

import asyncio
import random

from ..profile import FaultSpec
from ..settings import Settings
from .base import Admission, Behaviour, Call, Kind, Outcome, Phase, Proceed

_KINDS = {
    "server_error": Kind.SERVER_ERROR,
    "overloaded": Kind.OVERLOADED,
    "content_policy": Kind.CONTENT_POLICY,
    "timeout": Kind.TIMEOUT,
}


class Outage(Admission):
    """While the provider is down, every call fails at once."""

    name = "outage"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare(self, call: Call) -> bool:
        return self.settings.outage

    def admit(self, call: Call) -> Outcome | None:
        return Outcome(Kind.OUTAGE) if self.settings.outage else None


class Faults(Behaviour):
    """`error_rate` of calls fail, the kind drawn from the profile's mix.

    Refusals (content policy, overload) come back at once; a server error comes
    after the generation time was spent; a timeout hangs for `hang_ms`.
    """

    name = "faults"

    def __init__(self, profile: FaultSpec, settings: Settings, rng: random.Random, scale: float) -> None:
        self.settings = settings
        self.rng = rng
        self.scale = scale
        self.hang_ms = profile.hang_ms
        total = sum(profile.mix.values())
        self.kinds = [_KINDS[k] for k in profile.mix]
        acc, self.cumulative = 0.0, []
        for w in profile.mix.values():
            acc += w / total
            self.cumulative.append(acc)

    def prepare(self, call: Call) -> bool:
        if self.rng.random() < self.settings.error_rate:
            u = self.rng.random()
            for kind, edge in zip(self.kinds, self.cumulative):
                if u <= edge:
                    call.fault = kind
                    return True
            call.fault = self.kinds[-1]
            return True
        return False

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        kind = call.fault
        if kind is None:
            return await proceed()
        if kind is Kind.SERVER_ERROR:
            outcome = await proceed()
            return Outcome(Kind.SERVER_ERROR) if outcome.ok else outcome
        if kind is Kind.TIMEOUT:
            call.set_phase(Phase.RUNNING)
            await asyncio.sleep(self.hang_ms * self.scale / 1000.0)
            return Outcome(Kind.TIMEOUT)
        return Outcome(kind)
