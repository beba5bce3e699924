"""Per-key request rate limits: a token bucket, answered the way clients expect.

Every call learns the key's limit, remaining budget and time to a full bucket
(the x-ratelimit-* headers); a call that finds the bucket empty is refused with
the wait until the next token (Retry-After). Rate limits run on the wall clock:
`--latency-scale` does not speed them up.
"""

from __future__ import annotations

from ..settings import Settings
from .base import Behaviour, Call, Kind, Outcome, Proceed, RateInfo

MAX_TRACKED_KEYS = 100_000


class RateLimit(Behaviour):
    name = "rate_limit"

    def __init__(self, settings: Settings, counts: str = "requests") -> None:
        self.settings = settings
        self.per_image = counts == "images"   # an images-per-minute limit: n images spend n tokens
        self.buckets: dict[str, list[float]] = {}   # key -> [tokens, last refill time]

    async def handle(self, call: Call, proceed: Proceed) -> Outcome:
        s = self.settings
        rate = s.requests_per_minute / 60.0
        cap = float(s.burst)
        now = call.received_at
        bucket = self.buckets.get(call.key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_KEYS:
                self._forget_full(now, rate, cap)
            bucket = self.buckets[call.key] = [cap, now]
        tokens = min(cap, bucket[0] + (now - bucket[1]) * rate)
        cost = float(call.n) if self.per_image else 1.0
        # A request for more images than the bucket holds goes once the bucket is full, and leaves
        # it in debt: otherwise it could never be served, whatever the client waited.
        allowed = tokens >= min(cost, cap)
        if allowed:
            tokens -= cost
        bucket[0], bucket[1] = tokens, now
        call.rate = RateInfo(limit=int(round(s.requests_per_minute)), remaining=max(0, int(tokens)),
                             reset_s=(cap - tokens) / rate)
        if not allowed:
            return Outcome(Kind.RATE_LIMITED, retry_after_s=(min(cost, cap) - tokens) / rate)
        return await proceed()

    def _forget_full(self, now: float, rate: float, cap: float) -> None:
        # A full bucket carries no state worth keeping: a new one starts full too.
        full_after = cap / rate
        self.buckets = {k: b for k, b in self.buckets.items() if now - b[1] < full_after}
