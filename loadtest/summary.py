"""summary.json: the one definition of a run's summary, what every report writer reads.

`Summary` is the contract between the gate and the reports (console, JUnit, Markdown, HTML),
`compare`, `calibrate` and a team's own CI scripts. It is typed here and published as a JSON
Schema (`schemas/summary.schema.json`, `loadtest schema`); every summary the suite writes
validates against it. Writers read a `Summary`, never the recorder, so a report can be
rebuilt from a saved summary.json (`Summary.read`).

Numbers are rounded once, here: milliseconds to the microsecond, rates to six places.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .baseline import Baseline, compare
from .confidence import Interval, about, interval_text
from .gate import ThresholdResult, Verdict, goodput_count
from .health import HealthReport
from .recorder import PERCENTILE_DEFINITION, Recorder, Selection
from .scenario import Scenario, Target
from .thresholds import format_value

FORMAT = "loadtest.summary/1"
LATENCY_POINTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StageWindow(_Doc):
    name: str
    start_s: float
    end_s: float


class ScenarioDoc(_Doc):
    name: str
    description: str = ""
    source: str = ""
    load_model: str
    planned_s: float
    stages: list[StageWindow]
    min_samples: int
    confidence: float = Field(default=0.95, description="the level of every threshold's interval ([gate] confidence)")
    inconclusive: Literal["invalid", "fail", "observed"] = Field(
        default="invalid", description="what a threshold whose interval straddles its limit makes of the run")


class TargetDoc(_Doc):
    name: str
    api: str
    base_url: str | None
    model: str


class LatencyDoc(_Doc):
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = Field(default=None, alias="p99.9")
    max: float | None = None
    min: float | None = None
    mean: float | None = None


class FirstImageDoc(_Doc):
    """Time to the first image of streamed generations (a partial image, or the whole one when none was
    asked for), from the same start as their latency; only generations that received an image count."""
    samples: int
    ms: LatencyDoc


class MarginDoc(_Doc):
    amount: float
    unit: str
    percent: float | None
    words: str


class IntervalDoc(_Doc):
    """A two-sided confidence interval around an observed value, in the threshold's unit; a missing bound
    is open on that side (e.g. a P99 of 100 requests has no upper bound at 95 %)."""
    low: float | None
    high: float | None
    level: float
    method: Literal["order statistics", "Wilson score", "normal"]


class ThresholdSideDoc(_Doc):
    """A latency threshold's figure on the provider side (the mock's record of the same requests) beside the
    client's: the gap is the generator's own queueing and the network's (or a gateway's) share."""
    observed: float = Field(description="the provider side's value of the same figure (ms)")
    samples: int = Field(description="provider-side answers behind it")
    gap: float | None = Field(description="client-side value minus provider-side value (ms)")
    attribution: Literal["target", "mock_late", "generator", "between", "undecided"] | None = Field(
        default=None, description="a failed ceiling: whose breach it is (loadtest.attribution)")
    attribution_text: str | None = None


class ThresholdDoc(_Doc):
    key: str
    label: str
    metric: str
    aggregation: str
    expression: str
    filters: dict[str, str]
    op: str
    limit: float
    unit: str
    observed: float | None
    samples: int
    verdict: Literal["pass", "fail", "insufficient", "inconclusive"]
    detail: str
    margin: MarginDoc | None = None
    needed_samples: int | None = None
    abort_on_fail: bool = False
    interval: IntervalDoc | None = None
    more_samples: int | None = Field(default=None, description="inconclusive: roughly how many more requests "
                                                               "would decide it, if the observed value held")
    slo_ms: float | None = Field(default=None, description="goodput: the latency objective a success must meet")
    baseline: float | None = Field(default=None, description="a regression threshold: the baseline's value its "
                                                             "limit comes from")
    allowance: str | None = Field(default=None, description="a regression threshold: how much worse than the "
                                                            "baseline it may be")
    provider_side: ThresholdSideDoc | None = Field(default=None, description="latency, with the provider-side "
                                                   "record: the same figure as the simulated providers saw it")

    def interval_words(self, with_level: bool = True) -> str:
        """ "95 % 571.0–612.4 ms", or "" for a value that is a fact of the run."""
        i = self.interval
        if i is None:
            return ""
        text = interval_text(self.metric, self.aggregation, i.low, i.high)
        return f"{i.level * 100:g} % {text}" if with_level else text

    def undecided_words(self) -> str:
        """For an inconclusive threshold: what would decide it."""
        if self.more_samples is None:
            return "no number of requests decides it: it sits on its limit"
        return f"about {about(self.more_samples)} more requests would decide it"


class ReasonDoc(_Doc):
    kind: str
    text: str


class StageDoc(_Doc):
    name: str
    start_s: float
    end_s: float
    requests: int
    failures: int
    dropped: int
    rps: float | None
    latency_ms: LatencyDoc
    first_image: FirstImageDoc | None = None
    goodput_rate: float | None = None
    goodput_rps: float | None = None


class GoodputDoc(_Doc):
    """Requests that succeeded within a latency objective: the images a shop actually delivered in time."""
    slo_ms: float
    basis: str = Field(description="where the objective comes from: a goodput threshold or the SLA's latency limit")
    requests: int
    rate: float | None = Field(description="as a share of scheduled starts (dropped ones count against it)")
    rps: float | None


class CostDoc(_Doc):
    usd: float | None
    images: int
    per_image_usd: float | None


class GeneratorDoc(_Doc):
    saturated: bool
    reasons: list[str] = []
    figures: dict[str, float | int | None] = {}


class RunDoc(_Doc):
    end: str
    planned_s: float
    elapsed_s: float
    aborted_by: str | None = None
    aborted_at_s: float | None = None      # when abort_on_fail stopped it, on the schedule's clock
    generator_abort: str | None = Field(default=None, description="abort_on_fail stopped the run on this "
                                        "threshold, whose breach the provider side did not share while the "
                                        "generator was strained: the generator's, so the run proves nothing")
    workers: int = 0
    workers_lost: list[str] = []


class TraceDoc(_Doc):
    path: str
    arrivals: int
    duration_s: float
    time_scale: float
    models: list[str] = []
    use_cases: bool = False


class LoadDoc(_Doc):
    model: str
    peak_users: int
    think_time_s: list[float] | None = None
    max_vus: int | None = None
    scheduled_starts: int | None = None
    arrivals: Literal["even", "poisson", "gamma", "trace"] | None = None
    burstiness: float | None = None
    arrival_seed: int | None = None
    trace: TraceDoc | None = None


class MockDoc(_Doc):
    url: str | None
    embedded: bool
    seed: int
    latency_scale: float
    set: list[str]


class ActionDoc(_Doc):
    at_s: float
    planned_at_s: float
    provider: str
    settings: dict[str, Any]
    outcome: str
    ok: bool


class BatchDoc(_Doc):
    size: int
    batches: int
    mean_wall_ms: float
    mean_per_image_ms: float
    concurrency: int
    # "semaphore": one request per image (the seed's batch_generate); "native": the provider's own batching
    # (n images in one request, Vertex's sampleCount, Midjourney's grid), `images_per_request` for each request.
    mode: Literal["semaphore", "native"] = "semaphore"
    requests_per_batch: int | None = None
    images_per_request: list[int] | None = None


class GatewayOverheadDoc(_Doc):
    """What the gateway added: client-side minus provider-side latency of the answers that succeeded."""
    p50: float | None
    p90: float | None
    p99: float | None
    method: Literal["by_percentile", "by_request"] = Field(
        description="by_request: each successful request's latency minus that of the upstream call that "
                    "answered it, matched through its correlation id (when at least 90 % of them matched); "
                    "by_percentile: client p(N) minus provider p(N)")
    matched_requests: int | None = Field(default=None, description="successful client requests matched with "
                                                                   "their answering upstream call by id")
    matched_share: float | None = Field(default=None, description="matched_requests over the successful client "
                                                                  "requests kept one by one")
    by_percentile: dict[str, float | None] = Field(default={}, description="p50, p90, p99 side by side, "
                                                                           "whichever method decides")
    client_ms: LatencyDoc = Field(description="client side (the recorder): successful requests")
    provider_ms: LatencyDoc = Field(description="provider side (the mock's record): successful answers")


class GatewayCallsDoc(_Doc):
    """Upstream calls per client request: how many the gateway made for each one the shop sent."""
    mean: float | None = Field(description="provider-side requests / client-side requests (retry amplification)")
    max: int | None = Field(default=None, description="the most calls one client request cost, where the "
                                                      "correlation id came through; else null")
    client_requests: int
    upstream_requests: int
    status_mix: dict[str, int] = Field(default={}, description="provider-side HTTP status -> answers")


class GatewayStageDoc(_Doc):
    """One stage of a gateway run from both ends: the client's requests of the stage against the upstream calls
    that arrived while the providers' record had the stage's window open."""
    name: str
    overhead_ms: dict[str, float | None] = Field(description="p50, p90, p99: client minus provider side of the "
                                                             "successful requests, by overhead_method")
    overhead_method: Literal["by_percentile", "by_request"] = "by_percentile"
    calls_mean: float | None = Field(description="upstream calls / client requests in the stage")
    calls_max: int | None = Field(default=None, description="the most calls one client request cost (where the "
                                                            "correlation id came through)")
    client_requests: int
    upstream_requests: int
    status_mix: dict[str, int] = {}
    failovers: int = 0
    served_by: dict[str, int] = {}
    silent_success: int = 0
    upstream_cost_usd: float | None = None
    capability_drift: int | None = None


class GatewayTimelineRow(_Doc):
    """One second of a gateway run: both ends' latency and the upstream calls per client request."""
    t_s: int
    client_requests: int
    upstream_requests: int = Field(description="upstream answers in this second (the record's per-second counts)")
    calls_per_request: float | None
    client_p50_ms: float | None
    client_p99_ms: float | None
    provider_p50_ms: float | None = Field(description="successful upstream answers of this second (raw entries)")
    provider_p99_ms: float | None


