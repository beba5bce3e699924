"""Generation time: a clipped log-normal draw, scaled, slept while holding a slot.

The draw is made on arrival (so a seed replays the same times); `latency_multiplier` applies when
generation starts, and a change of it reaches the calls already generating: each one's time still
to come is scaled by new/old (a reset from x1000 back to x1 cuts a 40 s sleep to 40 ms).
"""

from __future__ import annotations

import asyncio
import random
from time import perf_counter

from ..profile import LatencySpec
from ..settings import Settings
from .base import Behaviour, Call, Outcome, Phase, Proceed

REFERENCE_PIXELS = 1024 * 1024   # the size a profile's P50/P99 are for


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Latency(Behaviour):
    name = "latency"

    def __init__(self, profile: LatencySpec, settings: Settings, rng: random.Random, scale: float) -> None:
        self.profile = profile
        self.settings = settings
        self.rng = rng
        self.scale = scale
        # Most profiles' latency depends on neither quality nor size: they skip the look-ups.
        self.shaped = bool(profile.quality_factors) or profile.size_exponent != 0
        self.multiplier = settings.latency_multiplier   # the one every sleeping call's time is under
        # Calls generating now: their wake-up future -> (its timer, the call), so a new multiplier
        # can move each timer.
        self.sleeping: dict[asyncio.Future[None], tuple[asyncio.TimerHandle, Call]] = {}

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
        # Drawn on arrival so a call's time depends only on its arrival order under a seed; the
        # multiplier is applied when it starts (see handle).
        if self.scale > 0:
            ms = self.draw_ms(call.n) * self.work(call) if self.shaped else self.draw_ms(call.n)
            call.service_ms = (ms + call.extra_ms) * self.scale
        return call.service_ms > 0 or call._admitted is not None   # the watcher learns of the start here

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        call.set_phase(Phase.RUNNING)
        ms = call.service_ms = call.service_ms * self.multiplier
        if ms > 0:
            loop = call.loop
            fut: asyncio.Future[None] = loop.create_future()
            sleeping = self.sleeping
            sleeping[fut] = (loop.call_later(ms / 1000.0, _wake, fut), call)
            try:
                await fut
            finally:
                timer, _ = sleeping.pop(fut)
                timer.cancel()
            # A starved process wakes its timers late: kept apart so that the record can tell the
            # profile's own time from the time the mock lost to its CPU.
            late = (perf_counter() - call.t_running) * 1000.0 - call.service_ms
            if late > 0.0:
                call.late_ms = late
        return await proceed()

    def set_multiplier(self, multiplier: float) -> None:
        """Apply a new latency_multiplier to the calls generating now, and to every later one."""
        old, self.multiplier = self.multiplier, multiplier
        if old == multiplier or old == 0 or not self.sleeping:   # under a multiplier of 0 nothing sleeps
            return
        ratio = multiplier / old
        for fut, (timer, call) in list(self.sleeping.items()):
            loop = call.loop
            now = loop.time()
            left = max(0.0, timer.when() - now) * ratio
            timer.cancel()
            self.sleeping[fut] = (loop.call_later(left, _wake, fut), call)
            call.service_ms = (now - call.running_since + left) * 1000.0
