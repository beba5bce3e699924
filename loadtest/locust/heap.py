"""Hands the heap's free pages back to the system, so a long run's RSS follows its live memory.

glibc's malloc keeps the pages of freed blocks mapped and reuses them; a burst that needed a few
megabytes more (a report to a master, a decoded provider record, a swell of in-flight requests)
leaves RSS at its high-water mark for the rest of a 4-hour run. ``malloc_trim(0)`` returns every
free page inside the heap (madvise), not only its top, in about a millisecond. Elsewhere (musl,
macOS) there is no such call, and ``trim()`` does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

__all__ = ["trim", "TRIM_EVERY_S"]

TRIM_EVERY_S = 10.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim() -> bool:
    """Give the heap's free pages back; True if any were."""
    return bool(_TRIM(0)) if _TRIM is not None else False
