"""Stopping an open-model run once its target is over-saturated (`[gate] stop_on_saturation = true`).

Runs on the master (or the only process) beside the run's other watchers: once a second it hands the
recorder's recent timeline to `loadtest.saturation.SaturationCheck`; when that finds the target past
its capacity, the run is aborted with the finding as its reason, so a capacity step that breaks does
not run to its end. Checks start after the first stage (a warm-up) when there are several.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import gevent

from ..loadmodel import OpenLoad
from ..saturation import ABORT_PREFIX, GRACE_S, SaturationCheck
from .arrival import ArrivalSchedule

if TYPE_CHECKING:
    from .run import SuiteRun, TestRun

log = logging.getLogger("loadtest")
# A master sees its workers' requests with their stats reports, every 3 s: judge only what has arrived.
MASTER_LAG_S = 4.0
LOCAL_LAG_S = 1.5


def offered_by(load: OpenLoad) -> SaturationCheck:
    trace = load.trace
    if trace is not None:
        def offered(a: float, b: float) -> float:
            return float(trace.count_between(a, b))
    else:
        schedule = ArrivalSchedule(load.stages, load.start_rate)

        def offered(a: float, b: float) -> float:
            return schedule.count_at(b) - schedule.count_at(a)
    since = load.stages[0].duration_s if len(load.stages) > 1 else GRACE_S
    return SaturationCheck(offered, since_s=since)


def watch(suite: SuiteRun, run: TestRun) -> None:
    load = suite.scenario.load
    if not isinstance(load, OpenLoad):
        return
    check = offered_by(load)
    lag = MASTER_LAG_S if suite.is_master else LOCAL_LAG_S
    while True:
        gevent.sleep(1.0)
        if run.aborted_by is not None or run.stopped_perf is not None:
            return
        if run.recorder.start_time is None:
            continue
        now = run.schedule_elapsed_s()
        finding = check.check(run.recorder.timeline(since_s=int(check.since_s)), now - lag)
        if finding is None:
            continue
        run.aborted_by = f"{ABORT_PREFIX} at {finding.at_s:.0f} s: {finding.words}"
        log.error("stopping the run: the target is over-saturated at %.0f s (%s)", finding.at_s, finding.words)
        if suite.headless:
            suite.runner.quit()
        else:
            suite.runner.stop()
        return


def start(suite: SuiteRun) -> None:
    """At test start: watch the new run, if the scenario asks for it (killed with the run's other watchers)."""
    run = suite.current
    if run is None or suite.is_worker or not suite.scenario.gate.stop_on_saturation:
        return
    run.greenlets.append(gevent.spawn(watch, suite, run))
