"""/metrics for the simulated proxy: tasks held, the store's bytes and work, and callbacks by outcome."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .notify import Notifier
from .store import JobStore


class MidjourneyCollector(Collector):
    def __init__(self, store: JobStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier

    def collect(self) -> Iterator[Metric]:
        store = self.store
        tasks = GaugeMetricFamily("mock_midjourney_tasks", "Midjourney tasks held, by state", labels=["state"])
        tasks.add_metric(["live"], store.live)
        tasks.add_metric(["finished"], len(store.jobs) - store.live)
        yield tasks
        yield GaugeMetricFamily("mock_midjourney_store_bytes", "Bytes the held Midjourney tasks are charged",
                                value=store.bytes)
        pruned = CounterMetricFamily("mock_midjourney_tasks_pruned", "Finished tasks let go: expired after "
                                     "their retention, or evicted early to make room", labels=["reason"])
        pruned.add_metric(["expired"], store.expired)
        pruned.add_metric(["evicted"], store.evicted)
        yield pruned
        yield CounterMetricFamily("mock_midjourney_store_visits", "Tasks the store's pruning looked at: one per "
                                  "task let go, plus at most one per submit (the store is never scanned)",
                                  value=store.visits)
        callbacks = CounterMetricFamily("mock_midjourney_callbacks", "notifyHook callbacks by outcome: sent (2xx), "
                                        "failed (error, timeout or non-2xx), dropped (queue full), superseded "
                                        "(replaced by a newer change before it was sent)", labels=["outcome"])
        for outcome in ("sent", "failed", "dropped", "superseded"):
            callbacks.add_metric([outcome], self.notifier.counts[outcome])
        yield callbacks
        yield GaugeMetricFamily("mock_midjourney_callbacks_waiting", "Tasks with a callback waiting for a worker",
                                value=self.notifier.waiting)
