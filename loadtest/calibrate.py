"""python -m loadtest calibrate: fit a provider profile to what a team observed, and write it as TOML.

Inputs, one of:
  --p50 MS --p99 MS            two quantiles, as a dashboard or a provider's status page gives them
  --latencies FILE             raw latencies in ms: one a line, or separated by commas/spaces
  --locust-csv FILE            Locust's PREFIX_stats.csv (a row's "50%"/"99%" columns) or
                               PREFIX_stats_history.csv (the final row, or the rows over time)
plus, for capacity, --sustained-rps N and/or --peak-ms MS (the median of a burst of --burst N).

A file measured by `loadtest run` has a summary.json beside it. When that says the run proved
nothing (a saturated generator, a run stopped early, too few samples, ...), calibrate refuses the
file (exit 2) unless --accept-invalid-run; a run whose generator was saturated but whose breach
stood anyway is fitted with a warning.

Latency is a log-normal, as the mock draws it: mu = ln P50, sigma = ln(P99/P50) / z(0.99).
From raw samples the default estimator is the same quantile fit on the sample median and
99th percentile: profiles are specified by P50/P99 and the SLA is judged at P99, so a fit
that reproduces the observed P99 exactly is the useful one even when the body of the data
is not quite log-normal. The log-space fit (sigma = sd of ln x) is reported beside it, and
used when there are too few samples for the 99th percentile to mean much.

Capacity: slots = sustained req/s x mean service time (Little's law at saturation). A burst
median is checked, or solved for, by simulating N simultaneous requests on c FIFO slots.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from mockprovider.apis import APIS
from mockprovider.profile import Z99, LatencySpec, Profile, ProfileError, load_profiles

DEFAULT_BASE = {"relay": "relay", "openai": "dall-e-4", "vertex": "imagen-4", "midjourney": "midjourney-v7",
                "gemini": "gemini-2.5-flash-image"}
BURST = 847
# Below this many samples the 99th percentile rests on fewer than ten points above it.
MIN_QUANTILE_SAMPLES = 1000
# z of the 0.1 % and 99.99 % points: clip bounds that cut off less than that of the fitted distribution.
Z_LOW, Z_HIGH = 3.09, 3.72
# A burst median within this of the observed peak counts as consistent with it.
CONSISTENT = 0.15


class CalibrationError(ValueError):
    """Input that cannot be fitted; main() prints it and exits 2."""


@dataclass
class Observed:
    p50_ms: float
    p99_ms: float
    source: str
    samples: int = 0
    estimator: str = "quantiles"
    notes: list[str] = field(default_factory=list)
    sigma_logfit: float | None = None
    sigma_quantile: float | None = None


# --- reading -------------------------------------------------------------------------


def read_latencies(path: str | Path) -> np.ndarray:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise CalibrationError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{p}: cannot read it: {exc}") from None
    values: list[float] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for token in line.replace(",", " ").replace(";", " ").split():
            try:
                v = float(token)
            except ValueError:
                raise CalibrationError(f"{p}:{lineno}: not a number: {token!r} (expected latencies in ms)") from None
            if not math.isfinite(v) or v <= 0:
                raise CalibrationError(f"{p}:{lineno}: a latency must be a positive number of ms, got {token!r}")
            values.append(v)
    if not values:
        raise CalibrationError(f"{p}: no latencies in it")
    if len(values) < 2:
        raise CalibrationError(f"{p}: one latency is not a distribution; need at least 2")
    return np.asarray(values, dtype=float)


def fit_samples(samples: np.ndarray, estimator: str = "auto", source: str = "") -> Observed:
    n = len(samples)
    logs = np.log(samples)
    p50 = float(np.median(samples))
    p99 = float(np.percentile(samples, 99))
    sigma_q = math.log(p99 / p50) / Z99
    sigma_l = float(np.std(logs, ddof=1))
    notes = []
    if estimator == "auto":
        estimator = "quantile" if n >= MIN_QUANTILE_SAMPLES else "logfit"
        if estimator == "logfit":
            notes.append(f"only {n} samples: the sample P99 rests on {max(1, n // 100)} point(s), so sigma comes "
                         "from the log-space fit (sd of ln latency)")
    if estimator == "logfit":
        p99 = p50 * math.exp(Z99 * sigma_l)
    elif abs(sigma_q - sigma_l) > 0.10 * max(sigma_l, 1e-9):
        notes.append(f"the tail is not log-normal: the quantile sigma {sigma_q:.3f} and the log-space sigma "
                     f"{sigma_l:.3f} differ by more than 10 %; the profile keeps the observed P99")
    return Observed(p50, p99, source or f"{n:,} latencies", n, estimator, notes, sigma_l, sigma_q)


def _number(row: dict[str, str], col: str, where: str) -> float:
    raw = (row.get(col) or "").strip()
    try:
        v = float(raw)
    except ValueError:
        raise CalibrationError(f"{where}: column {col!r} is {raw!r}, not a number (no requests in that row?)") from None
    if not math.isfinite(v) or v <= 0:
        raise CalibrationError(f"{where}: column {col!r} must be a positive latency, got {raw!r}")
    return v


def _row_matches(row: dict[str, str], name: str) -> bool:
    label = (row.get("Name") or "").strip()
    typed = f"{(row.get('Type') or '').strip()} {label}".strip()
    return name in (label, typed)


def read_locust_csv(path: str | Path, row_name: str = "Aggregated", skip_s: float = 0.0) -> Observed:
    """Percentiles from Locust's --csv output: PREFIX_stats.csv or PREFIX_stats_history.csv."""
    p = Path(path)
    try:
        with p.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise CalibrationError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError(f"{p}: cannot read it as CSV: {exc}") from None
    if not rows:
        raise CalibrationError(f"{p}: no rows (an empty Locust CSV)")
    if "50%" not in header or "99%" not in header:
        raise CalibrationError(f"{p}: not a Locust stats CSV: no '50%' and '99%' columns")
    mine = [r for r in rows if _row_matches(r, row_name)]
    if not mine:
        names = sorted({(r.get("Name") or "").strip() for r in rows})
        raise CalibrationError(f"{p}: no row named {row_name!r}; rows: {', '.join(names)}")
    if "Timestamp" in header:
        return _from_history(p, rows, mine, row_name, skip_s)
    row = mine[-1]
    where = f"{p} [{row_name}]"
    obs = Observed(_number(row, "50%", where), _number(row, "99%", where), f"{p.name}, row {row_name!r}",
                   int(float(row.get("Request Count") or 0)), "locust percentiles")
    _failure_note(obs, row.get("Failure Count"), row.get("Request Count"))
    return obs


