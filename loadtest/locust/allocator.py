"""The Locust process's C allocator, set for a long run.

glibc raises its mmap threshold to the largest block freed so far. Each read of the providers' record
for the live gate decodes its exact histograms (about 190 KB of counts each) and frees them a moment
later; after the first, glibc serves such blocks from the heap, between the run's long-lived objects, and
the heap fragments: RSS that climbs with time and falls back unpredictably, whatever the requests.
Fixed at 128 KB (glibc's own default), those blocks stay mapped on their own and go back to the system
when freed. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3          # glibc's <malloc.h>
THRESHOLD_BYTES = 128 * 1024


def fix_mmap_threshold() -> bool:
    """True if glibc took the fixed threshold."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))


__all__ = ["fix_mmap_threshold"]