class GatewayDoc(_Doc):
    """The gateway between Locust and the simulated providers ([sut]), seen from both ends."""
    kind: str
    url: str
    primary: str = Field(description="the mock provider the scenario's target names: where a request should go")
    overhead_ms: GatewayOverheadDoc
    upstream_calls_per_request: GatewayCallsDoc
    failovers: int = Field(description="successful upstream answers from another provider or model than the "
                                       "primary (the gateway's fallbacks, or a relay's own failover)")
    served_by: dict[str, int] = Field(default={}, description="successful upstream answers per provider/model")
    upstream_requests_by_provider: dict[str, int] = {}
    silent_success: int = Field(description="client side: HTTP 200 answers with no image or fewer than asked "
                                            "(counted as failures)")
    upstream_images: int
    upstream_cost_usd: float | None = Field(description="images the providers delivered x each one's price")
    first_time_cost_usd: float | None = Field(default=None, description="the cost had every client request "
                                                                        "succeeded first time on the primary")
    orphaned_upstream_calls: int | None = Field(default=None, description="upstream work nobody waited for: "
                                                "orphaned_after_end + orphaned_after_give_up")
    orphaned_after_end: int | None = Field(default=None, description="upstream requests that arrived after the "
                                                                     "run had ended, while orphan_watch_s lasted")
    orphaned_after_give_up: int | None = Field(default=None, description="upstream requests made for a client "
                                               "request after its client had its failure and gave it up, by "
                                               "correlation id (null: no ids came through)")
    orphan_watch_s: float | None = Field(default=None, description="how long after the end the providers were "
                                                                   "watched for them ([sut] orphan_watch)")
    capability_drift: int | None = Field(default=None, description="successful upstream answers for images of "
                                                                   "another size (pixel count) than the client "
                                                                   "asked; null where the size is not width x "
                                                                   "height or the record kept none")
    asked_size: str | None = Field(default=None, description="the image size the client asked the gateway for")
    asked_format: str | None = Field(default=None, description="the image format the client's answers come in "
                                                               "(asked, or the API's default)")
    stages: list[GatewayStageDoc] = Field(default=[], description="the same figures per stage (the record's "
                                                                  "windows)")
    timeline: list[GatewayTimelineRow] = []


