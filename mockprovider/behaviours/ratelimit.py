"""Per-key request rate limits: a token bucket, answered the way clients expect.

Every call learns the key's limit, remaining budget and time to a full bucket
(the x-ratelimit-* headers); a call that finds the bucket empty is refused with
the wait until the next token (Retry-After). Rate limits run on the wall clock:
`--latency-scale` does not speed them up.

The buckets are a table ordered by last use, with a hard cap (limits.MAX_RATE_LIMIT_KEYS): a new key
first forgets up to two buckets that have refilled (a full bucket carries no state: a new one starts
full too), and past the cap forgets the least recently used one even if it was not full yet. That key,
if it comes back, starts with a full bucket: the one approximation, and only for a key that stayed
away while 100,000 others were seen. Every step is O(1), whatever the table holds.
"""

from __future__ import annotations

from collections import OrderedDict

from ..limits import MAX_KEY_BYTES, MAX_RATE_LIMIT_KEYS
from ..settings import Settings
from .base import Admission, Call, Kind, Outcome, RateInfo, tracked_key


class RateLimit(Admission):
    name = "rate_limit"

    def __init__(self, settings: Settings, counts: str = "requests", max_keys: int = MAX_RATE_LIMIT_KEYS) -> None:
        self.settings = settings
        self.per_image = counts == "images"   # an images-per-minute limit: n images spend n tokens
        self.max_keys = max_keys
        # key -> [tokens, last refill time], least recently used first
        self.buckets: OrderedDict[str | int, list[float]] = OrderedDict()

    def admit(self, call: Call) -> Outcome | None:
        s = self.settings
        rate = s.requests_per_minute / 60.0
        cap = float(s.burst)
        now = call.received_at
        key = call.key if len(call.key) <= MAX_KEY_BYTES else tracked_key(call.key)
        buckets = self.buckets
        bucket = buckets.get(key)
        if bucket is None:
            self._make_room(now, cap / rate)
            bucket = buckets[key] = [cap, now]
        else:
            buckets.move_to_end(key)
        tokens = min(cap, bucket[0] + (now - bucket[1]) * rate)
        cost = float(call.n) if self.per_image else 1.0
        # A request for more images than the bucket holds goes once the bucket is full, and leaves
        # it in debt: otherwise it could never be served, whatever the client waited.
        allowed = tokens >= min(cost, cap)
        if allowed:
            tokens -= cost
        bucket[0], bucket[1] = tokens, now
        call.rate = RateInfo(int(round(s.requests_per_minute)), max(0, int(tokens)), (cap - tokens) / rate)
        if not allowed:
            return Outcome(Kind.RATE_LIMITED, retry_after_s=(min(cost, cap) - tokens) / rate)
        return None

    def _make_room(self, now: float, full_after_s: float) -> None:
        buckets = self.buckets
        # The least recently used bucket is the first to refill: if it has not, none has.
        for _ in range(2):
            if not buckets:
                return
            oldest = next(iter(buckets.values()))
            if now - oldest[1] < full_after_s:
                break
            buckets.popitem(last=False)
        while len(buckets) >= self.max_keys:
            buckets.popitem(last=False)

    def reset(self) -> None:
        """Every key starts again with a full bucket."""
        self.buckets.clear()
