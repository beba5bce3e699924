"""A [sut] gateway's figures as every report shows them (summary.md, junit.xml, report.html): the run's
figures as (name, value) rows, and one row per stage."""

from __future__ import annotations

from ..summary import GatewayDoc

STAGE_HEADER = ("Stage", "Overhead p50 (ms)", "Overhead p99 (ms)", "Overhead by", "Calls per request", "Most calls",
                "Upstream status", "Failovers", "Silent 200s", "Drift", "Upstream cost")


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.2f}"


def _mix(mix: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in mix.items()) or "none"


def _count(x: int | None, missing: str) -> str:
    return missing if x is None else f"{x:,}"


def figure_rows(g: GatewayDoc) -> list[tuple[str, str]]:
    """(figure, value) for the whole run, in words a reader takes in at a glance."""
    o, calls = g.overhead_ms, g.upstream_calls_per_request
    if o.method == "by_request":
        method = f"request by request, {o.matched_requests or 0:,} matched by correlation id"
    else:
        method = "client p(N) minus provider p(N)"
        if o.matched_share is not None:
            method += (f"; only {o.matched_share:.0%} of the requests' ids reached the upstream call that "
                       f"answered them")
    mean = "n/a" if calls.mean is None else f"{calls.mean:.3f}"
    most = "n/a (the gateway did not pass the correlation id on)" if calls.max is None else f"{calls.max:,}"
    cost = _usd(g.upstream_cost_usd)
    if g.first_time_cost_usd is not None:
        cost += f" against {_usd(g.first_time_cost_usd)} had every request succeeded first time on {g.primary}"
    drift = ("n/a (no size or format to compare)" if g.capability_drift is None else
             f"{g.capability_drift:,} answers of another size or format than {asked_shape(g)}")
    return [
        ("Gateway", f"{g.kind} at {g.url}; primary {g.primary}"),
        ("Overhead p50 / p90 / p99 (ms)", f"{_ms(o.p50)} / {_ms(o.p90)} / {_ms(o.p99)} ({method})"),
        ("Upstream calls per request", f"mean {mean}, most {most} ({calls.upstream_requests:,} calls for "
                                       f"{calls.client_requests:,} requests)"),
        ("Upstream status mix", _mix(calls.status_mix)),
        ("Failovers", f"{g.failovers:,}; served by {_mix(g.served_by)}"),
        ("Silent successes", f"{g.silent_success:,} HTTP 200s with fewer images than asked (counted as failures)"),
        ("Upstream cost", cost),
        ("Capability drift", drift),
        ("Orphaned upstream calls", orphaned_text(g)),
    ]


def asked_shape(g: GatewayDoc) -> str:
    """What the client asked for, as a capability drift is measured against: "1024x1024 png"."""
    return " ".join(x for x in (g.asked_size, g.asked_format) if x) or "asked"


def orphaned_text(g: GatewayDoc) -> str:
    if g.orphaned_upstream_calls is None:
        return "n/a (raw entries not read)"
    watched = "" if g.orphan_watch_s is None else f", watched {g.orphan_watch_s:.1f} s"
    gave_up = ("n/a without correlation ids" if g.orphaned_after_give_up is None
               else f"{g.orphaned_after_give_up:,}")
    return (f"{g.orphaned_upstream_calls:,}: {g.orphaned_after_end or 0:,} after the run had ended{watched}; "
            f"{gave_up} for requests their client had already given up")


def stage_rows(g: GatewayDoc) -> list[tuple[str, ...]]:
    return [(s.name, _ms(s.overhead_ms.get("p50")), _ms(s.overhead_ms.get("p99")),
             "request" if s.overhead_method == "by_request" else "percentile",
             "n/a" if s.calls_mean is None else f"{s.calls_mean:.3f}", _count(s.calls_max, "n/a"),
             _mix(s.status_mix), f"{s.failovers:,}", f"{s.silent_success:,}", _count(s.capability_drift, "n/a"),
             _usd(s.upstream_cost_usd)) for s in g.stages]


def properties(g: GatewayDoc) -> list[tuple[str, float | int | str | None]]:
    """Flat name -> value pairs, for JUnit's <properties>."""
    o, calls = g.overhead_ms, g.upstream_calls_per_request
    return [("gateway.kind", g.kind), ("gateway.url", g.url), ("gateway.overhead_p50_ms", o.p50),
            ("gateway.overhead_p90_ms", o.p90), ("gateway.overhead_p99_ms", o.p99),
            ("gateway.overhead_method", o.method), ("gateway.overhead_matched_requests", o.matched_requests),
            ("gateway.upstream_calls_per_request_mean", calls.mean),
            ("gateway.upstream_calls_per_request_max", calls.max),
            ("gateway.upstream_requests", calls.upstream_requests), ("gateway.failovers", g.failovers),
            ("gateway.silent_success", g.silent_success), ("gateway.upstream_cost_usd", g.upstream_cost_usd),
            ("gateway.first_time_cost_usd", g.first_time_cost_usd),
            ("gateway.capability_drift", g.capability_drift),
            ("gateway.orphaned_upstream_calls", g.orphaned_upstream_calls),
            ("gateway.orphaned_after_end", g.orphaned_after_end),
            ("gateway.orphaned_after_give_up", g.orphaned_after_give_up), ("gateway.orphan_watch_s", g.orphan_watch_s)]


__all__ = ["STAGE_HEADER", "figure_rows", "orphaned_text", "properties", "stage_rows"]
