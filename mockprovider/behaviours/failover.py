"""A relay's failover: when the upstream of the asked model is down, serve a healthy one."""

from __future__ import annotations

from collections.abc import Mapping

from ..profile import RelaySpec
from ..settings import Settings
from .base import Admission, Call, Kind, Outcome


class Failover(Admission):
    name = "failover"

    def __init__(self, spec: RelaySpec, upstream: Mapping[str, Settings]) -> None:
        self.spec = spec
        self.upstream = upstream

    def prepare(self, call: Call) -> bool:
        up = self.upstream.get(call.model)
        if up is None or not up.outage:
            return False
        for fallback in self.spec.failover.get(call.model, ()):
            other = self.upstream.get(fallback)
            if other is not None and not other.outage:
                call.served_model = fallback
                call.extra_ms += self.spec.failover_penalty_ms
                return False
        call.served_model = ""   # nothing healthy to fall back to
        return True

    def admit(self, call: Call) -> Outcome | None:
        return Outcome(Kind.OUTAGE, detail="upstream") if not call.served_model else None
