"""Write a synthetic flash-sale arrival trace: a ramp, spikes, a long tail (scenarios/flash_sale_trace.csv).

    python examples/synthesize_sale_trace.py > scenarios/flash_sale_trace.csv

Arrivals are an inhomogeneous Poisson process (seeded, so the file is reproducible) under a rate
that ramps from 10 to 200 requests/s over 15 s as the sale opens, holds about 200/s for 20 s with
three flash-deal spikes to 600/s, then decays towards 15/s with a 12 s time constant for 45 s. The
use-case mix moves through the sale: product shots first, more personalised abandoned-cart banners
in the tail. Replace it with your own sale: one line per request, its start time and, if you like,
its use case and model (loadtest/trace.py names the columns).
"""

from __future__ import annotations

import math
import sys

import numpy as np

RAMP_S, SPIKES_S, TAIL_S = 15.0, 20.0, 45.0
SPIKES = ((3.0, 2.0), (10.0, 1.5), (16.0, 2.0))     # (start within the spike phase, length) at 600/s
MIX = {"ramp": (0.6, 0.3, 0.1), "spikes": (0.5, 0.3, 0.2), "tail": (0.3, 0.2, 0.5)}
CASES = ("product_mockup", "lifestyle", "abandoned_cart")


def rate(t: float) -> float:
    if t < RAMP_S:
        return 10.0 + (200.0 - 10.0) * t / RAMP_S
    if t < RAMP_S + SPIKES_S:
        x = t - RAMP_S
        return 600.0 if any(a <= x < a + d for a, d in SPIKES) else 200.0
    return 15.0 + 185.0 * math.exp(-(t - RAMP_S - SPIKES_S) / 12.0)


def phase(t: float) -> str:
    return "ramp" if t < RAMP_S else "spikes" if t < RAMP_S + SPIKES_S else "tail"


def main() -> None:
    rng = np.random.default_rng(20261127)
    end, peak = RAMP_S + SPIKES_S + TAIL_S, 600.0
    # Thinning (Lewis and Shedler): candidates at the peak rate, each kept with probability rate(t) / peak.
    t, out = 0.0, sys.stdout
    out.write("# synthetic flash sale: ramp 0-15 s, spikes 15-35 s, tail 35-80 s (examples/synthesize_sale_trace.py)\n")
    out.write("t,use_case\n")
    while True:
        t += rng.exponential(1.0 / peak)
        if t >= end:
            break
        if rng.random() * peak < rate(t):
            case = CASES[int(rng.choice(3, p=MIX[phase(t)]))]
            out.write(f"{t:.3f},{case}\n")


if __name__ == "__main__":
    main()
