"""The seed's "Batch 10, average per image" row, read two ways, and the per-extra-image cost it implies.

The seed's comparison names each provider's batching (an async queue for Midjourney, native async
for DALL-E, Vertex AI batch for Imagen), so its batch row can be read two ways:

- **semaphore**: ten requests of one image sent at once through a semaphore of ten (the seed's
  `batch_generate`); a batch's wall time is the slowest of the ten (Midjourney: ten jobs through an
  account's three running slots).
- **native**: the provider's own batching. OpenAI and the relay take n = 10 in one request; Vertex's
  `sampleCount` stops at 4, so ten images are three requests (4, 4, 2); Midjourney's IMAGINE is a
  grid of four, so ten images are three jobs (12 images, 10 kept). The requests of a batch go
  together, as the seed's batch goes together.

A request of m images takes one draw of the provider's latency plus `per_extra_image` (k) of a
fresh draw for each further image (mockprovider's latency behaviour), so one request of ten has a
mean of `mean x (1 + 9k)` and the seed's per-image figure B gives `k = (10 B / mean - 1) / 9`, the
way the slots come from the sustained row (by the mean service time, since the row is an
average). Where a provider caps images per request, a batch's wall time is the slowest of its
requests (or their sum, one after another); that has no closed form, so it is simulated with the
mock's own clipped log-normal, common random numbers making the solve for k exact and monotone.
Midjourney's grid is one draw whatever k is: its grid's four images cost one grid's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mockprovider.profile import LatencySpec, Profile

from .apioptions import DEFAULT_FAMILY
from .calibrate import burst_finish_times
from .clients import CLIENTS
from .scenario import Target

BATCH = 10
K_MAX = 3.0          # beyond this an extra image would cost three fresh requests: no reading is that
REPS = 20_000        # batches simulated per figure: the mean per image to about 0.3 % (sigma 0.43, ten draws)
SEED = 1


@dataclass(frozen=True)
class Reading:
    """One way of sending ten images: the requests' sizes (images each, in latency draws) and how many run at
    once (a provider's per-account slots, or the batch's own requests)."""
    name: str
    sizes: tuple[int, ...]     # draws per request: m images take 1 + k (m - 1) draws; a grid is one draw
    slots: int                 # requests in flight at once
    words: str


@dataclass
class Calibration:
    target: str
    published_ms: float
    mean_ms: float
    p50_ms: float
    readings: list[dict[str, Any]] = field(default_factory=list)
    profile_k: float = 0.0
    fits: list[str] = field(default_factory=list)       # readings a k from 0 to 1 (or no k at all) reproduces

    @property
    def suggested_k(self) -> float | None:
        """The per-extra-image cost the row gives: the native reading's, else its one-after-another form's."""
        for name in ("native", "native, one after another"):
            entry = next((r for r in self.readings if r["reading"] == name), None)
            if name in self.fits and entry is not None and entry["k_for_published"] is not None:
                return float(entry["k_for_published"])
        return None

    def as_dict(self) -> dict[str, Any]:
        k = self.suggested_k
        return {"target": self.target, "published_per_image_ms": self.published_ms,
                "mean_service_ms": round(self.mean_ms, 1), "p50_ms": self.p50_ms,
                "one_request_of_ten_k": round(one_request_k(self.mean_ms, self.published_ms), 3),
                "one_request_of_ten_k_by_p50": round(one_request_k(self.p50_ms, self.published_ms), 3),
                "profile_per_extra_image": self.profile_k, "calibrated_per_extra_image": None if k is None
                else round(k, 2), "readings": self.readings, "fits": self.fits}


def readings(profile: Profile, model: str | None = None) -> list[Reading]:
    """The semaphore reading, the native one (requests together) and, where a cap splits the batch, the native
    one with its requests one after another."""
    api = profile.api
    per_key = profile.capacity.per_key_slots or BATCH
    family = (profile.family or DEFAULT_FAMILY) if api == "openai" else ""
    plan = CLIENTS[api].plan(Target(profile.name, api, model or profile.name, family=family), BATCH)
    grid = api == "midjourney"
    sizes = tuple(1 if grid else share.n for share in plan)
    shown = " + ".join(str(s.images) for s in plan)
    out = [Reading("semaphore", (1,) * BATCH, min(per_key, BATCH),
                   f"{BATCH} requests of one image at once"
                   + (f", {per_key} running per account" if per_key < BATCH else ""))]
    if grid:
        words = f"{len(plan)} IMAGINE grids of four at once ({shown} of {4 * len(plan)} images)"
    elif len(plan) == 1:
        words = f"one request for {BATCH} images"
    else:
        words = f"{len(plan)} requests at once ({shown} images; at most {plan[0].n} a request)"
    out.append(Reading("native", sizes, min(per_key, len(plan)), words))
    if len(plan) > 1:
        out.append(Reading("native, one after another", sizes, 1, words.replace("at once", "one after another")))
    return out


def _draws(latency: LatencySpec, columns: int, reps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(latency.mu, latency.sigma, (reps, columns)), latency.min_ms, latency.max_ms)


class Model:
    """Mean per-image time of a reading as a function of k, on fixed draws (so it is monotone in k)."""

    def __init__(self, latency: LatencySpec, reading: Reading, reps: int = REPS, seed: int = SEED) -> None:
        self.reading = reading
        columns = sum(reading.sizes)
        self.draws = _draws(latency, columns, reps, seed)
        edges = np.cumsum((0,) + reading.sizes)
        self.first = self.draws[:, edges[:-1]]                          # each request's first image
        self.extra = np.stack([self.draws[:, a + 1:b].sum(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1)
        self.depends_on_k = any(s > 1 for s in reading.sizes)

    def per_image_ms(self, k: float) -> float:
        service = self.first + k * self.extra                       # (reps, requests)
        ends = burst_finish_times(service, self.reading.slots)
        return float(ends.max(axis=1).mean()) / BATCH

    def wall_quantile_ms(self, k: float, q: float) -> float:
        """The q-quantile (0-1) of a batch's wall time at k: how long a run must last to see its batches end."""
        ends = burst_finish_times(self.first + k * self.extra, self.reading.slots)
        return float(np.quantile(ends.max(axis=1), q))

    def solve(self, target_ms: float) -> float | None:
        """The k that gives target_ms per image, or None where no k in [0, K_MAX] does."""
        if not self.depends_on_k:
            return None
        lo, hi = 0.0, K_MAX
        if self.per_image_ms(lo) > target_ms or self.per_image_ms(hi) < target_ms:
            return None
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.per_image_ms(mid) < target_ms:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


