"""A gateway run's figures from both ends, for the whole run or one stage: one computation that the summary's
`gateway` section (loadtest/gateway.py) and the gate's thresholds on gateway metrics both read.

The client side is the recorder; the provider side is the mock's record behind the gateway
(mockprovider.record), read once at the end of the run into `GatewayFacts`. A stage is the record's
window of the same name (the run marks one per stage, as loadtest/provider_side.py reads them), so
each figure of a stage counts the upstream calls that arrived while that stage ran.

Exact from the record's histograms and counts: overhead by percentile (client p(N) of the requests that
succeeded minus provider p(N) of the answers that succeeded), upstream calls per request (mean),
the status mix, failovers, cost and capability drift. From the raw entries (the record keeps the
last `--record-cap`): the most upstream calls one client request cost, counted by the suite's
correlation id where the gateway passed it on, and the calls that arrived after the run had ended.
Where the gateway passed the id on for nearly every successful request, overhead is measured request by
request instead: the client's latency (loadtest/request_samples.py) minus that of the upstream call
that answered it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from mockprovider.profile import Profile
from mockprovider.record_client import Entry, Histogram, Series
from mockprovider.record_client import Summary as RecordSummary

from .context import SUITE_ID, generation_of
from .recorder import Recorder, Selection
from .thresholds import Threshold

OK = "ok"
# The answer the suite's clients count apart: a 200 with fewer images than asked (loadtest/clients/base.py).
EMPTY_SUCCESS = "empty_success"
# Overhead is told request by request only when at least this share of the successful requests' ids came
# through to the upstream call that answered them: below it, the unmatched ones (a fallback route that
# drops the header, say) could hold the whole tail, and the matched ones' P99 would flatter the gateway.
MATCHED_ENOUGH = 0.9
Method = Literal["by_request", "by_percentile"]
BY_REQUEST: Method = "by_request"
BY_PERCENTILE: Method = "by_percentile"


@dataclass(frozen=True)
class GatewayFacts:
    """The providers' record behind a [sut] gateway, read at the end of the run, and what the scenario asked.

    `primary`/`primary_model`: where a request should go (the scenario's target); `asked_pixels`: width x
    height of each image the client asked for (None: a size the client left to the API, e.g. "auto");
    `entries`: the record's raw entries; `ended_at`: wall clock when Locust stopped; `watched_s`: how long
    after it the record was read (the calls arriving in between are orphaned)."""
    record: RecordSummary
    primary: str
    primary_model: str
    profiles: Mapping[str, Profile]
    asked_pixels: int | None = None
    asked_format: str | None = None    # "png", "jpeg", "webp": the format the client's images come in
    entries: tuple[Entry, ...] = ()
    ended_at: float | None = None
    watched_s: float | None = None     # how long after `ended_at` the record was read

    @cached_property
    def answered_ms(self) -> dict[str, float]:
        """Provider-side latency of the upstream call that answered each client request, by the suite's
        generation id (the last successful call carrying it)."""
        out: dict[str, tuple[float, float]] = {}
        for e in self.entries:
            if e.outcome != OK or not e.correlation_id:
                continue
            generation = generation_of(e.correlation_id)
            done = e.arrived_at + e.total_ms / 1000.0
            if generation not in out or done > out[generation][0]:
                out[generation] = (done, e.total_ms)
        return {g: ms for g, (_, ms) in out.items()}

    @cached_property
    def _per_request(self) -> dict[tuple[int, str | None], PerRequest | None]:
        return {}


@dataclass(frozen=True)
class PerRequest:
    """The successful client requests of a selection that the recorder kept one by one (`kept`), and the
    overhead of each one matched with the upstream call that answered it."""
    overheads_ms: np.ndarray
    kept: int

    @property
    def matched(self) -> int:
        return int(self.overheads_ms.size)

    @property
    def share(self) -> float:
        return self.matched / self.kept if self.kept else 0.0

    @property
    def decides(self) -> bool:
        return self.matched > 0 and self.share >= MATCHED_ENOUGH


def asked_pixels(size: str) -> int | None:
    """ "1024x1536" -> 1572864; None for a size that is not width x height ("auto")."""
    w, sep, h = size.lower().partition("x")
    return int(w) * int(h) if sep and w.isdigit() and h.isdigit() else None


def _filters(stage: str | None) -> dict[str, str]:
    return {"stage": stage} if stage is not None else {}


def client(recorder: Recorder, stage: str | None = None, *, ok: bool = False) -> Selection:
    f = _filters(stage)
    if ok:
        f["expected_response"] = "true"
    return recorder.select(f)


def upstream(facts: GatewayFacts, stage: str | None = None, *, outcome: str | None = None) -> list[Series]:
    return facts.record.select(window=stage, outcome=outcome)


def provider_ok(facts: GatewayFacts, stage: str | None = None) -> Histogram:
    return facts.record.histogram("total", window=stage, outcome=OK)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def per_request(recorder: Recorder, facts: GatewayFacts, stage: str | None = None) -> PerRequest | None:
    """Each kept successful client request's latency minus its answering upstream call's (None: the run kept
    no requests one by one, or none succeeded)."""
    cache = facts._per_request
    key = (id(recorder), stage)
    if key not in cache:
        samples, answered = recorder.samples, facts.answered_ms
        found: PerRequest | None = None
        if samples is not None and len(samples):
            kept, out = 0, []
            for s in samples:
                if s.ok and (stage is None or s.stage == stage):
                    kept += 1
                    ms = answered.get(s.generation)
                    if ms is not None:
                        out.append(s.latency_ms - ms)
            found = PerRequest(np.asarray(out, dtype=float), kept) if kept else None
        cache[key] = found
    return cache[key]


def overhead_method(recorder: Recorder, facts: GatewayFacts, stage: str | None = None) -> Method:
    pr = per_request(recorder, facts, stage)
    return BY_REQUEST if pr is not None and pr.decides else BY_PERCENTILE


def overhead(recorder: Recorder, facts: GatewayFacts, aggregation: str, percentile: float | None = None,
             stage: str | None = None, *, method: str | None = None) -> float | None:
    """Client minus provider side of the successful requests, by percentile (p, med, max: p(100)) or by mean:
    request by request where the correlation ids came through (`overhead_method`), else side by side."""
    method = method or overhead_method(recorder, facts, stage)
    pr = per_request(recorder, facts, stage) if method == BY_REQUEST else None
    if pr is not None and pr.matched:
        x = pr.overheads_ms
        if aggregation == "avg":
            return _finite(float(x.mean()))
        p = 100.0 if aggregation == "max" else 50.0 if aggregation == "med" else percentile
        assert p is not None
        return _finite(float(np.percentile(x, p, method="inverted_cdf")))
    c, u = client(recorder, stage, ok=True), provider_ok(facts, stage)
    if not c.requests or not u.count:
        return None
    if aggregation == "avg":
        return _finite(c.mean_ms - u.mean_ms)
    if aggregation == "max":
        return _finite(c.max_ms - u.max_ms)
    p = 50.0 if aggregation == "med" else percentile
    assert p is not None
    return _finite(c.percentile(p) - u.percentile(p))


def upstream_requests(facts: GatewayFacts, stage: str | None = None) -> int:
    return sum(s.requests for s in upstream(facts, stage))


def calls_mean(recorder: Recorder, facts: GatewayFacts, stage: str | None = None) -> float | None:
    """Upstream calls over client requests: the gateway's retry amplification."""
    n = client(recorder, stage).requests
    return upstream_requests(facts, stage) / n if n else None


def calls_per_request(entries: Iterable[Entry]) -> int | None:
    """The most upstream calls one client request cost, counted by the correlation id it carried (its
    generation, whatever the attempt); None when no entry had one: the gateway did not pass it on."""
    counts: Counter[str] = Counter()
    for e in entries:
        if e.correlation_id:
            counts[generation_of(e.correlation_id)] += 1
    return max(counts.values()) if counts else None


def calls_max(facts: GatewayFacts, stage: str | None = None) -> int | None:
    return calls_per_request(e for e in facts.entries if stage is None or e.window == stage)


def status_mix(facts: GatewayFacts, stage: str | None = None) -> dict[str, int]:
    mix: Counter[int] = Counter()
    for s in upstream(facts, stage):
        mix.update(s.status)
    return {str(k): v for k, v in sorted(mix.items())}


def requests_by_provider(facts: GatewayFacts, stage: str | None = None) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in upstream(facts, stage):
        out[s.provider] = out.get(s.provider, 0) + s.requests
    return out


def served_by(facts: GatewayFacts, stage: str | None = None) -> tuple[dict[str, int], int]:
    """(successful upstream answers per provider/model, how many came from other than the primary)."""
    served: dict[str, int] = {}
    failovers = 0
    for s in upstream(facts, stage, outcome=OK):
        for model, n in (s.served or {s.model: s.requests}).items():
            name = s.provider if model == s.provider else f"{s.provider}/{model}"
            served[name] = served.get(name, 0) + n
            if s.provider != facts.primary or model != facts.primary_model:
                failovers += n
    return served, failovers


def failovers(facts: GatewayFacts, stage: str | None = None) -> int:
    return served_by(facts, stage)[1]


def price(facts: GatewayFacts, provider: str, model: str) -> float | None:
    p = facts.profiles.get(provider)
    if p is None:
        return None
    return p.price_for(model) if p.relay is not None else p.price_usd


def images(facts: GatewayFacts, stage: str | None = None) -> int:
    return sum(s.images_delivered for s in upstream(facts, stage, outcome=OK))


def cost(facts: GatewayFacts, stage: str | None = None) -> float | None:
    """Images the providers delivered x each one's price, as billed upstream (None: a provider without a price)."""
    total = 0.0
    for s in upstream(facts, stage, outcome=OK):
        each = price(facts, s.provider, s.model)
        if each is None:
            return None
        total += each * s.images_delivered
    return total


def first_time_cost(recorder: Recorder, facts: GatewayFacts, stage: str | None = None) -> float | None:
    """One image per client request, each bought once from the primary: what the run would have cost upstream."""
    each = price(facts, facts.primary, facts.primary_model)
    return None if each is None else each * client(recorder, stage).requests


def silent_success(recorder: Recorder, stage: str | None = None) -> int:
    return int(client(recorder, stage).status_codes.get(EMPTY_SUCCESS, 0))


def capability_drift(facts: GatewayFacts, stage: str | None = None) -> int | None:
    """Successful upstream answers for images of another size (by pixel count) or another format than the
    client asked, as the record keeps them for each answer; None when there is nothing to compare: the client
    asks neither a width x height nor a known format, or no successful answer recorded either."""
    want_px, want_fmt = facts.asked_pixels, facts.asked_format
    if want_px is None and want_fmt is None:
        return None
    known = drifted = 0
    for s in upstream(facts, stage, outcome=OK):
        # Each answer's size and format together ("pixels:format"); a record without them, its sizes alone.
        shapes = s.shapes or {f"{px}:": n for px, n in s.pixels.items()}
        for shape, n in shapes.items():
            px_text, _, fmt = shape.partition(":")
            px = int(px_text or 0)
            off_size = want_px is not None and px > 0 and px != want_px
            off_format = want_fmt is not None and bool(fmt) and fmt != want_fmt
            if (want_px is not None and px > 0) or (want_fmt is not None and fmt):
                known += n
                if off_size or off_format:
                    drifted += n
    return drifted if known else None


def orphaned_after_end(facts: GatewayFacts) -> int | None:
    """Upstream calls that arrived after the run had ended (None: the entries were not read)."""
    if facts.ended_at is None or not facts.entries:
        return None
    return sum(1 for e in facts.entries if e.arrived_at > facts.ended_at)


def orphaned_after_give_up(recorder: Recorder, facts: GatewayFacts) -> int | None:
    """Upstream calls made for a client request after the client had its failure (a timeout, the gateway's
    error) and gave the request up, while the run went on; by correlation id (None: no requests kept one by
    one, or no upstream call carried an id)."""
    samples = recorder.samples
    if samples is None or not len(samples) or not facts.entries:
        return None
    gave_up = {s.generation: s.ended_at for s in samples if not s.ok}
    end = math.inf if facts.ended_at is None else facts.ended_at
    late, ids = 0, False
    for e in facts.entries:
        if e.correlation_id:
            ids = True
            at = gave_up.get(generation_of(e.correlation_id))
            if at is not None and at < e.arrived_at <= end:
                late += 1
    return late if ids else None


def orphaned(recorder: Recorder, facts: GatewayFacts) -> int | None:
    """Upstream work nobody waits for any more: calls after the run had ended, and calls for a request its
    client had already given up (None: the entries were not read)."""
    after_end = orphaned_after_end(facts)
    if after_end is None:
        return None
    return after_end + (orphaned_after_give_up(recorder, facts) or 0)


# --- thresholds ---------------------------------------------------------------------------------


def observe(t: Threshold, recorder: Recorder, facts: GatewayFacts) -> tuple[float | None, int, bool, str]:
    """A gateway threshold's (observed value, samples, whether min_samples applies, why there is no value)."""
    stage = dict(t.filters).get("stage")
    if stage is not None and stage not in facts.record.window_names():
        return None, 0, False, f"the providers' record has no window for stage {stage!r}"
    requests = client(recorder, stage).requests
    if t.metric == "gateway_overhead":
        pr = per_request(recorder, facts, stage)
        n = pr.matched if pr is not None and pr.decides else client(recorder, stage, ok=True).requests
        value = overhead(recorder, facts, t.aggregation, t.percentile, stage)
        why = "" if value is not None else "no request succeeded at both ends, so there is no overhead to measure"
        return value, n, t.aggregation != "max", why
    if t.metric == "upstream_calls_per_request":
        if t.aggregation == "avg":
            return calls_mean(recorder, facts, stage), requests, True, "no client requests"
        most = calls_max(facts, stage)
        return (float(most) if most is not None else None), requests, False, (
            "the gateway did not pass the suite's x-request-id on to the providers, so calls cannot be "
            "counted per request (avg counts them all)")
    if t.metric == "silent_success":
        silent = silent_success(recorder, stage)
        if t.aggregation == "rate":
            return (silent / requests if requests else None), requests, True, "no client requests"
        return float(silent), requests, False, ""
    if t.metric == "capability_drift":
        drift = capability_drift(facts, stage)
        return (float(drift) if drift is not None else None), requests, False, (
            "the client asks neither a width x height nor a known image format, or no successful upstream "
            "answer recorded either")
    if t.metric == "orphaned_upstream_calls":
        late = orphaned(recorder, facts)
        return (float(late) if late is not None else None), requests, False, (
            "the record's raw entries were not read, so late upstream calls cannot be told")
    if t.metric == "upstream_cost_usd":
        usd = cost(facts, stage)
        return usd, requests, False, "a provider behind the gateway has no price in its profile"
    if t.metric == "gateway_failovers":
        return float(failovers(facts, stage)), requests, False, ""
    raise ValueError(f"not a gateway metric: {t.metric!r}")


# --- over time ---------------------------------------------------------------------------------


def timeline(recorder: Recorder, facts: GatewayFacts) -> list[dict[str, float | int | None]]:
    """Per second of the run (the recorder's clock): client requests and their P50/P99, upstream calls and
    calls per request (the record's per-second counts, by second of answer), and the provider side's P50/P99
    of its successful answers (from the raw entries)."""
    start = recorder.start_time
    rows = recorder.timeline()
    if start is None or not rows:
        return []
    shift = facts.record.started_at - start
    calls: Counter[int] = Counter()
    for second, _, n in facts.record.seconds:
        calls[int(math.floor(second + shift))] += n
    by_second: dict[int, list[float]] = {}
    for e in facts.entries:
        if e.outcome == OK:
            t = int(math.floor(e.arrived_at + e.total_ms / 1000.0 - start))
            by_second.setdefault(t, []).append(e.total_ms)
    out: list[dict[str, float | int | None]] = []
    for row in rows:
        t = int(row["t_s"])
        n, u = int(row["requests"]), calls.get(t, 0)
        ms = by_second.get(t)
        p50, p99 = (np.percentile(ms, (50, 99), method="inverted_cdf").tolist() if ms else (None, None))
        out.append({"t_s": t, "client_requests": n, "upstream_requests": u,
                    "calls_per_request": round(u / n, 6) if n else None,
                    "client_p50_ms": row["p50_ms"], "client_p99_ms": row["p99_ms"],
                    "provider_p50_ms": None if p50 is None else round(p50, 3),
                    "provider_p99_ms": None if p99 is None else round(p99, 3)})
    return out


__all__ = ["BY_PERCENTILE", "BY_REQUEST", "GatewayFacts", "PerRequest", "SUITE_ID", "asked_pixels",
           "calls_per_request", "observe", "overhead_method", "per_request", "timeline"]