def _failure_note(obs: Observed, failures: str | None, requests: str | None) -> None:
    try:
        f, n = int(float(failures or 0)), int(float(requests or 0))
    except ValueError:
        return
    if f:
        obs.notes.append(f"Locust counts failed requests' times in its percentiles: {f:,} of {n:,} failed")


def _from_history(p: Path, rows: list[dict[str, str]], mine: list[dict[str, str]], row_name: str,
                  skip_s: float) -> Observed:
    # Without --csv-full-history a history file has only Aggregated rows, and their percentile
    # columns are cumulative since the start: the last row is the whole run. With it, every
    # request name has rows too and the percentiles cover a sliding window of ~10 s, so the
    # run's figure is the request-weighted median of the windows.
    full_history = any((r.get("Name") or "").strip() != "Aggregated" for r in rows)
    usable = []
    for r in mine:
        try:
            ts = float(r["Timestamp"])
            p50, p99 = float(r["50%"]), float(r["99%"])
        except (TypeError, ValueError, KeyError):
            continue     # "N/A" before the first request
        if p50 > 0 and p99 > 0:
            usable.append((ts, p50, p99, r))
    if not usable:
        raise CalibrationError(f"{p}: no row named {row_name!r} has percentiles (every one is N/A)")
    start = usable[0][0]
    if not full_history:
        if skip_s:
            raise CalibrationError(f"{p}: --skip-s needs a history written with --csv-full-history; without it "
                                   "each row's percentiles are cumulative from the start and cannot be cut")
        ts, p50, p99, r = usable[-1]
        obs = Observed(p50, p99, f"{p.name}, final cumulative row {row_name!r}",
                       int(float(r.get("Total Request Count") or 0)), "locust percentiles (cumulative)")
        _failure_note(obs, r.get("Total Failure Count"), r.get("Total Request Count"))
        return obs
    kept = [u for u in usable if u[0] - start >= skip_s]
    if not kept:
        raise CalibrationError(f"{p}: --skip-s {skip_s:g} leaves no rows (the file covers "
                               f"{usable[-1][0] - start:.0f} s)")
    weights = np.array([max(float(u[3].get("Requests/s") or 0), 0.0) for u in kept])
    if weights.sum() <= 0:
        weights = np.ones(len(kept))
    obs = Observed(_weighted_median([u[1] for u in kept], weights), _weighted_median([u[2] for u in kept], weights),
                   f"{p.name}, {len(kept)} windows of {row_name!r} from t={kept[0][0] - start:.0f} s",
                   int(float(kept[-1][3].get("Total Request Count") or 0)),
                   "locust percentiles (windows, weighted median)")
    obs.notes.append("the windows' percentiles are combined assuming the load was steady over them; "
                     "use --skip-s to leave out a ramp-up")
    return obs


