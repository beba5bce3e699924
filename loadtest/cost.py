"""What images cost: per request from the profiles, per month by volume, per run from its summary.

Targets are profile names ("dall-e-4", "imagen-4", ...). A relay target may name the
model it is asked for, "relay:dall-e-4"; a bare "relay" is priced as buying the same
models the direct targets in the table buy, through the relay (the mean of the relay's
prices for them), so relay and direct columns compare like for like.

The seed's published monthly table is kept as published (`seed_monthly_table`) and
set beside its own per-model prices (`seed_comparison`); where the two disagree,
`seed_contradictions` says by how much, rather than letting either silently win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mockprovider.profile import Profile, load_profiles

from . import seed

VOLUMES = (10_000, 100_000, 1_000_000)

# Prices are quoted to the cent or below; two figures closer than this are the same price.
PRICE_EPS = 0.0005


def split_target(target: str) -> tuple[str, str | None]:
    name, _, model = target.partition(":")
    return name, (model or None)


def is_relay(target: str, profiles: Mapping[str, Profile]) -> bool:
    name, _ = split_target(target)
    if name in profiles:
        return profiles[name].api == "relay"
    return name == "relay"


def target_price(target: str, profiles: Mapping[str, Profile], direct_models: Sequence[str] = ()) -> tuple[float, str]:
    """(USD per image, how that price was arrived at) for one target."""
    name, model = split_target(target)
    if name not in profiles:
        raise ValueError(f"no profile {name!r}; known: {', '.join(sorted(profiles))}")
    p = profiles[name]
    if p.relay is None:
        if model is not None and model != name:
            raise ValueError(f"{target!r}: only a relay target can name a model")
        return p.price_usd, f"{name}'s price"
    if model is not None:
        if model not in p.relay.models:
            raise ValueError(f"{target!r}: the relay does not serve {model!r}")
        return p.price_for(model), f"relay price for {model}" + _fallback_note(p, [model])
    served = [m for m in direct_models if m in p.relay.models]
    if served:
        price = sum(p.price_for(m) for m in served) / len(served)
        return price, f"mean of the relay's prices for {', '.join(served)}" + _fallback_note(p, served)
    first = p.relay.models[0]
    return p.price_for(first), f"relay price for {first} (its first model)" + _fallback_note(p, [first])


def _fallback_note(relay: Profile, models: Sequence[str]) -> str:
    # The mock bills a model the relay lists no price for at the relay's own price_usd;
    # say so, since that figure is an assumption, not a published price.
    assert relay.relay is not None
    unlisted = [m for m in models if m not in relay.relay.prices]
    if not unlisted:
        return ""
    return f"; {', '.join(unlisted)} unlisted, at the relay's fallback ${relay.price_usd:.2f}"


def resolve_prices(targets: Sequence[str], profiles: Mapping[str, Profile],
                   overrides: Mapping[str, float] | None = None) -> dict[str, tuple[float, str]]:
    overrides = overrides or {}
    direct_models = [split_target(t)[0] for t in targets if not is_relay(t, profiles)]
    out: dict[str, tuple[float, str]] = {}
    for t in targets:
        if t in overrides:
            out[t] = (float(overrides[t]), "given")
        else:
            out[t] = target_price(t, profiles, direct_models)
    return out


def monthly_projection(targets: Sequence[str], volumes: Iterable[int] = VOLUMES,
                       prices: Mapping[str, float] | None = None, *,
                       profiles: Mapping[str, Profile] | None = None,
                       extra_files: Iterable[str] = ()) -> dict[str, Any]:
    """Each target's monthly bill at each volume, the direct targets' average, savings against it."""
    targets, volumes = list(targets), [int(v) for v in volumes]
    if not targets:
        raise ValueError("no targets to price")
    profiles = profiles if profiles is not None else load_profiles(extra_files)
    priced = resolve_prices(targets, profiles, prices)
    direct = [t for t in targets if not is_relay(t, profiles)]
    rows = []
    for v in volumes:
        cost = {t: round(priced[t][0] * v, 2) for t in targets}
        avg = sum(cost[t] for t in direct) / len(direct) if direct else None
        rows.append({"volume": int(v), "cost_usd": cost,
                     "direct_average_usd": None if avg is None else round(avg, 2),
                     "savings_vs_average": {t: (None if not avg else round(1 - cost[t] / avg, 4)) for t in targets}})
    return {"targets": targets, "direct_targets": direct, "volumes": volumes,
            "price_per_image_usd": {t: priced[t][0] for t in targets},
            "price_basis": {t: priced[t][1] for t in targets},
            "rows": rows,
            "published": seed_monthly_table(),
            "seed_comparison": seed_comparison(),
            "contradictions": seed_contradictions()}


# --- the seed's own table -------------------------------------------------------


def seed_monthly_table() -> dict[str, Any]:
    """The published "Monthly Cost Comparison", as published, with the per-image price each cell implies."""
    rows = []
    for v, cols in seed.MONTHLY.items():
        rows.append({"volume": v, "cost_usd": dict(cols), "savings_vs_average": seed.SAVINGS[v],
                     "implied_price_per_image_usd": {t: c / v for t, c in cols.items()}})
    return {"columns": [*seed.DIRECT, "relay"], "rows": rows}


def seed_comparison() -> list[dict[str, Any]]:
    """One entry per published cell: the price it implies against the price table's."""
    out = []
    for v, cols in seed.MONTHLY.items():
        for t, usd in cols.items():
            implied = usd / v
            if t == "relay":
                listed = [seed.RELAY_PRICES[m] for m in seed.DIRECT if m in seed.RELAY_PRICES]
                low, high = min(listed), max(listed)
            else:
                low = high = seed.MODEL_PRICES[t]
            consistent = low - PRICE_EPS <= implied <= high + PRICE_EPS
            out.append({"volume": v, "column": t, "published_usd": usd, "implied_price_usd": round(implied, 5),
                        "price_table_usd": [low, high], "at_price_table_usd": [round(low * v, 2), round(high * v, 2)],
                        "consistent": consistent})
    return out


