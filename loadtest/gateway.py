"""Both ends of a gateway run: what Locust saw (the recorder) against what the providers saw (the mock's record).

The record (mockprovider.record, read with RecordClient) holds every upstream answer in exact
histograms, so each figure here is exact: overhead is client p(N) minus provider p(N) of the
answers that succeeded; amplification is upstream requests over client requests; a failover is
a successful upstream answer from another provider or model than the one the scenario asks for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

from mockprovider.profile import Profile
from mockprovider.record_client import Entry, Histogram, RecordClient
from mockprovider.record_client import Summary as RecordSummary

from .recorder import Recorder
from .summary import GatewayCallsDoc, GatewayDoc, GatewayOverheadDoc, LatencyDoc, _r, latency_doc

OVERHEAD_POINTS = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
LATENCY_POINTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))
OK = "ok"
# The answer the suite's clients count apart: a 200 with fewer images than asked (loadtest/clients/base.py).
EMPTY_SUCCESS = "empty_success"


def histogram_doc(h: Histogram) -> LatencyDoc:
    values: dict[str, float | None] = {k: _r(h.percentile(p)) if h.count else None for k, p in LATENCY_POINTS}
    values.update(max=_r(h.max_ms), min=_r(h.min_ms), mean=_r(h.mean_ms))
    return LatencyDoc.model_validate(values)


def _price(profiles: Mapping[str, Profile], provider: str, model: str) -> float | None:
    p = profiles.get(provider)
    if p is None:
        return None
    return p.price_for(model) if p.relay is not None else p.price_usd


def calls_per_request(entries: Iterable[Entry]) -> int | None:
    """The most upstream calls one client request cost, counted by the correlation id it carried (None when
    no entry had one: the gateway did not pass it on)."""
    counts = Counter(e.correlation_id for e in entries if e.correlation_id)
    return max(counts.values()) if counts else None


def gateway_doc(*, kind: str, url: str, primary: str, primary_model: str, recorder: Recorder,
                record: RecordSummary, profiles: Mapping[str, Profile], entries: Iterable[Entry] = (),
                ended_at: float | None = None) -> GatewayDoc:
    """`primary`: the mock provider the target names; `ended_at`: wall clock when Locust stopped (upstream
    arrivals after it are orphaned calls)."""
    client = recorder.select()
    client_ok = recorder.select({"expected_response": "true"})
    upstream = record.select()
    upstream_ok = record.select(outcome=OK)
    provider_ok = record.histogram("total", outcome=OK)
    by_request: dict[str, int] = {}
    served_by: dict[str, int] = {}
    failovers = 0
    images = 0
    cost = 0.0
    priced = True
    for s in upstream:
        by_request[s.provider] = by_request.get(s.provider, 0) + s.requests
    for s in upstream_ok:
        for model, n in (s.served or {s.model: s.requests}).items():
            name = s.provider if model == s.provider else f"{s.provider}/{model}"
            served_by[name] = served_by.get(name, 0) + n
            if s.provider != primary or model != primary_model:
                failovers += n
        images += s.images_delivered
        price = _price(profiles, s.provider, s.model)
        if price is None:
            priced = False
        else:
            cost += price * s.images_delivered
    overhead: dict[str, float | None] = {}
    for key, p in OVERHEAD_POINTS:
        c, u = client_ok.percentile(p), provider_ok.percentile(p)
        overhead[key] = _r(c - u) if math.isfinite(c) and math.isfinite(u) else None
    upstream_requests = sum(s.requests for s in upstream)
    entries = list(entries)
    orphaned = None
    if ended_at is not None and entries:
        orphaned = sum(1 for e in entries if e.arrived_at > ended_at)
    price_primary = _price(profiles, primary, primary_model)
    # One image per client request, each bought once from the primary: what the run would have cost upstream.
    first_time = None if price_primary is None else round(price_primary * client.requests, 6)
    status_mix: Counter[int] = Counter()
    for s in upstream:
        status_mix.update(s.status)
    return GatewayDoc(
        kind=kind, url=url, primary=primary if primary == primary_model else f"{primary}/{primary_model}",
        overhead_ms=GatewayOverheadDoc(**overhead, method="by_percentile", client_ms=latency_doc(client_ok),
                                       provider_ms=histogram_doc(provider_ok)),
        upstream_calls_per_request=GatewayCallsDoc(
            mean=round(upstream_requests / client.requests, 6) if client.requests else None,
            max=calls_per_request(entries), client_requests=client.requests, upstream_requests=upstream_requests,
            status_mix={str(k): v for k, v in sorted(status_mix.items())}),
        failovers=failovers, served_by=served_by, upstream_requests_by_provider=by_request,
        silent_success=int(client.status_codes.get(EMPTY_SUCCESS, 0)), upstream_images=images,
        upstream_cost_usd=round(cost, 6) if priced else None, first_time_cost_usd=first_time,
        orphaned_upstream_calls=orphaned)


def read_gateway(mock_url: str, *, kind: str, url: str, primary: str, primary_model: str, recorder: Recorder,
                 profiles: Mapping[str, Profile], ended_at: float | None = None,
                 token: str | None = None) -> GatewayDoc:
    """The gateway's figures with the provider side read from the mock at `mock_url` (RecordError if it cannot
    be read)."""
    client = RecordClient(mock_url, token=token)
    record = client.summary()
    entries = list(client.entries()) if ended_at is not None else []
    return gateway_doc(kind=kind, url=url, primary=primary, primary_model=primary_model, recorder=recorder,
                       record=record, profiles=profiles, entries=entries, ended_at=ended_at)