class DeltaDoc(_Doc):
    name: str
    metric: str
    aggregation: str
    unit: str
    baseline: float | None
    current: float | None
    delta: float | None
    delta_percent: float | None
    worse: bool | None = Field(description="whether this run is worse than the baseline on it (None: no change)")


def delta_words(d: DeltaDoc) -> tuple[str, str, str]:
    """(baseline, this run, change) as a person reads them: "43.9 ms", "57.0 ms", "+13.1 ms (+29.9 %), worse"."""
    def show(v: float | None) -> str:
        return format_value(d.metric, d.aggregation, v)
    if d.delta is None:
        change = "n/a"
    elif d.unit == "":
        change = f"{d.delta * 100:+.3g} pp"
    else:
        change = (f"{d.delta:+,.1f} {d.unit}" if d.unit != "requests" else f"{d.delta:+,.0f}")
        if d.delta_percent is not None:
            change += f" ({d.delta_percent:+.1f} %)"
    if d.worse is not None:
        change += ", worse" if d.worse else ", better"
    return show(d.baseline), show(d.current), change


class BaselineDoc(_Doc):
    """This run against a previous one (--baseline)."""
    path: str
    scenario: str
    target: str
    started_at: str
    verdict: str
    figures: list[DeltaDoc]
    thresholds: list[DeltaDoc] = Field(description="each threshold both runs have, by label")
    regressions: list[str] = Field(default=[], description="labels of the regression thresholds judged")
    unmatched: list[str] = Field(default=[], description="regressions the baseline had no value for")


