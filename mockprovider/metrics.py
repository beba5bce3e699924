"""Prometheus metrics for the mock: requests by provider/model/status, in flight, queued, latency,
and from the provider-side record (mockprovider.record) the queue wait and service time.

Counting happens in plain dicts on the event loop (the server has one thread),
and the Prometheus families are built only when /metrics is scraped: the
client library's locked counters and histograms cost more per request than the
rest of a cheap answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from .provider import Providers
    from .record import Record

# The provider label of an answer this worker relayed from the worker that holds the task (with
# `--workers N`, wire/midjourney/peers.py): that worker counts it, so this one leaves it out.
RELAYED = "\x00relayed"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 60)
_LE = [floatToGoString(b) for b in BUCKETS] + ["+Inf"]


class _Load(Collector):
    """Reads running/queued counts from the capacity behaviours when scraped."""

    def __init__(self, providers: Providers) -> None:
        self.providers = providers

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily("mock_in_flight", "Requests generating now", labels=["provider"])
        queued = GaugeMetricFamily("mock_queue_depth", "Requests waiting for a slot", labels=["provider"])
        for name, p in self.providers.items():
            running.add_metric([name], p.capacity.running)
            queued.add_metric([name], p.capacity.queued)
        yield running
        yield queued


class _Toxics(Collector):
    """How often each provider's toxics fired (mockprovider/toxics.py), counted where they act."""

    def __init__(self, providers: Providers) -> None:
        self.providers = providers

    def collect(self) -> Iterator[Metric]:
        fired = CounterMetricFamily("mock_toxics", "Answers a toxic changed or cut", labels=["provider", "toxic"])
        for name, p in self.providers.items():
            for toxic, count in p.toxics.fired.items():
                if count:
                    fired.add_metric([name, toxic], count)
        yield fired


class _Answers(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("mock_requests", "Requests answered", labels=["provider", "model", "status"])
        by_provider: dict[str, list[float]] = {}
        for (provider, model, status), row in sorted(self.metrics.rows.items()):
            if provider == RELAYED:
                continue
            requests.add_metric([provider, model, str(status)], sum(row[:-1]))
            total = by_provider.setdefault(provider, [0] * len(row))
            for i, n in enumerate(row):
                total[i] += n
        yield requests
        latency = HistogramMetricFamily("mock_request_duration_seconds", "Time to answer, queueing included",
                                        labels=["provider"])
        for provider, row in by_provider.items():
            cumulative: float = 0
            buckets: list[tuple[str, float]] = []
            for le, n in zip(_LE, row):
                cumulative += n
                buckets.append((le, cumulative))
            latency.add_metric([provider], buckets, sum_value=row[-1])
        yield latency


class _Stages(Collector):
    """Queue wait and service time per provider, from the record's totals (which a record reset
    leaves alone: Prometheus counters never go back). A Midjourney job counts once, when it ends."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def collect(self) -> Iterator[Metric]:
        record = self.record
        record.fold()
        for name, doc, hist, sums in (
                ("mock_queue_wait_seconds", "Time waiting for a slot, from entering the provider to generating",
                 record.prom_queue, record.prom_queue_sum),
                ("mock_service_seconds", "Time generating, from its start to the provider's answer",
                 record.prom_service, record.prom_service_sum)):
            family = HistogramMetricFamily(name, doc, labels=["provider"])
            for i, provider in enumerate(record.prom_providers):
                cumulative = 0
                buckets: list[tuple[str, float]] = []
                for le, n in zip(_LE, hist[i].tolist()):
                    cumulative += n
                    buckets.append((le, cumulative))
                family.add_metric([provider], buckets, sum_value=float(sums[i]))
            yield family


class Metrics:
    def __init__(self, providers: Providers, record: Record | None = None) -> None:
        # (provider, model, status) -> answers per latency bucket (the last one +Inf), then their sum of
        # seconds; the wire formats' guard (wire/common.py) counts every answer into these rows.
        self.rows: dict[tuple[str, str, int], list[float]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Answers(self))
        self.registry.register(_Load(providers))
        self.registry.register(_Toxics(providers))
        if record is not None:
            self.registry.register(_Stages(record))

    @staticmethod
    def new_row() -> list[float]:
        return [0] * (len(BUCKETS) + 1) + [0.0]

    def render(self) -> bytes:
        return generate_latest(self.registry)
