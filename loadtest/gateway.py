"""Both ends of a gateway run: what Locust saw (the recorder) against what the providers saw (the mock's record).

The record (mockprovider.record, read with RecordClient) holds every upstream answer in exact
histograms, so each figure here is exact: overhead is client p(N) minus provider p(N) of the
answers that succeeded, or request by request where the gateway passed the suite's correlation id on
(gateway_figures.overhead_method); amplification is upstream requests over client requests; a failover is
a successful upstream answer from another provider or model than the one the scenario asks for.
The figures themselves are loadtest/gateway_figures.py's, which the gate's thresholds read too;
here they become the summary's `gateway` section, for the run and per stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from mockprovider.profile import Profile
from mockprovider.record_client import Entry, Histogram, RecordClient
from mockprovider.record_client import Summary as RecordSummary

from . import gateway_figures as fig
from .gateway_figures import EMPTY_SUCCESS, OK, GatewayFacts, calls_per_request
from .recorder import Recorder
from .summary import (
    GatewayCallsDoc,
    GatewayDoc,
    GatewayOverheadDoc,
    GatewayStageDoc,
    GatewayTimelineRow,
    LatencyDoc,
    _r,
    latency_doc,
)

OVERHEAD_POINTS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
LATENCY_POINTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))

__all__ = ["EMPTY_SUCCESS", "OK", "calls_per_request", "describe_gateway", "gateway_doc", "histogram_doc",
           "read_facts", "read_gateway"]


def histogram_doc(h: Histogram) -> LatencyDoc:
    values: dict[str, float | None] = {k: _r(h.percentile(p)) if h.count else None for k, p in LATENCY_POINTS}
    values.update(max=_r(h.max_ms), min=_r(h.min_ms), mean=_r(h.mean_ms))
    return LatencyDoc.model_validate(values)


def _overhead(recorder: Recorder, facts: GatewayFacts, stage: str | None,
              method: str | None = None) -> dict[str, float | None]:
    return {k: _r(fig.overhead(recorder, facts, "p", p, stage, method=method)) for k, p in OVERHEAD_POINTS}


def _overhead_doc(recorder: Recorder, facts: GatewayFacts) -> GatewayOverheadDoc:
    pr = fig.per_request(recorder, facts)
    return GatewayOverheadDoc(
        **_overhead(recorder, facts, None), method=fig.overhead_method(recorder, facts),
        matched_requests=pr.matched if pr is not None else None,
        matched_share=round(pr.share, 6) if pr is not None else None,
        by_percentile=_overhead(recorder, facts, None, fig.BY_PERCENTILE),
        client_ms=latency_doc(fig.client(recorder, ok=True)), provider_ms=histogram_doc(fig.provider_ok(facts)))


def _money(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _stage(recorder: Recorder, facts: GatewayFacts, name: str) -> GatewayStageDoc:
    served, failovers = fig.served_by(facts, name)
    mean = fig.calls_mean(recorder, facts, name)
    return GatewayStageDoc(
        name=name, overhead_ms=_overhead(recorder, facts, name),
        overhead_method=fig.overhead_method(recorder, facts, name), calls_mean=None if mean is None else round(mean, 6),
        calls_max=fig.calls_max(facts, name), client_requests=fig.client(recorder, name).requests,
        upstream_requests=fig.upstream_requests(facts, name), status_mix=fig.status_mix(facts, name),
        failovers=failovers, served_by=served, silent_success=fig.silent_success(recorder, name),
        upstream_cost_usd=_money(fig.cost(facts, name)), capability_drift=fig.capability_drift(facts, name))


def describe_gateway(facts: GatewayFacts, recorder: Recorder, *, kind: str, url: str,
                     asked_size: str | None = None) -> GatewayDoc:
    """The summary's `gateway` section from the facts the gate judged."""
    primary, primary_model = facts.primary, facts.primary_model
    served, failovers = fig.served_by(facts)
    mean = fig.calls_mean(recorder, facts)
    windows = set(facts.record.window_names())
    return GatewayDoc(
        kind=kind, url=url, primary=primary if primary == primary_model else f"{primary}/{primary_model}",
        overhead_ms=_overhead_doc(recorder, facts),
        upstream_calls_per_request=GatewayCallsDoc(
            mean=None if mean is None else round(mean, 6), max=fig.calls_max(facts),
            client_requests=fig.client(recorder).requests, upstream_requests=fig.upstream_requests(facts),
            status_mix=fig.status_mix(facts)),
        failovers=failovers, served_by=served, upstream_requests_by_provider=fig.requests_by_provider(facts),
        silent_success=fig.silent_success(recorder), upstream_images=fig.images(facts),
        upstream_cost_usd=_money(fig.cost(facts)), first_time_cost_usd=_money(fig.first_time_cost(recorder, facts)),
        orphaned_upstream_calls=fig.orphaned(recorder, facts), orphaned_after_end=fig.orphaned_after_end(facts),
        orphaned_after_give_up=fig.orphaned_after_give_up(recorder, facts),
        orphan_watch_s=None if facts.watched_s is None else round(facts.watched_s, 3),
        capability_drift=fig.capability_drift(facts),
        asked_size=asked_size, asked_format=facts.asked_format,
        stages=[_stage(recorder, facts, name) for name, _, _ in recorder.stages if name in windows],
        timeline=[GatewayTimelineRow.model_validate(row) for row in fig.timeline(recorder, facts)])


