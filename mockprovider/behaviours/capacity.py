"""Capacity: parallel slots and a bounded queue (an M/G/c/K system), optionally per key too.

Past `slots` running calls, up to `queue` more wait in arrival order; the rest are
refused as overloaded at once. Queueing is what makes latency climb under a burst,
and refusal what a provider does when the queue is full.

A call whose client went away leaves its place at once (O(1)). A change of slots or queue
(the admin API, a reset) applies to the calls already waiting: they are admitted again in
arrival order under the new figures, so a larger pool starts the first ones now and a smaller
queue refuses the newest ones, as if they had arrived under it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from ..limits import MAX_KEY_POOLS
from ..settings import Settings
from .base import Behaviour, Call, Kind, Outcome, Phase, Proceed, tracked_key

UNBOUNDED = 1 << 62   # slots when limits are off: every waiting call runs


class SlotPool:
    __slots__ = ("slots", "queue", "running", "waiters")

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.running = 0
        # Waiting calls in arrival order; a future resolves True (a slot is yours) or False (refused).
        self.waiters: OrderedDict[asyncio.Future[bool], None] = OrderedDict()

    def enter(self, loop: asyncio.AbstractEventLoop) -> bool | asyncio.Future[bool]:
        """True: a slot is yours. A future: you are queued, await `wait(it)`. False: refused."""
        if self.running < self.slots and not self.waiters:
            self.running += 1
            return True
        if len(self.waiters) < self.queue:
            fut: asyncio.Future[bool] = loop.create_future()
            self.waiters[fut] = None
            return fut
        return False

    def leave(self) -> None:
        self.running -= 1
        if self.waiters:
            self._wake()

    def resize(self, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._wake()
        waiters = self.waiters
        while len(waiters) > queue:
            fut, _ = waiters.popitem()   # the newest: earlier arrivals had the places first
            if not fut.done():
                fut.set_result(False)

    def _wake(self) -> None:
        waiters = self.waiters
        while waiters and self.running < self.slots:
            fut, _ = waiters.popitem(last=False)
            # A cancelled call's future is done before its task runs again to take it out of the queue.
            if not fut.done():
                self.running += 1
                fut.set_result(True)

    async def wait(self, fut: asyncio.Future[bool]) -> bool:
        """Whether the queued call got a slot (False: refused by a smaller queue)."""
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                self.waiters.pop(fut, None)
            elif fut.result():
                self.leave()        # the slot was granted as the call was cancelled
            raise

    @property
    def queued(self) -> int:
        return len(self.waiters)

    @property
    def idle(self) -> bool:
        return self.running == 0 and not self.waiters


class Capacity(Behaviour):
    name = "capacity"

    def __init__(self, settings: Settings, max_key_pools: int = MAX_KEY_POOLS, pool: SlotPool | None = None) -> None:
        self.settings = settings
        self.max_key_pools = max_key_pools
        # `pool`: one counted across worker processes (shared.SharedSlotPool), with SlotPool's interface.
        self.pool = pool if pool is not None else SlotPool(settings.slots, settings.queue)
        self.key_pools: dict[str | int, SlotPool] = {}
        self.key_queued = 0   # calls waiting in any key's queue, kept so `queued` never scans the pools

    @property
    def running(self) -> int:
        return self.pool.running

    @property
    def queued(self) -> int:
        return self.pool.queued + self.key_queued

    def apply(self) -> None:
        """Make the pools match the settings now, the waiting calls included (see the module's doc)."""
        s = self.settings
        on = s.limits
        self.pool.resize(s.slots if on else UNBOUNDED, s.queue)
        for pool in list(self.key_pools.values()):
            pool.resize(s.per_key_slots if on and s.per_key_slots else UNBOUNDED, s.per_key_queue)

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        s = self.settings
        key_pool = None
        if s.per_key_slots:
            key = tracked_key(call.key)
            key_pool = self.key_pools.get(key)
            if key_pool is None:
                if len(self.key_pools) >= self.max_key_pools:
                    return Outcome(Kind.OVERLOADED, detail="key")
                key_pool = self.key_pools[key] = self.new_key_pool(key)
            got = key_pool.enter(call.loop)
            if got is not True:
                if got is not False:
                    call.set_phase(Phase.KEY_QUEUED)
                    self.key_queued += 1
                    try:
                        got = await key_pool.wait(got)
                    except asyncio.CancelledError:
                        self._forget_if_idle(key, key_pool)
                        raise
                    finally:
                        self.key_queued -= 1
                if not got:
                    self._forget_if_idle(key, key_pool)
                    return Outcome(Kind.OVERLOADED, detail="key")
        try:
            pool = self.pool
            got = pool.enter(call.loop)
            if got is not True:
                if got is False:
                    return Outcome(Kind.OVERLOADED)
                call.set_phase(Phase.QUEUED)
                if not await pool.wait(got):
                    return Outcome(Kind.OVERLOADED)
            try:
                return await proceed()
            finally:
                pool.leave()
        finally:
            if key_pool is not None:
                key_pool.leave()
                self._forget_if_idle(key, key_pool)

    def new_key_pool(self, key: str | int) -> SlotPool:
        """The pool of a key that has no call here yet (shared.SharedCapacity counts it across workers)."""
        s = self.settings
        return SlotPool(s.per_key_slots, s.per_key_queue)

    def _forget_if_idle(self, key: str | int, pool: SlotPool) -> None:
        if pool.idle and self.key_pools.get(key) is pool:
            del self.key_pools[key]
