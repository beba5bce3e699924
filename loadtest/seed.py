"""The seed's published figures (../shared/seed/FIGURES.md), kept as published, in one place.

The seed is the benchmark write-up the simulation is calibrated to. Its figures are claims,
not facts: `compare` and `cost` set them beside what the suite measures and say where they
contradict each other.
"""

from __future__ import annotations

# "Latency analysis (ms)": workload -> target -> figure (req/s for the sustained row).
LATENCY_TABLE: dict[str, dict[str, float]] = {
    "single_p50": {"midjourney-v7": 3200, "dall-e-4": 4100, "imagen-4": 2800, "relay": 42},
    "single_p99": {"midjourney-v7": 8700, "dall-e-4": 11300, "imagen-4": 6400, "relay": 89},
    "batch10_per_image": {"midjourney-v7": 2100, "dall-e-4": 3200, "imagen-4": 1900, "relay": 38},
    "burst847_peak": {"midjourney-v7": 14200, "dall-e-4": 19800, "imagen-4": 11600, "relay": 67},
    "sustained_rps": {"midjourney-v7": 28, "dall-e-4": 22, "imagen-4": 34, "relay": 1200},
}

# "Per-model prices used by the seed's client" and the relay's prices (USD per 1024x1024 image).
MODEL_PRICES = {"midjourney-v7": 0.08, "midjourney-v7-pro": 0.15, "midjourney-v7-turbo": 0.04,
                "dall-e-4": 0.06, "dall-e-4-flash": 0.02, "imagen-4": 0.08, "imagen-4-enterprise": 0.12}
RELAY_PRICES = {"midjourney-v7": 0.08, "dall-e-4": 0.05}

# "Monthly cost (USD)": images per month -> column -> USD, and the published savings.
MONTHLY = {
    10_000: {"midjourney-v7": 800, "dall-e-4": 600, "imagen-4": 700, "relay": 120},
    100_000: {"midjourney-v7": 8_000, "dall-e-4": 6_000, "imagen-4": 7_000, "relay": 1_100},
    1_000_000: {"midjourney-v7": 80_000, "dall-e-4": 60_000, "imagen-4": 70_000, "relay": 10_000},
}
SAVINGS = {10_000: 0.83, 100_000: 0.85, 1_000_000: 0.86}
DIRECT = ("midjourney-v7", "dall-e-4", "imagen-4")
# The monthly relay column is headed "(¥1=$1 rate)": a balance bought in yuan at par instead of
# the market's ~7.3 yuan to the dollar (the seed's own "7.3x further").
EXCHANGE_FACTOR = 7.3
