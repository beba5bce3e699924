"""Behaviours: the small units a provider's simulated behaviour is built from.

Each implements `Behaviour` (see base.py): latency, capacity (slots and queue),
rate limit, faults and outage, and a relay's failover.
"""

from .base import Admission, Behaviour, Call, Chain, Kind, Outcome, Phase, RateInfo
from .capacity import Capacity, SlotPool
from .failover import Failover
from .faults import Faults, Outage
from .latency import Latency
from .ratelimit import RateLimit

__all__ = ["Admission", "Behaviour", "Call", "Chain", "Kind", "Outcome", "Phase", "RateInfo", "Capacity",
           "SlotPool", "Failover", "Faults", "Outage", "Latency", "RateLimit"]
