"""Both ends side by side, as every report shows them: the client's P50/P99 against the provider side's,
and the gap between (the generator's, the network's, or a gateway's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..summary import ProviderSideDoc, ThresholdSideDoc

HEADER = ("Selection", "Client p50", "Provider p50", "Gap p50", "Client p99", "Provider p99", "Gap p99")


def _ms(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+,.1f}" if signed else f"{x:,.1f}"


# A failed ceiling's owner, in a report's words (loadtest.attribution's kinds).
WHOSE = {"target": "the target's", "mock_late": "the mock's own lateness", "generator": "the generator's",
         "between": "between the two ends", "undecided": "undecided"}


def threshold_words(side: ThresholdSideDoc | Mapping[str, Any] | None) -> str:
    """A latency threshold's provider-side figure beside the client's: "119.0 ms, gap +610.0 ms: the
    generator's" (empty without one)."""
    if side is None:
        return ""
    d = side.model_dump() if isinstance(side, ThresholdSideDoc) else side
    text = f"{_ms(d.get('observed'))} ms"
    if d.get("gap") is not None:
        text += f", gap {_ms(d.get('gap'), True)} ms"
    whose = WHOSE.get(str(d.get("attribution")))
    return text + (f": {whose}" if whose else "")


def rows(side: ProviderSideDoc) -> list[tuple[str, ...]]:
    """One row per selection (the run, then each stage), in ms."""
    return [(r.name, _ms(r.client_p50_ms), _ms(r.provider_p50_ms), _ms(r.gap_p50_ms, True), _ms(r.client_p99_ms),
             _ms(r.provider_p99_ms), _ms(r.gap_p99_ms, True)) for r in side.side_by_side]


def caption(side: ProviderSideDoc) -> str:
    """Where the provider figures come from and how much of the client's traffic they saw."""
    if side.error:
        return f"provider side not read: {side.error}"
    who = ", ".join(side.providers_compared) or "every provider"
    text = f"provider side: {side.requests:,} answers recorded by {who} at {side.url}"
    m = side.matched
    if m is not None and m.matched_share is not None:
        if m.method != "correlation id":
            how = f"{m.provider_requests:,} answers for {m.client_attempts:,} attempts (counts only)"
        elif (m.matched_requests or 0) > m.client_requests:
            # Ids the provider saw that the client never recorded: requests still in flight when the run stopped.
            extra = (m.matched_requests or 0) - m.client_requests
            how = (f"{m.client_requests:,} generations matched by correlation id, and {extra:,} more the client "
                   "never recorded (in flight at the stop)")
        else:
            how = f"{m.matched_requests:,} of {m.client_requests:,} generations matched by correlation id"
        text += f"; {how} ({m.matched_share:.1%})"
    return text
