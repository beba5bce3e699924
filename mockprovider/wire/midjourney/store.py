"""The tasks the simulated proxy holds: bounded by count and by bytes, pruned on time, O(1) per submit.

Finished tasks sit in a queue in the order they finished. With one retention time for all, that is
also the order they expire in, so pruning looks only at the head: each task is looked at once when
it goes, plus one look per call at a head that stays. A submit never walks the store; the number
of unfinished tasks is a counter.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...behaviours import Call, Outcome, Phase

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...record import JobEntry

# What a task costs beyond its text (measured with tracemalloc, rounded up): the Job and the store's
# slots for it, about 400 bytes; while it runs, its Call, generation task, coroutines and timers too.
TASK_OVERHEAD_BYTES = 512
RUNNING_TASK_BYTES = 2560


def text_bytes(*texts: str | None) -> int:
    return sum(sys.getsizeof(t) for t in texts if t is not None)


class JobCall(Call):
    """A call that tells its task when it changes phase (queued, running), so callbacks follow it."""

    on_phase: Callable[[Job, Phase], None] | None = None
    job: Job | None = None

    def set_phase(self, phase: Phase) -> None:
        super().set_phase(phase)
        job, listener = self.job, self.on_phase
        if job is not None and listener is not None:
            listener(job, phase)


@dataclass(slots=True, eq=False)
class Job:
    id: str
    owner: str                  # the mj-api-secret (account) that submitted it
    action: str                 # IMAGINE, UPSCALE, VARIATION, ...
    prompt: str
    model: str
    grid: bool                  # four images in one 2x2 grid (IMAGINE, VARIATION, ...), or one image
    description: str            # "" for an IMAGINE: its "/imagine <prompt>" is not stored twice
    state: str | None
    hook: str | None            # notifyHook
    submit_ms: int
    message_hash: str           # the id in this task's buttons' customIds
    image_url: str
    cost_usd: float
    size: int = 0               # bytes charged to the store once it has finished
    call: JobCall | None = None             # until it finishes
    start_ms: int | None = None
    finish_ms: int | None = None
    finished_at: float = 0.0                # loop clock
    outcome: Outcome | None = None
    children: dict[str, str] | None = None  # upscale customId -> the task it made (code 21)
    # callbacks
    notified: str = ""                      # the last status:progress sent (or queued)
    notify_state: int = 0                   # 0 idle, 1 queued, 2 posting
    notify_pending: list[tuple[str, bytes]] | None = None   # (status, body) waiting, oldest first
    progress_timer: asyncio.TimerHandle | None = None
    entry: JobEntry | None = None           # its one entry in the provider-side record, from submit to end


class JobStore:
    def __init__(self, max_tasks: int, max_bytes: int, retention_s: float, worker: int = 0, workers: int = 1) -> None:
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self.jobs: dict[str, Job] = {}
        self.finished: deque[Job] = deque()   # in the order they finished, so in the order they expire
        self.live = 0                         # tasks not finished
        self.bytes = 0
        self.reserved = self.reserved_bytes = 0   # submits being admitted (awaiting the capacity model)
        self.expired = 0                      # pruned after their retention time
        self.evicted = 0                      # pruned early to make room
        self.visits = 0                       # tasks the maintenance looked at (the O(1) proof)
        self._serial = itertools.count()
        # With `--workers N`, the three digits of worker w are w modulo N: no two workers make one id.
        self._worker, self._workers, self._per_ms = worker, workers, 1000 // workers

    def new_id(self) -> str:
        """The proxy's shape: the time in ms and three digits (sixteen digits in all)."""
        while True:
            digits = next(self._serial) % self._per_ms * self._workers + self._worker
            task_id = f"{int(time.time() * 1000)}{digits:03d}"
            if task_id not in self.jobs:
                return task_id

    def prune(self, now: float) -> None:
        finished, limit = self.finished, now - self.retention_s
        while finished:
            self.visits += 1
            if finished[0].finished_at >= limit:   # as get(): gone once older than the retention
                return
            self._drop(finished.popleft())
            self.expired += 1

    def make_room(self, size: int, now: float) -> bool:
        """Whether a task of `size` bytes fits, after pruning and, if need be, dropping the oldest finished."""
        self.prune(now)
        finished = self.finished
        while not self._fits(size) and finished:
            self.visits += 1
            self._drop(finished.popleft())
            self.evicted += 1
        return self._fits(size)

    def _fits(self, size: int) -> bool:
        return (len(self.jobs) + self.reserved < self.max_tasks
                and self.bytes + self.reserved_bytes + size <= self.max_bytes)

    def reserve(self, size: int) -> None:
        self.reserved += 1
        self.reserved_bytes += size

    def unreserve(self, size: int) -> None:
        self.reserved -= 1
        self.reserved_bytes -= size

    def add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self.live += 1
        self.bytes += job.size + RUNNING_TASK_BYTES

    def finish(self, job: Job, now: float) -> None:
        job.finished_at = now
        self.live -= 1
        self.bytes -= RUNNING_TASK_BYTES
        self.finished.append(job)

    def get(self, task_id: str, owner: str, now: float) -> Job | None:
        """The account's own task; another account's is as unknown as one that never was."""
        job = self.jobs.get(task_id)
        if job is None or job.owner != owner:
            return None
        if job.outcome is not None and now - job.finished_at > self.retention_s:
            return None   # expired; pruned with the next submit
        return job

    def _drop(self, job: Job) -> None:
        del self.jobs[job.id]
        self.bytes -= job.size
