"""The request context: what the suite's users hand to the recorder with each Locust request.

A Locust `request` event carries a `context`; the suite's users put one of these in it, so the
recorder reads typed fields instead of guessing at a dict. A request from a plain Locust client
(a team's own locustfile) carries none and is recorded from the event alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    target: str                  # the target's name (a provider of the mock, or a base URL)
    status: int | str            # the HTTP status that decided it, or "timeout", "connection_error", ...
    cost_usd: float = 0.0        # as billed, summed over the generation's attempts
    attempts: int = 1            # HTTP attempts the generation took (retries included)
    failover: bool = False       # the relay answered from another model than asked
    use_case: str = ""           # product_mockup, lifestyle, abandoned_cart
    request_id: str = ""         # the correlation id its attempts carried (x-request-id, with ".N" per attempt)
    images: int = 0              # images the answer carried
    first_image_ms: float | None = None   # streamed: when the first image (partial or whole) arrived, from the start


__all__ = ["RequestContext"]