def _recomputed_savings(v: int) -> float:
    cols = seed.MONTHLY[v]
    avg = sum(cols[t] for t in seed.DIRECT) / len(seed.DIRECT)
    return 1 - cols["relay"] / avg


def seed_contradictions() -> list[dict[str, Any]]:
    """Where the seed's monthly table disagrees with its own price tables, with the numbers."""
    out: list[dict[str, Any]] = []
    cells = seed_comparison()
    for t in seed.DIRECT:
        bad = [c for c in cells if c["column"] == t and not c["consistent"]]
        if bad:
            implied = sorted({c["implied_price_usd"] for c in bad})
            out.append({
                "title": f"{t}: monthly table vs price table",
                "explanation": (
                    f"The monthly table charges {t} ${', $'.join(f'{p:.3f}' for p in implied)} an image "
                    f"(e.g. ${bad[0]['published_usd']:,} for {bad[0]['volume']:,} images); the seed's per-model "
                    f"price table says ${seed.MODEL_PRICES[t]:.2f}, which would make it "
                    f"${bad[0]['at_price_table_usd'][0]:,.0f}. The profile prices {t} at the price table's "
                    f"${seed.MODEL_PRICES[t]:.2f}."),
                "column": t, "implied_price_usd": implied, "price_table_usd": seed.MODEL_PRICES[t]})
    relay = [c for c in cells if c["column"] == "relay"]
    implied = [c["implied_price_usd"] for c in relay]
    low, high = relay[0]["price_table_usd"]
    avg_direct = sum(seed.MODEL_PRICES[m] for m in seed.DIRECT) / len(seed.DIRECT)
    relay_mix = sum(seed.RELAY_PRICES.get(m, seed.MODEL_PRICES[m]) for m in seed.DIRECT) / len(seed.DIRECT)
    out.append({
        "title": "The relay's monthly column vs the relay's own prices",
        "explanation": (
            f"The monthly table implies the relay charges ${min(implied):.3f}-${max(implied):.3f} an image, "
            f"yet the relay's price table lists midjourney-v7 at ${seed.RELAY_PRICES['midjourney-v7']:.2f} "
            f"(the same as direct) and dall-e-4 at ${seed.RELAY_PRICES['dall-e-4']:.2f} (direct "
            f"${seed.MODEL_PRICES['dall-e-4']:.2f}). Buying the three models through the relay at those prices "
            f"averages ${relay_mix:.3f} an image against ${avg_direct:.3f} direct: "
            f"{1 - relay_mix / avg_direct:.0%} cheaper, not 83-86 %. The published savings rest on the column's "
            f"exchange-rate claim (¥1 = $1, so a dollar price paid in yuan costs about 1/{seed.EXCHANGE_FACTOR:g} of "
            f"it: {1 - 1 / seed.EXCHANGE_FACTOR:.0%} off), not on any per-model price. The profiles use the "
            f"per-model prices; a team's saving is whatever its own invoice says."),
        "column": "relay", "implied_price_usd": implied, "price_table_usd": [low, high],
        "savings_at_price_table": round(1 - relay_mix / avg_direct, 4)})
    off = []
    for v, published in seed.SAVINGS.items():
        actual = _recomputed_savings(v)
        if round(actual, 2) != published:
            off.append((v, actual, published))
    if off:
        out.append({
            "title": "The savings column's arithmetic",
            "explanation": "; ".join(
                f"at {v:,} images the table's own costs give {actual:.1%} savings against the direct average, "
                f"published as {published:.0%}" for v, actual, published in off) + ".",
            "rows": [{"volume": v, "recomputed": round(a, 4), "published": p} for v, a, p in off]})
    if len(set(implied)) > 1:
        out.append({
            "title": "A volume discount nobody lists",
            "explanation": (
                "The relay's implied price falls with volume ("
                + ", ".join(f"${c['implied_price_usd']:.3f} at {c['volume']:,}" for c in relay)
                + ") while the direct columns scale exactly linearly; no price table in the seed has tiers."),
            "column": "relay"})
    return out