class TimelineRow(_Doc):
    t_s: int
    users: int | None
    requests: int
    failures: int
    dropped: int
    rps: float
    codes: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


class ProviderLatencyDoc(_Doc):
    """The provider side's own times (ms): total from its handler's start to its answer, queue wait
    before generation, service time of generation."""
    total: LatencyDoc
    queue: LatencyDoc
    service: LatencyDoc


class ProviderDoc(_Doc):
    provider: str
    requests: int
    outcomes: dict[str, int]
    status_codes: dict[str, int]
    latency_ms: ProviderLatencyDoc


class ProviderStageDoc(_Doc):
    """One stage as the provider side saw it: the requests that arrived while the record's window of
    that name was open."""
    name: str
    requests: int
    latency_ms: LatencyDoc


class MatchDoc(_Doc):
    """How much of what the client sent the provider side saw: by correlation id (x-request-id
    `<generation>.<attempt>`) over the raw entries the record still kept, by counts otherwise."""
    client_requests: int = Field(description="generations the client completed (retries inside)")
    client_attempts: int = Field(description="HTTP attempts those generations made")
    provider_requests: int = Field(description="answers the provider side recorded in this run")
    method: Literal["correlation id", "counts"]
    matched_requests: int | None = Field(default=None, description="client generations whose id the provider "
                                                                   "side recorded at least once")
    matched_attempts: int | None = Field(default=None, description="provider entries carrying a suite id")
    matched_share: float | None = Field(description="matched (or recorded) generations over the client's")
    raw_kept: int = 0
    raw_missed: int = Field(default=0, description="entries the record's cap had overwritten before they were read")


class SideBySideDoc(_Doc):
    """Client vs provider side for one selection (the run, or a stage): the gap is the generator's,
    the network's, or a gateway's in between."""
    name: str
    client_p50_ms: float | None
    client_p99_ms: float | None
    provider_p50_ms: float | None
    provider_p99_ms: float | None
    gap_p50_ms: float | None
    gap_p99_ms: float | None


