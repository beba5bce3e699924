"""The request context: what the suite's users hand to the recorder with each Locust request.

A Locust `request` event carries a `context`; the suite's users put one of these in it, so the
recorder reads typed fields instead of guessing at a dict. A request from a plain Locust client
(a team's own locustfile) carries none and is recorded from the event alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The suite's clients' correlation ids (loadtest.clients.base): "lt<pid hex>-<n>.<attempt>"; the part before
# the attempt, the generation, is the request, whatever its retries.
SUITE_ID = re.compile(r"^(lt[0-9a-f]+-\d+)\.\d+$")


def generation_of(correlation_id: str) -> str:
    """The request a correlation id belongs to: the suite's generation, or the id itself if it is not the suite's."""
    m = SUITE_ID.match(correlation_id)
    return m.group(1) if m else correlation_id


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
