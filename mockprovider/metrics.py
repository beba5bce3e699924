"""Prometheus metrics for the mock: requests by provider/model/status, in flight, queued, latency."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .provider import Providers

disable_created_metrics()  # the _created series only add noise to a scrape

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 60)


class _Load(Collector):
    """Reads running/queued counts from the capacity behaviours when scraped."""

    def __init__(self, providers: "Providers") -> None:
        self.providers = providers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        running = GaugeMetricFamily("mock_in_flight", "Requests generating now", labels=["provider"])
        queued = GaugeMetricFamily("mock_queue_depth", "Requests waiting for a slot", labels=["provider"])
        for name, p in self.providers.items():
            running.add_metric([name], p.capacity.running)
            queued.add_metric([name], p.capacity.queued)
        yield running
        yield queued


class Metrics:
    def __init__(self, providers: "Providers") -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mock_requests", "Requests answered", ["provider", "model", "status"],
                                registry=self.registry)
        self.latency = Histogram("mock_request_duration_seconds", "Time to answer, queueing included",
                                 ["provider"], buckets=BUCKETS, registry=self.registry)
        self.registry.register(_Load(providers))
        self._counters: dict[tuple[str, str, int], object] = {}
        self._hists: dict[str, object] = {}

    def observe(self, provider: str, model: str, status: int, seconds: float) -> None:
        key = (provider, model, status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = self.requests.labels(provider, model, str(status))
        child.inc()  # type: ignore[attr-defined]
        hist = self._hists.get(provider)
        if hist is None:
            hist = self._hists[provider] = self.latency.labels(provider)
        hist.observe(seconds)  # type: ignore[attr-defined]

    def render(self) -> bytes:
        return generate_latest(self.registry)
