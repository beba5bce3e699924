"""How the suite starts its own processes (Locust, the embedded mock, a [sut] gateway): each in a session of its
own, so that a stop reaches all of it (a gateway's workers too) and a Ctrl-C at the terminal reaches only the
suite, which then stops each in order; and each tied to the suite's end, so that a runner killed outright
(SIGKILL, the OOM killer, a CI job's timeout) leaves no gateway or mock running, holding a port.

The tie is Linux's PR_SET_PDEATHSIG: the child gets SIGTERM when the thread that started it ends. The suite
starts its children from its main thread, whose end is the process's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1            # <linux/prctl.h>


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").prctl
        return prctl
    except (OSError, AttributeError):
        return None


# Looked up once, here: after fork, before exec, the child should do as little as it can.
_PRCTL = _prctl()


def own_session(*, new_session: bool = True, ctrl_c: bool = True) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: in the child, before exec, a session of its own (`new_session`),
    Ctrl-C's default meaning back (`ctrl_c`: Locust and the gateways act on it, even where the suite was
    started with SIGINT ignored, as a background job is), and SIGTERM once the suite is gone."""
    parent = os.getpid()

    def setup() -> None:
        if new_session:
            os.setsid()
        if ctrl_c:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:      # the suite ended before the tie was made
                os.kill(os.getpid(), signal.SIGTERM)

    return setup


__all__ = ["own_session"]