def gateway_doc(*, kind: str, url: str, primary: str, primary_model: str, recorder: Recorder,
                record: RecordSummary, profiles: Mapping[str, Profile], entries: Iterable[Entry] = (),
                ended_at: float | None = None, asked_size: str | None = None,
                asked_format: str | None = None) -> GatewayDoc:
    """`primary`: the mock provider the target names; `ended_at`: wall clock when Locust stopped (upstream
    arrivals after it are orphaned calls)."""
    facts = GatewayFacts(record=record, primary=primary, primary_model=primary_model, profiles=profiles,
                         asked_pixels=fig.asked_pixels(asked_size) if asked_size else None,
                         asked_format=asked_format, entries=tuple(entries), ended_at=ended_at)
    return describe_gateway(facts, recorder, kind=kind, url=url, asked_size=asked_size)


def read_facts(mock_url: str, *, primary: str, primary_model: str, profiles: Mapping[str, Profile],
               ended_at: float | None = None, asked_size: str | None = None,
               token: str | None = None, asked_format: str | None = None) -> GatewayFacts:
    """The providers' record behind the gateway, read from the mock at `mock_url` (RecordError if it cannot be)."""
    client = RecordClient(mock_url, token=token)
    read_at = time.time()
    record = client.summary()
    entries = tuple(client.entries(page_size=10_000)) if record.raw.get("cap", 0) > 0 else ()
    return GatewayFacts(record=record, primary=primary, primary_model=primary_model, profiles=profiles,
                        asked_pixels=fig.asked_pixels(asked_size) if asked_size else None,
                        asked_format=asked_format, entries=entries,
                        ended_at=ended_at, watched_s=None if ended_at is None else max(0.0, read_at - ended_at))


def read_gateway(mock_url: str, *, kind: str, url: str, primary: str, primary_model: str, recorder: Recorder,
                 profiles: Mapping[str, Profile], ended_at: float | None = None,
                 token: str | None = None, asked_size: str | None = None) -> GatewayDoc:
    """The gateway's figures with the provider side read from the mock at `mock_url` (RecordError if it cannot
    be read)."""
    facts = read_facts(mock_url, primary=primary, primary_model=primary_model, profiles=profiles,
                       ended_at=ended_at, asked_size=asked_size, token=token)
    return describe_gateway(facts, recorder, kind=kind, url=url, asked_size=asked_size)
