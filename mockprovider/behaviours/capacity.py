"""Capacity: parallel slots and a bounded queue (an M/G/c/K system), optionally per key too.

Past `slots` running calls, up to `queue` more wait in arrival order; the rest are
refused as overloaded at once. Queueing is what makes latency climb under a burst,
and refusal what a provider does when the queue is full.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..settings import Settings
from .base import Behaviour, Call, Kind, Outcome, Phase, Proceed


class SlotPool:
    __slots__ = ("slots", "queue", "running", "waiters")

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.running = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def enter(self, loop: asyncio.AbstractEventLoop) -> bool | asyncio.Future[None]:
        """True: a slot is yours. A future: you are queued, await it. False: refused."""
        if self.running < self.slots and not self.waiters:
            self.running += 1
            return True
        if len(self.waiters) < self.queue:
            fut = loop.create_future()
            self.waiters.append(fut)
            return fut
        return False

    def leave(self) -> None:
        self.running -= 1
        self._wake()

    def resize(self, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._wake()

    def _wake(self) -> None:
        while self.waiters and self.running < self.slots:
            fut = self.waiters.popleft()
            if not fut.done():
                self.running += 1
                fut.set_result(None)

    async def wait(self, fut: asyncio.Future[None]) -> None:
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave()        # the slot was granted as we were cancelled
            else:
                try:
                    self.waiters.remove(fut)
                except ValueError:
                    pass
            raise

    @property
    def idle(self) -> bool:
        return self.running == 0 and not self.waiters


class Capacity(Behaviour):
    name = "capacity"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = SlotPool(settings.slots, settings.queue)
        self.key_pools: dict[str, SlotPool] = {}

    @property
    def running(self) -> int:
        return self.pool.running

    @property
    def queued(self) -> int:
        return len(self.pool.waiters) + sum(len(p.waiters) for p in self.key_pools.values())

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        s = self.settings
        if self.pool.slots != s.slots or self.pool.queue != s.queue:
            self.pool.resize(s.slots, s.queue)
        key_pool = None
        if s.per_key_slots:
            key_pool = self.key_pools.get(call.key)
            if key_pool is None:
                key_pool = self.key_pools[call.key] = SlotPool(s.per_key_slots, s.per_key_queue)
            got = key_pool.enter(call.loop)
            if got is False:
                self._forget_if_idle(call.key, key_pool)
                return Outcome(Kind.OVERLOADED, detail="key")
            if got is not True:
                call.set_phase(Phase.KEY_QUEUED)
                try:
                    await key_pool.wait(got)
                except asyncio.CancelledError:
                    self._forget_if_idle(call.key, key_pool)
                    raise
        try:
            got = self.pool.enter(call.loop)
            if got is False:
                return Outcome(Kind.OVERLOADED)
            if got is not True:
                call.set_phase(Phase.QUEUED)
                await self.pool.wait(got)
            try:
                return await proceed()
            finally:
                self.pool.leave()
        finally:
            if key_pool is not None:
                key_pool.leave()
                self._forget_if_idle(call.key, key_pool)

    def _forget_if_idle(self, key: str, pool: SlotPool) -> None:
        if pool.idle and self.key_pools.get(key) is pool:
            del self.key_pools[key]