class AttributionDoc(_Doc):
    threshold: str
    kind: Literal["target", "mock_late", "generator", "between", "undecided"]
    client: float
    provider: float
    provider_samples: int
    text: str


class ProviderSideDoc(_Doc):
    """What the simulated providers recorded of this run (mockprovider.record), read at its end."""
    url: str
    record_id: str | None = None
    providers_compared: list[str] = Field(default=[], description="the providers the gate compares with the "
                                                                  "client (empty: all of them)")
    requests: int = 0
    stale: int = Field(default=0, description="answers to requests that arrived before the run's reset")
    outcomes: dict[str, int] = {}
    latency_ms: ProviderLatencyDoc | None = None
    providers: list[ProviderDoc] = []
    stages: list[ProviderStageDoc] = []
    matched: MatchDoc | None = None
    side_by_side: list[SideBySideDoc] = []
    attribution: list[AttributionDoc] = []
    error: str | None = Field(default=None, description="why the record could not be read (the gate then "
                                                        "judged from the client side alone)")


class Summary(_Doc):
    format: Literal["loadtest.summary/1"] = "loadtest.summary/1"
    scenario: ScenarioDoc
    target: TargetDoc
    started_at: str
    duration_s: float
    verdict: Literal["pass", "fail", "invalid"]
    exit_code: int
    passed: bool
    reasons: list[ReasonDoc]
    thresholds: list[ThresholdDoc]
    requests: int
    failures: int
    dropped: int
    success_rate: float | None
    attempts: int
    retries: int
    failovers: int
    latency_ms: LatencyDoc
    first_image: FirstImageDoc | None = None
    rps: float | None
    status_codes: dict[str, int]
    peak_users: int
    cost: CostDoc
    stages: list[StageDoc]
    generator: GeneratorDoc
    run: RunDoc
    load: LoadDoc
    goodput: GoodputDoc | None = None
    baseline: BaselineDoc | None = None
    mock: MockDoc | None = None
    actions: list[ActionDoc] = []
    batches: BatchDoc | None = None
    gateway: GatewayDoc | None = None
    notes: list[str] = []
    timeline: list[TimelineRow] = []
    latency_distribution: list[tuple[float, float | None]] = []
    expected_latency: dict[str, float | str] | None = None
    provider_side: ProviderSideDoc | None = None
    percentile_definition: str = PERCENTILE_DEFINITION
    files: dict[str, str] = {}
    report_dir: str = ""

    # -- reading and writing ---------------------------------------------------------------

    @classmethod
    def read(cls, path: str | Path) -> Summary:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def json_dict(self) -> dict[str, Any]:
        """The JSON form (aliases such as "p99.9" as written), as plain data."""
        return self.model_dump(mode="json", by_alias=True)

    @property
    def reason_texts(self) -> list[str]:
        return [r.text for r in self.reasons]

    def threshold(self, label: str) -> ThresholdDoc:
        return next(t for t in self.thresholds if t.label == label)


def schema() -> dict[str, Any]:
    doc = Summary.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = "https://imagegen-loadtest.invalid/schemas/summary.schema.json"
    return doc


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


# --- building ---------------------------------------------------------------------------------


def _r(x: float | None, digits: int = 3) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def _rounded_row(row: dict[str, Any]) -> dict[str, Any]:
    """A timeline row with its latencies to the microsecond (the HDR buckets' edges are binary fractions)."""
    return {k: _r(v) if k.endswith("_ms") else v for k, v in row.items()}


def latency_doc(sel: Selection) -> LatencyDoc:
    values: dict[str, float | None] = {k: _r(sel.percentile(p)) if sel.requests else None for k, p in LATENCY_POINTS}
    values.update(max=_r(sel.max_ms), min=_r(sel.min_ms), mean=_r(sel.mean_ms))
    return LatencyDoc.model_validate(values)


