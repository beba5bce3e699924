"""Every bound the mock puts on what a client can make it hold or do: the one list README's "Limits"
section mirrors.

Nothing a client sends may grow the server's memory without bound or hold its event loop: sizes are
capped where they are read, per-key state is a bounded table, connections that stop talking are
closed, and admin values stay in ranges the behaviours can serve.
"""

from __future__ import annotations

# --- HTTP framing (aiohttp's parser; a request past these is a 400 before any handler runs) ---
MAX_LINE_BYTES = 8190          # the request line
MAX_HEADER_BYTES = 8190        # one header field
MAX_HEADERS = 128              # header fields per request

# --- Request bodies ---
DEFAULT_MAX_BODY_MB = 16.0     # --max-body-mb; a larger body is a 413 in the API's shape
MAX_BODY_MB = 256.0            # the largest --max-body-mb accepted
ADMIN_MAX_BODY_BYTES = 64 * 1024   # an admin PATCH is a few settings

# --- Connections (seconds; --idle-timeout, --header-timeout, --body-timeout) ---
IDLE_TIMEOUT_S = 75.0          # a connection with no request in progress (new or kept alive), like nginx
HEADER_TIMEOUT_S = 20.0        # from a request's first byte to the end of its headers
BODY_TIMEOUT_S = 30.0          # from the end of the headers to the end of the body
# A handler that is answering (a slow generation, a queue wait) is never timed out: that is the answer.

# --- Per-key state, per provider ---
MAX_RATE_LIMIT_KEYS = 100_000  # token buckets kept; past this the least recently used is forgotten
MAX_KEY_POOLS = 100_000        # keys with calls running or queued under per-key capacity
MAX_KEY_BYTES = 128            # a longer key is tracked by its 64-bit digest, not its text

# --- Caches ---
KEY_CACHE_ENTRIES = 10_000     # Authorization headers remembered per API, with the good key in each
KEY_CACHE_HEADER_BYTES = 256   # a longer header is parsed every time, never remembered

# --- Admin settings: (lowest, highest) each accepts, from the admin API, --set or a profile ---
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "error_rate": (0.0, 1.0),
    "latency_multiplier": (0.0, 1000.0),
    "requests_per_minute": (1 / 60, 1_000_000.0),   # one request an hour .. about 16,700 a second
    "burst": (1, 1_000_000),
    "slots": (1, 10_000),
    "queue": (0, 100_000),
    "per_key_slots": (0, 1_000),                     # 0: no per-key limit
    "per_key_queue": (0, 10_000),
}
WHOLE_SETTINGS = frozenset({"burst", "slots", "queue", "per_key_slots", "per_key_queue"})