def _weighted_median(values: Sequence[float], weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = np.asarray(values, dtype=float)[order], weights[order]
    cum = np.cumsum(w)
    return float(v[np.searchsorted(cum, cum[-1] / 2)])


# --- capacity -------------------------------------------------------------------------


def service_draws(latency: LatencySpec, n: int, reps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(latency.mu, latency.sigma, (reps, n)), latency.min_ms, latency.max_ms)


def burst_median(service: np.ndarray, slots: int) -> float:
    """Mean over replications of the median completion time of n requests arriving together on FIFO slots."""
    return float(np.median(burst_finish_times(service, slots), axis=1).mean())


def burst_finish_times(service: np.ndarray, slots: int) -> np.ndarray:
    """When each of n requests arriving together finishes on FIFO slots: (replications, n) ms."""
    reps, n = service.shape
    c = max(1, min(slots, n))
    free = service[:, :c].copy()
    ends = np.empty_like(service)
    ends[:, :c] = free
    rows = np.arange(reps)
    for i in range(c, n):
        j = free.argmin(axis=1)          # the slot that frees first takes the next in line
        end = free[rows, j] + service[:, i]
        free[rows, j] = end
        ends[:, i] = end
    return ends


def solve_slots(service: np.ndarray, peak_ms: float) -> int:
    """Slots whose burst median is nearest peak_ms (the median falls as slots grow, on the same draws)."""
    n = service.shape[1]
    if burst_median(service, n) > peak_ms * (1 + CONSISTENT):
        raise CalibrationError(f"--peak-ms {peak_ms:g} is below the median of the latency itself "
                               f"({burst_median(service, n):.0f} ms with every request served at once): a burst "
                               "cannot finish faster than idle requests")
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if burst_median(service, mid) <= peak_ms:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and abs(burst_median(service, lo - 1) - peak_ms) < abs(burst_median(service, lo) - peak_ms):
        return lo - 1
    return lo


def slots_for_rps(latency: LatencySpec, rps: float) -> int:
    return max(1, round(rps * latency.mean_ms / 1000.0))


# --- the profile ------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    base: str
    api: str
    latency: LatencySpec
    slots: int
    queue: int
    capacity_source: str
    observed: Observed
    table: dict[str, Any]
    lines: list[str]


def _ms(x: float) -> float:
    return round(x, 2) if x < 100 else round(x, 1)


def fitted_latency(obs: Observed, base: Profile, min_ms: float | None, max_ms: float | None) -> LatencySpec:
    p50, p99 = obs.p50_ms, obs.p99_ms
    sigma = math.log(p99 / p50) / Z99
    # Keep the base's clip bounds unless they would cut into the fitted distribution.
    lo = min_ms if min_ms is not None else min(base.latency.min_ms, p50 * math.exp(-Z_LOW * sigma))
    hi = max_ms if max_ms is not None else max(base.latency.max_ms, p50 * math.exp(Z_HIGH * sigma))
    return LatencySpec(p50_ms=_ms(p50), p99_ms=_ms(p99), min_ms=math.floor(lo * 100) / 100, max_ms=math.ceil(hi),
                   per_extra_image=base.latency.per_extra_image)


def profile_table(name: str, base: Profile, api: str, latency: LatencySpec, slots: int, queue: int,
                  override: bool) -> dict[str, Any]:
    t: dict[str, Any] = {} if override else {"base": base.name}
    if api != base.api:
        t["api"] = api
    t["latency"] = {"p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms, "min_ms": latency.min_ms,
                    "max_ms": latency.max_ms, "per_extra_image": latency.per_extra_image}
    cap: dict[str, Any] = {"slots": slots, "queue": queue}
    if base.capacity.per_key_slots:
        cap.update(per_key_slots=base.capacity.per_key_slots, per_key_queue=base.capacity.per_key_queue)
    t["capacity"] = cap
    if base.relay is not None and not override:
        # `base` does not carry a relay's model list over to a copy, so it is written out.
        r = base.relay
        t["relay"] = {"models": list(r.models), "prices": dict(r.prices),
                      "failover": {m: list(f) for m, f in r.failover.items()},
                      "failover_penalty_ms": r.failover_penalty_ms}
    return {name: t}


def write_verified(table: dict[str, Any], header: str, out: Path, extra: Sequence[str], name: str) -> Profile:
    """Write beside `out`, load it as the mock would, and only then put it in place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(header + tomli_w.dumps(table))
    try:
        loaded = load_profiles([*extra, tmp])[name]
    except ProfileError as exc:
        tmp.unlink(missing_ok=True)
        raise CalibrationError(f"the fitted profile does not load: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return loaded


def calibrate(args: argparse.Namespace) -> Result:
    obs = observe(args)
    if obs.p99_ms < obs.p50_ms:
        raise CalibrationError(f"P99 ({obs.p99_ms:g} ms) is below P50 ({obs.p50_ms:g} ms)")
    try:
        profiles = load_profiles(args.profiles)
    except ProfileError as exc:
        raise CalibrationError(str(exc)) from None
    override = args.name in profiles
    base_name = args.base or (args.name if override else DEFAULT_BASE[args.api or "relay"])
    if base_name not in profiles:
        raise CalibrationError(f"--base {base_name!r} names no profile; known: {', '.join(sorted(profiles))}")
    if override and base_name != args.name:
        raise CalibrationError(f"{args.name!r} is an existing profile, so the file overrides it; it cannot also "
                               f"start from {base_name!r}. Pick a new --name, or drop --base")
    base = profiles[base_name]
    api = args.api or base.api
    if (api == "relay") != (base.api == "relay"):
        raise CalibrationError(f"--api {api} and base {base_name!r} ({base.api}): a relay profile must start from "
                               "a relay profile, and a direct one from a direct one")
    if override and api != base.api:
        raise CalibrationError(f"{args.name!r} is served as {base.api}; a profile's api cannot change in place")

    latency = fitted_latency(obs, base, args.min_ms, args.max_ms)
    lines = [f"calibrated {args.name!r} from {obs.source} ({obs.estimator}); "
             + (f"overrides the existing {args.name!r}" if override else f"base {base_name!r}, api {api}"),
             f"  latency   P50 {latency.p50_ms:g} ms, P99 {latency.p99_ms:g} ms, sigma {latency.sigma:.3f}, "
             f"mean {latency.mean_ms:.1f} ms, clipped to [{latency.min_ms:g}, {latency.max_ms:g}] ms"]
    if obs.sigma_logfit is not None:
        lines.append(f"            sigma from quantiles {obs.sigma_quantile:.3f}, from the log-space fit "
                     f"{obs.sigma_logfit:.3f} ({obs.samples:,} samples)")
    slots, queue, source = base.capacity.slots, base.capacity.queue, f"kept from {base_name!r}"
    rps_slots = slots_for_rps(latency, args.sustained_rps) if args.sustained_rps else None
    if args.peak_ms is not None:
        service = service_draws(latency, args.burst, args.reps, args.seed)
        peak_slots = solve_slots(service, args.peak_ms)
        if rps_slots is not None and args.capacity_from != "peak":
            slots, source = rps_slots, f"{args.sustained_rps:g} req/s x {latency.mean_ms / 1000:.3f} s mean service"
        else:
            slots, source = peak_slots, f"a burst of {args.burst} with median {args.peak_ms:g} ms"
        sim = burst_median(service, slots)
        off = (sim - args.peak_ms) / args.peak_ms
        verdict = "consistent" if abs(off) <= CONSISTENT else "NOT consistent"
        lines.append(f"  burst     {args.burst} at once on {slots} slots: simulated median {sim:,.0f} ms vs observed "
                     f"{args.peak_ms:,.0f} ms ({off:+.0%}, {verdict}); the peak alone implies {peak_slots} slots")
        if rps_slots is not None:
            lines.append(f"            sustained {args.sustained_rps:g} req/s implies {rps_slots} slots "
                         f"(saturation {rps_slots / (latency.mean_ms / 1000):,.0f} req/s); "
                         f"writing {slots} ({args.capacity_from if args.capacity_from != 'auto' else 'sustained'})")
        queue = max(queue, args.burst - slots)   # the burst waits rather than being refused
    elif rps_slots is not None:
        slots, source = rps_slots, f"{args.sustained_rps:g} req/s x {latency.mean_ms / 1000:.3f} s mean service"
    lines.append(f"  capacity  {slots} slots ({source}), queue {queue}; saturates near "
                 f"{slots / (latency.mean_ms / 1000):,.0f} req/s")
    lines += [f"  note      {n}" for n in obs.notes]
    if api == "relay" and args.name != "relay":
        lines.append(f"  note      the mock's relay endpoint serves the profile named 'relay'; {args.name!r} loads but "
                     "is not reachable there. Use --name relay to replace the built-in relay's figures")
    table = profile_table(args.name, base, api, latency, slots, queue, override)
    return Result(args.name, base_name, api, latency, slots, queue, source, obs, table, lines)


def run_verdict(measured: str | Path) -> tuple[str, list[str]] | None:
    """What the summary.json beside a measured file says of its run: ("invalid", reasons) when the run
    proved nothing, ("strained", reasons) when the generator was saturated yet the verdict stood,
    ("ok", []) otherwise; None when there is no summary.json beside it."""
    found = Path(measured).resolve().parent / "summary.json"
    if not found.is_file():
        return None
    try:
        doc = json.loads(found.read_text(encoding="utf-8"))
        verdict = str(doc["verdict"])
        reasons = [str(r["text"]) for r in doc.get("reasons") or [] if r.get("kind") != "breach"]
        generator = doc.get("generator") or {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return "unreadable", [f"{found} could not be read as a run summary ({exc})"]
    if verdict == "invalid":
        return "invalid", reasons or ["its verdict is invalid"]
    if generator.get("saturated"):
        return "strained", [str(r) for r in generator.get("reasons") or []] or ["the load generator was saturated"]
    return "ok", []


def check_run(measured: str | Path, accept_invalid: bool, obs: Observed) -> None:
    """Refuse a file measured in a run that proved nothing (unless told to take it), note a strained one."""
    said = run_verdict(measured)
    if said is None or said[0] == "ok":
        return
    kind, reasons = said
    why = "; ".join(reasons)
    if kind == "invalid" and not accept_invalid:
        raise CalibrationError(
            f"{measured} was measured in a run that proves nothing (summary.json beside it: {why}). A profile "
            "fitted to it would copy that run's fault (a saturated generator's delay, an unfinished or "
            "misconfigured run) into the simulation. Measure again, or pass --accept-invalid-run to fit it anyway")
    if kind == "invalid":
        obs.notes.append(f"fitted from a run that proves nothing, as --accept-invalid-run asked: {why}")
    elif kind == "strained":
        obs.notes.append(f"the run's load generator was saturated ({why}): its latencies include the "
                         "generator's own delay, so the fitted profile is slower than the target")
    else:
        obs.notes.append(why)


def observe(args: argparse.Namespace) -> Observed:
    quantiles = args.p50 is not None or args.p99 is not None
    given = [x for x in (args.latencies, args.locust_csv) if x] + (["quantiles"] if quantiles else [])
    if len(given) != 1:
        raise CalibrationError("give exactly one of --p50/--p99, --latencies FILE, --locust-csv FILE")
    if quantiles:
        if args.p50 is None or args.p99 is None:
            raise CalibrationError("--p50 and --p99 go together")
        for flag, v in (("--p50", args.p50), ("--p99", args.p99)):
            if not math.isfinite(v) or v <= 0:
                raise CalibrationError(f"{flag} must be a positive number of ms, got {v:g}")
        return Observed(args.p50, args.p99, "the given P50/P99")
    if args.latencies:
        obs = fit_samples(read_latencies(args.latencies), args.estimator, f"{args.latencies}")
    else:
        obs = read_locust_csv(args.locust_csv, args.row, args.skip_s)
    check_run(args.latencies or args.locust_csv, args.accept_invalid_run, obs)
    return obs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what was observed")
    src.add_argument("--p50", type=float, metavar="MS", help="median latency, ms")
    src.add_argument("--p99", type=float, metavar="MS", help="99th percentile latency, ms")
    src.add_argument("--latencies", metavar="FILE", help="raw latencies in ms, one a line or comma/space separated")
    src.add_argument("--locust-csv", metavar="FILE", help="Locust's PREFIX_stats.csv or PREFIX_stats_history.csv")
    src.add_argument("--row", default="Aggregated",
                     help="the Locust row to read: its Name, or 'TYPE NAME' (default Aggregated)")
    src.add_argument("--skip-s", type=float, default=0.0, metavar="S",
                     help="full-history CSV: leave out the first S seconds (ramp-up)")
    src.add_argument("--accept-invalid-run", action="store_true",
                     help="fit a file even when the summary.json beside it says its run proved nothing")
    src.add_argument("--estimator", choices=("auto", "quantile", "logfit"), default="auto",
                     help="raw samples: sigma from the sample P99 (quantile) or sd of ln x (logfit); auto: "
                          f"quantile from {MIN_QUANTILE_SAMPLES} samples up")
    cap = p.add_argument_group("capacity")
    cap.add_argument("--sustained-rps", type=float, metavar="N", help="throughput sustained at saturation, req/s")
    cap.add_argument("--peak-ms", type=float, metavar="MS", help="median latency of a burst of --burst requests")
    cap.add_argument("--burst", type=int, default=BURST, metavar="N", help=f"burst size (default {BURST})")
    cap.add_argument("--capacity-from", choices=("auto", "sustained", "peak"), default="auto",
                     help="with both figures, which sets the slots (auto: sustained)")
    cap.add_argument("--reps", type=int, default=64, help="burst simulation replications (default 64)")
    cap.add_argument("--seed", type=int, default=0, help="burst simulation seed")
    out = p.add_argument_group("the profile")
    out.add_argument("--name", required=True, help="name of the new profile (an existing name overrides it)")
    out.add_argument("--base", help="profile to start from (default: relay, or by --api)")
    out.add_argument("--api", choices=APIS, help="wire format (default: the base's)")
    out.add_argument("--profiles", action="append", default=[], metavar="FILE",
                     help="extra profile files the base may come from")
    out.add_argument("--min-ms", type=float, help="clip latencies below (default: the base's, widened if needed)")
    out.add_argument("--max-ms", type=float, help="clip latencies above (default: the base's, widened if needed)")
    out.add_argument("--out", help="TOML file to write (default NAME.toml)")
    args = p.parse_args(argv)
    if args.capacity_from == "peak" and args.peak_ms is None:
        p.error("--capacity-from peak needs --peak-ms")
    if args.capacity_from == "sustained" and args.sustained_rps is None:
        p.error("--capacity-from sustained needs --sustained-rps")
    if args.burst < 1 or args.reps < 1:
        p.error("--burst and --reps must be >= 1")
    for flag in ("sustained_rps", "peak_ms"):
        v = getattr(args, flag)
        if v is not None and not (math.isfinite(v) and v > 0):
            p.error(f"--{flag.replace('_', '-')} must be a positive number")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:   # argparse's own errors already exit 2; keep --help's 0
        return int(exc.code or 0)
    out = Path(args.out or f"{args.name}.toml")
    try:
        result = calibrate(args)
        header = (f"# Fitted by `python -m loadtest calibrate` from {result.observed.source}.\n"
                  f"# Serve it: python -m mockprovider --profiles {out}\n\n")
        loaded = write_verified(result.table, header, out, args.profiles, args.name)
    except CalibrationError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    print("\n".join(result.lines))
    print(f"wrote {out} (loads: {loaded.name}, api {loaded.api}, P50 {loaded.latency.p50_ms:g} ms, "
          f"P99 {loaded.latency.p99_ms:g} ms, {loaded.capacity.slots} slots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