def first_image_doc(sel: Selection) -> FirstImageDoc | None:
    """None when nothing streamed: a report shows the figure only where it was measured."""
    f = sel.first_image
    if not f.count:
        return None
    values: dict[str, float | None] = {k: _r(f.percentile(p)) for k, p in LATENCY_POINTS}
    values.update(max=_r(f.max_ms), min=_r(f.min_ms), mean=_r(f.mean_ms))
    return FirstImageDoc(samples=f.count, ms=LatencyDoc.model_validate(values))


def threshold_doc(r: ThresholdResult) -> ThresholdDoc:
    t = r.threshold
    m = r.margin
    return ThresholdDoc(
        key=t.key, label=t.label(), metric=t.metric, aggregation=t.aggregation, expression=t.expression(),
        filters=dict(t.filters), op=t.op, limit=t.value, unit=r.unit, observed=_r(r.observed, 6),
        samples=r.samples, verdict=r.verdict,  # type: ignore[arg-type]
        detail=r.detail, abort_on_fail=t.abort_on_fail, needed_samples=r.needed_samples,
        margin=MarginDoc(amount=round(m.amount, 6), unit=m.unit, percent=_r(m.percent, 3), words=m.words)
        if m is not None else None,
        interval=interval_doc(r.interval, 6 if t.unit == "" else 3), more_samples=r.more_samples, slo_ms=t.slo_ms,
        baseline=t.baseline, allowance=t.allowance or None, provider_side=threshold_side_doc(r))


def threshold_side_doc(r: ThresholdResult) -> ThresholdSideDoc | None:
    if r.provider_observed is None or r.provider_samples is None:
        return None
    a = r.attribution
    return ThresholdSideDoc(observed=round(r.provider_observed, 3), samples=r.provider_samples,
                            gap=_r(r.observed - r.provider_observed, 3) if r.observed is not None else None,
                            attribution=a.kind if a is not None else None,  # type: ignore[arg-type]
                            attribution_text=a.text if a is not None else None)


def interval_doc(i: Interval | None, digits: int = 3) -> IntervalDoc | None:
    if i is None:
        return None
    return IntervalDoc(low=_r(i.low, digits) if i.low is not None else None,
                       high=_r(i.high, digits) if i.high is not None else None,
                       level=i.level, method=i.method)  # type: ignore[arg-type]


def goodput_objective(results: Sequence[ThresholdResult]) -> tuple[float, str] | None:
    """The latency objective goodput is reported against: a goodput threshold's own, else the SLA's tightest
    run-wide latency ceiling on a percentile (p(99) < 600 -> 600 ms)."""
    for r in results:
        if r.threshold.slo_ms is not None:
            return r.threshold.slo_ms, f"the threshold {r.threshold.key}"
    ceilings = [r.threshold for r in results if r.threshold.metric == "latency" and not r.threshold.filters
                and r.threshold.op in ("<", "<=") and r.threshold.aggregation in ("p", "med", "max")
                and r.threshold.baseline is None]
    if not ceilings:
        return None
    t = min(ceilings, key=lambda c: c.value)
    return t.value, f"the SLA's latency limit {t.aggregation_text()} {t.op} {t.value:g} ms"


def _goodput(recorder: Recorder, sel: Selection, slo: tuple[float, str] | None,
             filters: tuple[tuple[str, str], ...]) -> GoodputDoc | None:
    if slo is None:
        return None
    good = goodput_count(recorder, filters, slo[0])
    scheduled = sel.requests + sel.dropped
    return GoodputDoc(slo_ms=slo[0], basis=slo[1], requests=good, rate=_r(good / scheduled, 6) if scheduled else None,
                      rps=_r(good / sel.window_s) if sel.window_s > 0 else None)


def describe_scenario(s: Scenario) -> ScenarioDoc:
    return ScenarioDoc(name=s.name, description=s.description, source=s.source, load_model=s.load.KIND,
                       planned_s=s.duration_s, min_samples=s.min_samples, confidence=s.gate.confidence.level,
                       inconclusive=s.gate.confidence.inconclusive,  # type: ignore[arg-type]
                       stages=[StageWindow(name=n, start_s=round(a, 3), end_s=round(b, 3))
                               for n, a, b in s.load.windows()])