def calibrate(profile: Profile, published_ms: float, model: str | None = None) -> Calibration:
    """Each reading's k for the seed's figure, its per-image time at the profile's k, and which readings fit."""
    lat = profile.latency
    cal = Calibration(profile.name, published_ms, lat.mean_ms, lat.p50_ms, profile_k=lat.per_extra_image)
    for reading in readings(profile, model):
        m = Model(lat, reading)
        k = m.solve(published_ms)
        at_profile = m.per_image_ms(lat.per_extra_image)
        entry: dict[str, Any] = {
            "reading": reading.name, "how": reading.words, "requests": len(reading.sizes),
            "draws_per_request": list(reading.sizes), "in_flight": reading.slots,
            "k_for_published": None if k is None else round(k, 3),
            "model_per_image_ms": round(at_profile, 1),
            "bounds_per_image_ms": [round(m.per_image_ms(0.0), 1), round(m.per_image_ms(1.0), 1)],
            "arithmetic": arithmetic(reading, lat, published_ms, k, m),
        }
        cal.readings.append(entry)
        if (k is not None and k <= 1.0) or (not m.depends_on_k and _close(at_profile, published_ms)):
            cal.fits.append(reading.name)
    return cal


def one_request_k(mean_ms: float, published_ms: float, batch: int = BATCH) -> float:
    """k for one request of `batch` images whose mean wall time is batch x the published per-image figure."""
    return (batch * published_ms / mean_ms - 1) / (batch - 1)


def arithmetic(reading: Reading, lat: LatencySpec, published_ms: float, k: float | None, m: Model) -> str:
    total = BATCH * published_ms
    if reading.name == "native" and reading.sizes == (BATCH,):
        return (f"one request of {BATCH}: mean wall = {lat.mean_ms:,.0f} ms x (1 + 9k) = {total:,.0f} ms, so "
                f"k = ({total:,.0f} / {lat.mean_ms:,.0f} - 1) / 9 = {one_request_k(lat.mean_ms, published_ms):.3f}")
    lo, hi = m.per_image_ms(0.0), m.per_image_ms(1.0)
    if not m.depends_on_k:
        what = "single images: k plays no part" if reading.name == "semaphore" else "one grid each, whatever k is"
        return (f"{reading.words}, {what}; the batch's wall time is "
                f"{lo * BATCH:,.0f} ms ({lo:,.0f} ms per image) against the seed's {total:,.0f} ms "
                f"({published_ms:,.0f} per image): {'it fits' if _close(lo, published_ms) else 'no k fits'}")
    if k is None:
        return (f"{reading.words}: k from 0 to 1 gives {lo:,.0f} to {hi:,.0f} ms per image (simulated); the seed's "
                f"{published_ms:,.0f} ms would need k "
                + ("above 3" if published_ms > m.per_image_ms(K_MAX) else "below 0") + ": no k fits")
    penalty = " (more than a fresh request: no discount)" if k > 1 else ""
    return (f"{reading.words}: k from 0 to 1 gives {lo:,.0f} to {hi:,.0f} ms per image (simulated); the seed's "
            f"{published_ms:,.0f} ms needs k = {k:.3f}{penalty}")


def _close(value: float, published: float) -> bool:
    """Within 5 %: the run-to-run spread of a mean over a few dozen batches."""
    return abs(value - published) <= 0.05 * published


def summarise(cals: Sequence[Calibration]) -> str:
    """Which reading the seed's batch figures fit, in a few sentences."""
    fits = {c.target: c.fits for c in cals}
    native = [t for t, f in fits.items() if "native" in f]
    sequential = [t for t, f in fits.items() if "native, one after another" in f]
    none = [t for t, f in fits.items() if not f]
    parts = ["The seed's batch figures do not fit the semaphore reading: ten requests at once average well below a "
             "single image (the slowest of ten, divided by ten)."]
    if native:
        parts.append(f"They fit the native reading for {', '.join(native)}: one request for ten images with each "
                     "extra image at the calibrated fraction of a fresh one.")
    if sequential:
        parts.append(f"For {', '.join(sequential)}, whose requests stop at four images, the figure fits only with the "
                     "three requests one after another; sent together they would need each extra image to cost more "
                     "than a request of its own.")
    if none:
        parts.append(f"For {', '.join(none)} no reading its API allows fits: a Midjourney grid's four images take one "
                     "grid's time, so three grids (even one after another) finish far sooner than the seed's figure; "
                     "only one request of ten, which Midjourney does not take, would.")
    return " ".join(parts)
