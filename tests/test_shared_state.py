"""The mock workers' shared state, in one process: what a key's wake-up does when the pipe that carries it
is full (thousands of wakes unread), the one path a real run on this machine never reaches."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct

from mockprovider.shared import SharedState


class WaitingPool:
    """Stands for a worker's SharedKeyPool with calls waiting: records that it was woken."""

    def __init__(self, digest: int, woken: list[int]) -> None:
        self.digest, self.woken = digest, woken

    def _wake(self) -> None:
        self.woken.append(self.digest)


def test_a_full_key_wake_pipe_falls_back_to_waking_every_key_the_worker_has_waiting() -> None:
    state = SharedState(2, ["relay"])
    loop = asyncio.new_event_loop()
    try:
        state.worker = 0                       # worker 0 frees slots; worker 1 has the waiters
        pipe_w = state._key_pipes[1][1]
        written = 0
        with contextlib.suppress(BlockingIOError):
            while written < 1_000_000:         # a pipe holds 64 KiB by default: 8,192 wakes
                os.write(pipe_w, struct.pack("<Q", 1))
                written += 1
        assert 0 < written < 1_000_000
        state.wake_key(42)                     # no room for its digest: the worker is flagged instead
        assert state.buf[state._rescan_at + 1] == 1

        woken: list[int] = []
        state.worker = 1
        state.key_waiters = {42: WaitingPool(42, woken), 7: WaitingPool(7, woken)}  # type: ignore[dict-item]
        state.listen_for_wakes(loop)
        for _ in range(200):                   # bounded: at most 2 s
            loop.run_until_complete(asyncio.sleep(0.01))
            if woken:
                break
        # The flag made it wake every key it has waiting (42's digest never reached the pipe).
        assert sorted(woken) == [7, 42]
        assert state.buf[state._rescan_at + 1] == 0

        # With the pipe emptied, a wake names its key again, and only that key is woken.
        woken.clear()
        state.worker = 0
        state.wake_key(7)
        state.worker = 1
        for _ in range(200):
            loop.run_until_complete(asyncio.sleep(0.01))
            if woken:
                break
        assert woken == [7]
    finally:
        for fd in (state._key_pipes[1][0], state._wake_pipes[1][0]):
            with contextlib.suppress(ValueError, KeyError):
                loop.remove_reader(fd)
        loop.close()
        for r, w in state._wake_pipes + state._key_pipes:
            os.close(r)
            os.close(w)