def describe_target(t: Target) -> TargetDoc:
    return TargetDoc(name=t.name, api=t.api, base_url=t.base_url, model=t.model)


def describe_load(s: Scenario) -> LoadDoc:
    return LoadDoc(model=s.load.KIND, peak_users=s.load.peak_users, **s.load.report())


def describe_mock(s: Scenario, url: str | None, embedded: bool) -> MockDoc | None:
    if not url:
        return None
    return MockDoc(url=url, embedded=embedded, seed=s.mock.seed, latency_scale=s.mock.latency_scale,
                   set=list(s.mock.sets))


def iso_utc(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_summary(*, scenario: ScenarioDoc, target: TargetDoc, recorder: Recorder, verdict: Verdict,
                  health: HealthReport | None, run: RunDoc, load: LoadDoc, started_at: datetime, duration_s: float,
                  mock: MockDoc | None = None, actions: Sequence[ActionDoc] = (), batches: BatchDoc | None = None,
                  notes: Sequence[str] = (), expected_latency: Mapping[str, float | str] | None = None,
                  files: Mapping[str, str] | None = None, report_dir: str = "",
                  baseline: Baseline | None = None, provider_side: ProviderSideDoc | None = None) -> Summary:
    total = recorder.select()
    slo = goodput_objective(verdict.results)
    stages = []
    for name, lo, hi in recorder.stages:
        sel = recorder.select({"stage": name})
        good = _goodput(recorder, sel, slo, (("stage", name),))
        stages.append(StageDoc(name=name, start_s=round(lo, 3), end_s=round(hi, 3), requests=sel.requests,
                               failures=sel.failures, dropped=sel.dropped, rps=_r(sel.rps),
                               latency_ms=latency_doc(sel), first_image=first_image_doc(sel),
                               goodput_rate=good.rate if good else None, goodput_rps=good.rps if good else None))
    all_notes = list(notes)
    if total.clamped:
        all_notes.append(f"{total.clamped} latencies above one hour were recorded as one hour")
    summary = Summary(
        scenario=scenario, target=target, started_at=iso_utc(started_at), duration_s=round(duration_s, 3),
        verdict=verdict.status,  # type: ignore[arg-type]
        exit_code=int(verdict.exit_code), passed=verdict.passed,
        reasons=[ReasonDoc(kind=r.kind, text=r.text) for r in verdict.reasons],
        thresholds=[threshold_doc(r) for r in verdict.results],
        requests=total.requests, failures=total.failures, dropped=total.dropped,
        success_rate=_r(total.success_rate, 6), attempts=total.attempts,
        retries=max(0, total.attempts - total.requests), failovers=total.failovers,
        latency_ms=latency_doc(total), first_image=first_image_doc(total), rps=_r(total.rps),
        status_codes=dict(sorted(total.status_codes.items())),
        goodput=_goodput(recorder, total, slo, ()),
        peak_users=recorder.peak_users,
        cost=CostDoc(usd=_r(total.cost_usd, 6), images=total.images,
                     per_image_usd=_r(total.cost_usd / total.images, 6) if total.images else None),
        stages=stages,
        generator=GeneratorDoc(saturated=bool(health and health.saturated),
                               reasons=list(health.reasons) if health else [],
                               figures=health.figures() if health else {}),
        run=run, load=load, mock=mock, actions=list(actions), batches=batches, notes=all_notes,
        timeline=[TimelineRow.model_validate(_rounded_row(row)) for row in recorder.timeline()],
        latency_distribution=[(p, _r(v)) for p, v in total.distribution()],
        expected_latency=({k: round(v, 6) if isinstance(v, float) else v for k, v in expected_latency.items()}
                          if expected_latency is not None else None),
        files=dict(files or {}), report_dir=report_dir, provider_side=provider_side)
    if baseline is not None:
        summary.baseline = compare(summary, baseline)
    return summary
