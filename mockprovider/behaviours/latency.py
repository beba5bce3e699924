"""Generation time: a clipped log-normal draw, scaled, slept while holding a slot."""

from __future__ import annotations

import asyncio
import random

from ..profile import LatencySpec
from ..settings import Settings
from .base import Behaviour, Call, Outcome, Phase, Proceed

REFERENCE_PIXELS = 1024 * 1024   # the size a profile's P50/P99 are for


class Latency(Behaviour):
    name = "latency"

    def __init__(self, profile: LatencySpec, settings: Settings, rng: random.Random, scale: float) -> None:
        self.profile = profile
        self.settings = settings
        self.rng = rng
        self.scale = scale
        # Most profiles' latency depends on neither: they skip the look-ups.
        self.shaped = bool(profile.quality_factors) or profile.size_exponent != 0

    def work(self, call: Call) -> float:
        """How much more (or less) work than the reference request a call's images are."""
        p = self.profile
        factor = p.quality_factors.get(call.quality, 1.0) if call.quality else 1.0
        if p.size_exponent and call.pixels:
            factor *= (call.pixels / REFERENCE_PIXELS) ** p.size_exponent
        return factor

    def draw_ms(self, n: int = 1) -> float:
        """Unscaled generation time for a request of n images."""
        p = self.profile
        ms = min(max(self.rng.lognormvariate(p.mu, p.sigma), p.min_ms), p.max_ms)
        if n > 1 and p.per_extra_image:
            for _ in range(n - 1):
                ms += p.per_extra_image * min(max(self.rng.lognormvariate(p.mu, p.sigma), p.min_ms), p.max_ms)
        return ms

    def prepare(self, call: Call) -> bool:
        # Drawn on arrival so a call's time depends only on its arrival order under a seed.
        if self.scale > 0:
            ms = self.draw_ms(call.n) * self.work(call) if self.shaped else self.draw_ms(call.n)
            call.service_ms = (ms + call.extra_ms) * self.scale * self.settings.latency_multiplier
        return call.service_ms > 0 or call._admitted is not None   # the watcher learns of the start here

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        call.set_phase(Phase.RUNNING)
        if call.service_ms > 0:
            await asyncio.sleep(call.service_ms / 1000.0)
        return await proceed()
