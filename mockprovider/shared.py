"""State the worker processes of `--workers N` share, so limits hold across them.

One anonymous shared mapping (mmap MAP_SHARED, made before the workers fork, so nothing is left
behind in /dev/shm if a process is killed) and one process-shared lock (multiprocessing.Lock, a
POSIX semaphore) guard:

- each worker's internal port (0 until it listens), for the admin fan-out and the merged answers;
- per provider, the running and waiting counts of its slot pool (SharedSlotPool), and how many
  calls wait in any key's queue;
- per (provider, key) with calls running or waiting, the key's running and waiting counts, in one
  open-addressed table (SharedKeyPool: `per_key_slots`, `per_key_queue`, Midjourney's accounts);
- the token buckets of every provider's rate limit, in one open-addressed table (SharedBuckets).

Every update is a few struct reads and writes under the lock (microseconds), so a 429 or an
overload starts at the configured figure whichever worker a request reaches: there is no
partitioning and no tolerance beyond what the clock does between two requests. A queued call
waits in its own worker; a worker that frees a slot while calls wait anywhere tells every other
worker through its wake pipes (one byte for a provider's pool, the key's 8-byte digest for a key's
pool), and each worker then admits its own oldest waiters while slots are free. Queued calls
therefore start in arrival order within a worker, and across workers in the order the workers
wake (the one approximation of `queue` and `per_key_queue`; their bounds hold exactly).

With one worker none of this exists: the behaviours keep their in-process tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import multiprocessing
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable

from xxhash import xxh3_64_intdigest

from .behaviours.base import Call, Kind, Outcome, Proceed, RateInfo
from .behaviours.capacity import Capacity, SlotPool
from .behaviours.ratelimit import RateLimit
from .settings import Settings

_PORT = struct.Struct("<q")
_POOL = struct.Struct("<qqqq")         # running, waiting, rate-limit epoch (SharedBuckets), waiting for a key
_EPOCH_AT, _KEY_WAITING_AT = 16, 24    # offsets in a _POOL
_KEY = struct.Struct("<Qqq")           # (provider, key) digest (0: free), running, waiting
KEY_ENTRIES = 1 << 18                  # keys busy at once, over every provider (6 MB of address space)
KEY_PROBES = 16                        # slots looked at per key; all busy: the call is refused (detail "key")
_BUCKET = struct.Struct("<Qddd")       # key hash (0: empty), tokens, last refill, time it is full again
BUCKET_ENTRIES = 1 << 20               # table slots (32 MB of address space; pages are touched as used)
PROBES = 8                             # slots looked at per key; past them the stalest entry is reused
MAX_WORKERS = 256
_U64 = (1 << 64) - 1
MAX_PROVIDERS = 256


class SharedState:
    """Made once by the supervisor, inherited by every worker it forks."""

    def __init__(self, workers: int, providers: list[str]) -> None:
        if not 1 <= workers <= MAX_WORKERS or len(providers) > MAX_PROVIDERS:
            raise ValueError(f"at most {MAX_WORKERS} workers and {MAX_PROVIDERS} providers")
        self.workers = workers
        self.provider_index = {name: i for i, name in enumerate(sorted(providers))}
        self._pools_at = MAX_WORKERS * _PORT.size
        self._rescan_at = self._pools_at + MAX_PROVIDERS * _POOL.size   # a byte per worker (see wake_key)
        self._keys_at = self._rescan_at + MAX_WORKERS
        self._buckets_at = self._keys_at + KEY_ENTRIES * _KEY.size
        self.buf = mmap.mmap(-1, self._buckets_at + BUCKET_ENTRIES * _BUCKET.size,
                             flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        self.lock = multiprocessing.get_context("fork").Lock()
        self._wake_pipes = [os.pipe() for _ in range(workers)]
        self._key_pipes = [os.pipe() for _ in range(workers)]   # 8-byte key digests: written atomically
        for r, w in self._wake_pipes + self._key_pipes:
            os.set_blocking(r, False)
            os.set_blocking(w, False)
        self.worker = -1   # this process's index, once it is a worker
        self._on_wake: list[Callable[[], None]] = []
        # This worker's key pools with calls waiting here, by digest: what a key's wake-up reaches.
        self.key_waiters: dict[int, SharedKeyPool] = {}

    # --- the workers' internal ports ---

    def set_port(self, worker: int, port: int) -> None:
        _PORT.pack_into(self.buf, worker * _PORT.size, port)

    def ports(self) -> list[int]:
        return [_PORT.unpack_from(self.buf, i * _PORT.size)[0] for i in range(self.workers)]

    # --- waking the workers when a slot frees ---

    def become_worker(self, worker: int) -> None:
        """In a worker's own process, just after the fork: which worker this is."""
        self.worker = worker
        for pipes in (self._wake_pipes, self._key_pipes):
            for i, (r, _) in enumerate(pipes):
                if i != worker:
                    os.close(r)

    def listen_for_wakes(self, loop: asyncio.AbstractEventLoop) -> None:
        read_fd = self._wake_pipes[self.worker][0]

        def woken() -> None:
            with contextlib.suppress(BlockingIOError):
                os.read(read_fd, 4096)
            for wake in self._on_wake:
                wake()

        loop.add_reader(read_fd, woken)
        key_fd = self._key_pipes[self.worker][0]
        rescan_at = self._rescan_at + self.worker

        def key_woken() -> None:
            digests = b""
            with contextlib.suppress(BlockingIOError):
                while True:
                    chunk = os.read(key_fd, 8 * 4096)
                    if not chunk:
                        break
                    digests += chunk
            # Only after the pipe is empty: a wake that found it full set the flag before it gave up.
            rescan = self.buf[rescan_at]
            if rescan:
                self.buf[rescan_at] = 0
                pools = list(self.key_waiters.values())
            else:
                pools = [p for d in struct.unpack(f"<{len(digests) // 8}Q", digests[:len(digests) // 8 * 8])
                         if (p := self.key_waiters.get(d)) is not None]
            for pool in pools:
                pool._wake()

        loop.add_reader(key_fd, key_woken)

    def on_wake(self, callback: Callable[[], None]) -> None:
        self._on_wake.append(callback)

    def wake_others(self) -> None:
        for i, (_, w) in enumerate(self._wake_pipes):
            if i != self.worker:
                # A full pipe already holds a wake-up the reader has not seen: nothing is lost.
                with contextlib.suppress(BlockingIOError, BrokenPipeError):
                    os.write(w, b"!")

    def wake_key(self, digest: int) -> None:
        """Tell every other worker that a slot of this key is free (its waiters may start)."""
        record = struct.pack("<Q", digest)
        for i, (_, w) in enumerate(self._key_pipes):
            if i == self.worker:
                continue
            try:
                os.write(w, record)
            except BlockingIOError:
                # The pipe is full (thousands of wakes unread): flag the worker to look at every key it
                # has waiting, then write once more. If that fails too, the pipe is still full and its
                # reader, which checks the flag after emptying it, has not run yet: nothing is lost.
                self.buf[self._rescan_at + i] = 1
                with contextlib.suppress(BlockingIOError, BrokenPipeError):
                    os.write(w, record)
            except BrokenPipeError:
                pass

    def pool_offset(self, provider: str) -> int:
        return self._pools_at + self.provider_index[provider] * _POOL.size

    def buckets(self, provider: str) -> SharedBuckets:
        return SharedBuckets(self, self.provider_index[provider])

    def key_waiting(self, provider: str) -> int:
        """Calls waiting in any key's queue of this provider, in every worker."""
        return int(_PORT.unpack_from(self.buf, self.pool_offset(provider) + _KEY_WAITING_AT)[0])


class SharedBuckets:
    """One provider's token buckets in the shared table, keyed by a 64-bit digest of provider, reset
    epoch and key.

    An entry whose bucket has refilled carries no state (a new bucket starts full too), so it is free
    for any key. When all PROBES slots of a key are taken by buckets still refilling, the one used
    longest ago is reused: that key starts full when it comes back, the same approximation as the
    in-process table's cap (limits.MAX_RATE_LIMIT_KEYS), reached only with about a million keys busy.
    A reset bumps the provider's epoch: every key then hashes to a fresh, full bucket, and the old
    entries are reused as they refill or go stale.
    """

    __slots__ = ("buf", "lock", "base", "salt", "epoch_at")

    def __init__(self, shared: SharedState, provider_index: int) -> None:
        self.buf = shared.buf
        self.lock = shared.lock
        self.base = shared._buckets_at
        self.salt = provider_index
        self.epoch_at = shared._pools_at + provider_index * _POOL.size + _EPOCH_AT

    def take(self, key: str, rate: float, cap: float, cost: float) -> tuple[bool, float]:
        """(allowed, tokens left) for one request spending `cost` tokens now."""
        buf, base, unpack, size = self.buf, self.base, _BUCKET.unpack_from, _BUCKET.size
        mask = BUCKET_ENTRIES - 1
        with self.lock:
            epoch = _PORT.unpack_from(buf, self.epoch_at)[0]
            seed = (epoch << 16 | self.salt) & _U64
            digest = xxh3_64_intdigest(key.encode("utf-8", "surrogateescape"), seed=seed) | 1
            now = time.monotonic()   # one clock for every process (CLOCK_MONOTONIC), read under the lock
            found = free = stalest = -1
            stalest_last = float("inf")
            tokens = cap
            for j in range(PROBES):
                at = base + ((digest + j) & mask) * size
                h, t, last, full_at = unpack(buf, at)
                if h == digest:
                    found = at
                    tokens = min(cap, t + (now - last) * rate)
                    break
                if free < 0 and (h == 0 or now >= full_at):
                    free = at
                if last < stalest_last:
                    stalest, stalest_last = at, last
            at = found if found >= 0 else (free if free >= 0 else stalest)
            allowed = tokens >= min(cost, cap)
            if allowed:
                tokens -= cost
            _BUCKET.pack_into(buf, at, digest, tokens, now, now + (cap - tokens) / rate)
        return allowed, tokens

    def reset(self) -> None:
        """Every key of this provider starts again with a full bucket."""
        with self.lock:
            epoch = _PORT.unpack_from(self.buf, self.epoch_at)[0]
            _PORT.pack_into(self.buf, self.epoch_at, epoch + 1)


Waiters = OrderedDict[asyncio.Future[bool], None]


def _trim(waiters: Waiters, waiting: int, queue: int) -> tuple[int, list[asyncio.Future[bool]]]:
    """Under the lock, after a resize: this worker's newest waiters beyond `queue` (the other workers trim
    their own); the shared waiting count that leaves, and the calls refused."""
    refused: list[asyncio.Future[bool]] = []
    while waiters and waiting > queue:
        fut, _ = waiters.popitem()
        waiting -= 1
        refused.append(fut)
    return waiting, refused


def _grant(waiters: Waiters, running: int, waiting: int,
           slots: int) -> tuple[int, int, list[asyncio.Future[bool]], int]:
    """Under the lock: this worker's oldest waiters into the free slots; the shared running and waiting counts
    that leaves, the calls granted, and how many left the queue (granted, or cancelled while they waited)."""
    granted: list[asyncio.Future[bool]] = []
    left = 0
    while waiters and running < slots:
        fut, _ = waiters.popitem(last=False)
        waiting -= 1
        left += 1
        # A cancelled call's future is done before its task runs again to leave the queue.
        if not fut.done():
            running += 1
            granted.append(fut)
    return running, waiting, granted, left


def _answer(futures: list[asyncio.Future[bool]], result: bool) -> None:
    """Outside the lock: tell the waiting calls (True: a slot is theirs; False: refused)."""
    for fut in futures:
        if not fut.done():
            fut.set_result(result)


class SharedSlotPool(SlotPool):
    """A provider's slot pool (behaviours.capacity.SlotPool's interface) counted across the workers.

    The shared figures are `running` and `waiting` (calls queued in any worker); the futures of the
    calls waiting here stay here. Invariant: `waiting` is the sum of every worker's `waiters`.
    """

    __slots__ = ("buf", "lock", "at", "shared")

    def __init__(self, shared: SharedState, provider: str, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.waiters: OrderedDict[asyncio.Future[bool], None] = OrderedDict()
        self.shared = shared
        self.buf = shared.buf
        self.lock = shared.lock
        self.at = shared.pool_offset(provider)
        shared.on_wake(self._wake)

    def _counts(self) -> tuple[int, int]:
        running, waiting, _, _ = _POOL.unpack_from(self.buf, self.at)
        return running, waiting

    def _store(self, running: int, waiting: int) -> None:
        struct.pack_into("<qq", self.buf, self.at, running, waiting)

    @property   # read from the shared counts, which only enter/leave/_wake write
    def running(self) -> int:  # type: ignore[override]
        return self._counts()[0]

    @property
    def queued(self) -> int:
        return self._counts()[1]

    def enter(self, loop: asyncio.AbstractEventLoop) -> bool | asyncio.Future[bool]:
        with self.lock:
            running, waiting = self._counts()
            if running < self.slots and not waiting:
                self._store(running + 1, waiting)
                return True
            if waiting >= self.queue:
                return False
            self._store(running, waiting + 1)
        fut: asyncio.Future[bool] = loop.create_future()
        self.waiters[fut] = None
        return fut

    def leave(self) -> None:
        with self.lock:
            running, waiting = self._counts()
            self._store(running - 1, waiting)
        if waiting:
            self.shared.wake_others()
            self._wake()

    def resize(self, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._wake()
        with self.lock:
            running, waiting = self._counts()
            waiting, refused = _trim(self.waiters, waiting, queue)
            self._store(running, waiting)
        _answer(refused, False)

    def _wake(self) -> None:
        if not self.waiters:
            return
        with self.lock:
            running, waiting = self._counts()
            running, waiting, granted, _ = _grant(self.waiters, running, waiting, self.slots)
            self._store(running, waiting)
        _answer(granted, True)

    async def wait(self, fut: asyncio.Future[bool]) -> bool:
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                if self.waiters.pop(fut, _MISSING) is not _MISSING:
                    with self.lock:
                        running, waiting = self._counts()
                        self._store(running, waiting - 1)
            elif fut.result():
                self.leave()        # the slot was granted as the call was cancelled
            raise

    @property
    def idle(self) -> bool:
        running, waiting = self._counts()
        return running == 0 and not waiting


_MISSING = object()


class SharedKeyPool(SlotPool):
    """One key's pool under `per_key_slots` / `per_key_queue` (SlotPool's interface), counted across
    the workers in the shared key table.

    The table entry holds the key's running and waiting calls in every worker; `running` and the
    futures in `waiters` are this worker's own, so `idle` (nothing of the key here) is what lets
    Capacity forget the pool. The entry is found (or claimed) when a call enters while the key is
    idle here, and stays put while this worker counts calls in it: an entry is freed, for any key,
    only when its running and waiting counts are both 0. Invariant: an entry's `waiting` is the sum
    of every worker's `waiters` of that key, and the provider's key-waiting count their sum.
    """

    __slots__ = ("shared", "buf", "lock", "digest", "at", "key_waiting_at")

    def __init__(self, shared: SharedState, provider_index: int, key: str | int, slots: int, queue: int) -> None:
        self.slots = slots
        self.queue = queue
        self.running = 0
        self.waiters: OrderedDict[asyncio.Future[bool], None] = OrderedDict()
        self.shared = shared
        self.buf = shared.buf
        self.lock = shared.lock
        raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key.to_bytes(8, "little")
        # Seeded by the provider (and 1 kept off it as a digest never 0), so one table serves them all.
        self.digest = xxh3_64_intdigest(raw, seed=provider_index + 1) | 1
        self.at = -1
        self.key_waiting_at = shared._pools_at + provider_index * _POOL.size + _KEY_WAITING_AT

    def _find(self) -> int:
        """Under the lock: the key's entry, or a free one now claimed for it; -1 if all KEY_PROBES are
        other keys' busy entries."""
        buf, digest, base, size = self.buf, self.digest, self.shared._keys_at, _KEY.size
        free = -1
        for j in range(KEY_PROBES):
            at = base + ((digest + j) & (KEY_ENTRIES - 1)) * size
            h, running, waiting = _KEY.unpack_from(buf, at)
            if h == digest:
                return at
            if free < 0 and (h == 0 or (running == 0 and waiting == 0)):
                free = at
        if free >= 0:
            _KEY.pack_into(buf, free, digest, 0, 0)
        return free

    def _store(self, running: int, waiting: int) -> None:
        """Under the lock: the entry's new counts; an entry with neither is free for any key."""
        _KEY.pack_into(self.buf, self.at, self.digest if running or waiting else 0, running, waiting)

    def _key_waiting(self, change: int) -> None:
        count = _PORT.unpack_from(self.buf, self.key_waiting_at)[0]
        _PORT.pack_into(self.buf, self.key_waiting_at, count + change)

    @property
    def queued(self) -> int:
        """Calls waiting for this key in every worker."""
        if self.at < 0 or not (self.running or self.waiters):
            return len(self.waiters)
        h, _, waiting = _KEY.unpack_from(self.buf, self.at)
        return int(waiting) if h == self.digest else len(self.waiters)

    def enter(self, loop: asyncio.AbstractEventLoop) -> bool | asyncio.Future[bool]:
        with self.lock:
            if not (self.running or self.waiters):
                self.at = self._find()
                if self.at < 0:
                    return False
            _, running, waiting = _KEY.unpack_from(self.buf, self.at)
            if running < self.slots and not waiting:
                self._store(running + 1, waiting)
                self.running += 1
                return True
            if waiting >= self.queue:
                return False   # running > 0 here (slots >= 1), so the entry stays the key's
            self._store(running, waiting + 1)
            self._key_waiting(1)
        fut: asyncio.Future[bool] = loop.create_future()
        self.waiters[fut] = None
        self.shared.key_waiters[self.digest] = self
        return fut

    def leave(self) -> None:
        self.running -= 1
        with self.lock:
            _, running, waiting = _KEY.unpack_from(self.buf, self.at)
            self._store(running - 1, waiting)
        if waiting:
            self.shared.wake_key(self.digest)
            self._wake()

    def resize(self, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._wake()
        if not self.waiters:
            return
        with self.lock:
            _, running, waiting = _KEY.unpack_from(self.buf, self.at)
            waiting, refused = _trim(self.waiters, waiting, queue)
            self._store(running, waiting)
            self._key_waiting(-len(refused))
        self._unlist_if_none_wait()
        _answer(refused, False)

    def _wake(self) -> None:
        if not self.waiters:
            return
        with self.lock:
            _, running, waiting = _KEY.unpack_from(self.buf, self.at)
            running, waiting, granted, left = _grant(self.waiters, running, waiting, self.slots)
            self._store(running, waiting)
            self._key_waiting(-left)
        self.running += len(granted)
        self._unlist_if_none_wait()
        _answer(granted, True)

    def _unlist_if_none_wait(self) -> None:
        if not self.waiters and self.shared.key_waiters.get(self.digest) is self:
            del self.shared.key_waiters[self.digest]

    async def wait(self, fut: asyncio.Future[bool]) -> bool:
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                if self.waiters.pop(fut, _MISSING) is not _MISSING:
                    with self.lock:
                        _, running, waiting = _KEY.unpack_from(self.buf, self.at)
                        self._store(running, waiting - 1)
                        self._key_waiting(-1)
                    self._unlist_if_none_wait()
            elif fut.result():
                self.leave()        # the slot was granted as the call was cancelled
            raise


class SharedCapacity(Capacity):
    """Capacity with its per-key pools counted across the workers (SharedKeyPool) and the provider's
    pool a SharedSlotPool; `queued` counts the calls waiting in every worker."""

    def __init__(self, settings: Settings, shared: SharedState, provider: str) -> None:
        super().__init__(settings, pool=SharedSlotPool(shared, provider, settings.slots, settings.queue))
        self.shared = shared
        self.provider = provider
        self.provider_index = shared.provider_index[provider]

    @property
    def queued(self) -> int:
        return self.pool.queued + self.shared.key_waiting(self.provider)

    def new_key_pool(self, key: str | int) -> SlotPool:
        s = self.settings
        return SharedKeyPool(self.shared, self.provider_index, key, s.per_key_slots, s.per_key_queue)


class SharedRateLimit(RateLimit):
    """The rate limit with its buckets in the shared table: one budget per key across the workers."""

    def __init__(self, settings: Settings, counts: str = "requests", *, buckets: SharedBuckets) -> None:
        super().__init__(settings, counts)
        self.shared_buckets = buckets

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        s = self.settings
        rate = s.requests_per_minute / 60.0
        cap = float(s.burst)
        cost = float(call.n) if self.per_image else 1.0
        allowed, tokens = self.shared_buckets.take(call.key, rate, cap, cost)
        call.rate = RateInfo(limit=int(round(s.requests_per_minute)), remaining=max(0, int(tokens)),
                             reset_s=(cap - tokens) / rate)
        if not allowed:
            return Outcome(Kind.RATE_LIMITED, retry_after_s=(min(cost, cap) - tokens) / rate)
        return await proceed()

    def reset(self) -> None:
        self.shared_buckets.reset()
