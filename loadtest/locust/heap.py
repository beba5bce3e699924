"""Hands the heap's free pages back to the system, so a long run's RSS follows its live memory.

glibc's malloc keeps the pages of freed blocks mapped and reuses them; a burst that needed a few
megabytes more (a report to a master, a decoded provider record, a swell of in-flight requests)
leaves RSS at its high-water mark for the rest of a 4-hour run. ``malloc_trim(0)`` returns every
free page inside the heap (madvise), not only its top, in about a millisecond. Elsewhere (musl,
macOS) there is no such call, and ``trim()`` does nothing.

``fix_mmap_threshold()`` (the Locust process calls it at init) keeps blocks of 128 KB and more out
of the heap altogether: each gets its own mapping, handed back the moment it is freed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["MMAP_THRESHOLD", "TRIM_EVERY_S", "fix_mmap_threshold", "trim"]

TRIM_EVERY_S = 10.0
# glibc's starting threshold. It then raises it to each larger block freed (up to 32 MB), so once the
# first of the recorder's 184 KB histogram arrays (a live percentile, a scrape's window) is freed, every
# later one is carved from the heap, where the small long-lived blocks made meanwhile pin its pages.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3     # mallopt's parameter (malloc.h); setting it also stops the raising


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Give every block of `size` bytes or more its own mapping, unmapped when it is freed, for the rest of
    the process; True if the allocator took it."""
    fn = _mallopt()
    return bool(fn(_M_MMAP_THRESHOLD, size)) if fn is not None else False


def trim() -> bool:
    """Give the heap's free pages back; True if any were."""
    return bool(_TRIM(0)) if _TRIM is not None else False