# --- a run's bill ----------------------------------------------------------------

BILLING_RULE = (
    "One charge per image delivered, at the price of the model that generated it: a failover is billed at the "
    "fallback model's price (the relay reports it per answer). Attempts the provider refused (429, 5xx, "
    "overloaded, outage) are not billed, so retries cost time and rate-limit budget but money only for the "
    "attempt that succeeds. Requests the client abandoned at its timeout may still have been generated and "
    "billed by the provider; that amount is shown apart, as an upper bound, not added to the bill.")


def _num(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def run_cost(summary: Mapping[str, Any], *, profiles: Mapping[str, Profile] | None = None,
             volumes: Iterable[int] = VOLUMES) -> dict[str, Any]:
    """What the run would have cost against the real service, and where retries and failovers show."""
    cost = summary.get("cost") or {}
    usd = _num(cost.get("usd"))
    images = int(_num(cost.get("images")))
    requests = int(_num(summary.get("requests")))
    failures = int(_num(summary.get("failures")))
    attempts = int(_num(summary.get("attempts"))) or requests
    retries = int(_num(summary.get("retries")))
    failovers = int(_num(summary.get("failovers")))
    succeeded = max(0, requests - failures)
    timeouts = int(_num((summary.get("status_codes") or {}).get("timeout")))
    per_image = usd / images if images else None

    target = summary.get("target") or {}
    name, model = str(target.get("name") or ""), target.get("model")
    requested_price = None
    if profiles is None:
        try:
            profiles = load_profiles()
        except Exception:  # a run against a real URL may name no profile; the bill stands without it
            profiles = {}
    if name in profiles:
        p = profiles[name]
        requested_price = p.price_for(model) if (model and p.relay is not None) else p.price_usd
    at_requested = None if requested_price is None else round(images * requested_price, 6)
    abandoned_price = per_image if per_image is not None else requested_price

    return {
        "rule": BILLING_RULE,
        "billed_usd": round(usd, 6),
        "images": images,
        "requests": requests,
        "succeeded": succeeded,
        "attempts": attempts,
        "retries": retries,
        # Every attempt beyond one per successful request was refused and so not billed.
        "unbilled_attempts": max(0, attempts - succeeded),
        "failovers": failovers,
        "per_image_usd": None if per_image is None else round(per_image, 6),
        "per_request_usd": round(usd / requests, 6) if requests else None,
        "requested_model": model or name or None,
        "requested_price_usd": requested_price,
        "at_requested_price_usd": at_requested,
        # Negative: failovers went to cheaper models; positive: to dearer ones.
        "failover_delta_usd": None if at_requested is None else round(usd - at_requested, 6),
        "abandoned_timeouts": timeouts,
        "abandoned_usd_upper": round(timeouts * abandoned_price, 6) if abandoned_price is not None else None,
        "monthly_at_run_price_usd": ({str(v): round(v * per_image, 2) for v in volumes}
                                     if per_image is not None else {}),
    }


# --- Markdown ----------------------------------------------------------------------


def _usd(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def run_cost_markdown(rc: Mapping[str, Any]) -> str:
    rows = [("billed", _usd(rc["billed_usd"])), ("images", f"{rc['images']:,}"),
            ("per image", "—" if rc["per_image_usd"] is None else f"${rc['per_image_usd']:.4f}"),
            ("requests / succeeded", f"{rc['requests']:,} / {rc['succeeded']:,}"),
            ("HTTP attempts", f"{rc['attempts']:,}"),
            ("attempts refused, so not billed", f"{rc['unbilled_attempts']:,}"),
            ("retries", f"{rc['retries']:,}"), ("failovers", f"{rc['failovers']:,}")]
    if rc.get("at_requested_price_usd") is not None:
        rows.append((f"at {rc['requested_model']}'s price", _usd(rc["at_requested_price_usd"])))
        delta = rc["failover_delta_usd"]
        rows.append(("difference the failovers made", f"{'+' if delta >= 0 else '−'}{_usd(abs(delta))}"))
    if rc.get("abandoned_timeouts"):
        rows.append(("timed out (may be billed)", f"{rc['abandoned_timeouts']:,} ≤ {_usd(rc['abandoned_usd_upper'])}"))
    out = ["| Cost of the run | Amount |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out) + f"\n\n{rc['rule']}\n"
