"""A test-only stall of the load generator, to try the gate's attribution on a real run.

With `LOADTEST_TEST_GENERATOR_STALL="<block ms>/<period ms>"` in its environment, every Locust
process that runs users blocks its own event loop for <block> ms in every <period> ms of a run, as a
saturated generator does: a real, unpatched sleep on gevent's hub, so every answer that arrives
meanwhile is read late, the client-side latency grows by the wait, and the generator's own health
sampler sees the loop stall. The simulated providers, in their own process, answer as fast as ever:
the provider side holds while the client side breaches (tests/test_attribution_runs.py).

For the suite's own tests only: it makes every run it touches prove nothing. Unset, it does nothing.
"""

from __future__ import annotations

import logging
import os
import re

import gevent
import gevent.monkey

ENV = "LOADTEST_TEST_GENERATOR_STALL"
log = logging.getLogger("loadtest")
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def parse(text: str) -> tuple[float, float]:
    """ "800/1000" -> (0.8, 1.0): seconds blocked, in every period of seconds."""
    m = _SPEC.match(text)
    if not m:
        raise ValueError(f"{ENV} must be '<block ms>/<period ms>', e.g. '800/1000', got {text!r}")
    block, period = float(m.group(1)) / 1000.0, float(m.group(2)) / 1000.0
    if not 0 < block < period:
        raise ValueError(f"{ENV}: the block must be longer than 0 ms and shorter than the period, got {text!r}")
    return block, period


def _stall(block_s: float, period_s: float) -> None:
    blocking_sleep = gevent.monkey.get_original("time", "sleep")
    while True:
        gevent.sleep(period_s - block_s)
        blocking_sleep(block_s)


def spawn() -> gevent.Greenlet | None:
    """At a test start on a process that runs users: the stalling greenlet (killed with the run's others)."""
    text = os.environ.get(ENV)
    if not text:
        return None
    try:
        block_s, period_s = parse(text)
    except ValueError as exc:
        log.error("%s: not stalling", exc)
        return None
    log.warning("%s=%s: this generator blocks its event loop for %.0f ms every %.0f ms (a test of the suite "
                "itself; the run proves nothing)", ENV, text, block_s * 1000, period_s * 1000)
    return gevent.spawn(_stall, block_s, period_s)


__all__ = ["ENV", "parse", "spawn"]
