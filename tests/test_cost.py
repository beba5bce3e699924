"""Cost: per-model prices from the profiles, the monthly projection, the seed's table and its contradictions,
and a run's bill from its summary."""

from __future__ import annotations

import json

import httpx
import pytest

from loadtest import seed
from loadtest.cost import (
    monthly_projection,
    run_cost,
    run_cost_markdown,
    seed_comparison,
    seed_contradictions,
    seed_monthly_table,
)
from mockprovider.profile import load_profiles

SEED_TARGETS = ["midjourney-v7", "dall-e-4", "imagen-4", "relay"]


@pytest.fixture(scope="module")
def profiles():
    return load_profiles()


def test_builtin_prices_are_the_seeds(profiles):
    # The cost module states the seed's tables; the profiles must agree with them.
    for model, price in seed.MODEL_PRICES.items():
        assert profiles[model].price_usd == price
    for model, price in seed.RELAY_PRICES.items():
        assert profiles["relay"].price_for(model) == price


def test_projection_is_price_times_volume_with_a_direct_average(profiles):
    p = monthly_projection(SEED_TARGETS, profiles=profiles)
    assert p["direct_targets"] == ["midjourney-v7", "dall-e-4", "imagen-4"]
    assert p["volumes"] == [10_000, 100_000, 1_000_000]
    relay = profiles["relay"]
    # A bare relay buys the direct columns' models through the relay.
    relay_price = sum(relay.price_for(m) for m in p["direct_targets"]) / 3
    assert p["price_per_image_usd"]["relay"] == pytest.approx(relay_price)
    assert "mean of the relay's prices" in p["price_basis"]["relay"]
    for row in p["rows"]:
        v = row["volume"]
        assert row["cost_usd"]["midjourney-v7"] == pytest.approx(0.08 * v)
        assert row["cost_usd"]["dall-e-4"] == pytest.approx(0.06 * v)
        assert row["cost_usd"]["imagen-4"] == pytest.approx(0.08 * v)
        avg = (0.08 + 0.06 + 0.08) / 3 * v
        assert row["direct_average_usd"] == pytest.approx(avg, abs=0.01)
        assert row["savings_vs_average"]["relay"] == pytest.approx(1 - relay_price * v / avg, abs=1e-4)
        assert row["savings_vs_average"]["dall-e-4"] == pytest.approx(1 - 0.06 * v / avg, abs=1e-4)
    json.dumps(p)   # the structure goes into compare.json as it is


def test_relay_target_may_name_its_model(profiles):
    p = monthly_projection(["dall-e-4", "relay:dall-e-4"], volumes=(1000,), profiles=profiles)
    assert p["rows"][0]["cost_usd"] == {"dall-e-4": 60.0, "relay:dall-e-4": 50.0}
    assert p["direct_targets"] == ["dall-e-4"]
    assert p["rows"][0]["savings_vs_average"]["relay:dall-e-4"] == pytest.approx(1 - 50 / 60, abs=1e-4)


def test_seed_implied_prices_give_back_the_published_table(profiles):
    # With the per-image prices the published cells imply, the projection reproduces the 10,000 row exactly.
    implied = {t: seed.MONTHLY[10_000][t] / 10_000 for t in SEED_TARGETS}
    p = monthly_projection(SEED_TARGETS, volumes=(10_000,), prices=implied, profiles=profiles)
    assert p["rows"][0]["cost_usd"] == {t: float(seed.MONTHLY[10_000][t]) for t in SEED_TARGETS}
    assert round(p["rows"][0]["savings_vs_average"]["relay"], 2) == 0.83
    assert set(p["price_basis"].values()) == {"given"}


def test_bad_targets_are_clear_errors(profiles):
    with pytest.raises(ValueError, match="no profile"):
        monthly_projection(["no-such-model"], profiles=profiles)
    with pytest.raises(ValueError, match="does not serve"):
        monthly_projection(["relay:no-such-model"], profiles=profiles)
    with pytest.raises(ValueError, match="only a relay"):
        monthly_projection(["dall-e-4:imagen-4"], profiles=profiles)
    with pytest.raises(ValueError, match="no targets"):
        monthly_projection([], profiles=profiles)


def test_seed_table_as_published():
    t = seed_monthly_table()
    assert t["columns"] == SEED_TARGETS
    row = {r["volume"]: r for r in t["rows"]}
    assert row[100_000]["cost_usd"]["relay"] == 1_100
    assert row[100_000]["savings_vs_average"] == 0.85
    assert row[10_000]["implied_price_per_image_usd"]["imagen-4"] == pytest.approx(0.07)


def test_contradictions_name_imagen_the_relay_and_the_arithmetic():
    cells = {(c["column"], c["volume"]): c for c in seed_comparison()}
    assert not cells[("imagen-4", 10_000)]["consistent"]
    assert cells[("imagen-4", 10_000)]["implied_price_usd"] == pytest.approx(0.07)
    assert cells[("midjourney-v7", 10_000)]["consistent"] and cells[("dall-e-4", 1_000_000)]["consistent"]
    assert not any(cells[("relay", v)]["consistent"] for v in seed.MONTHLY)

    notes = seed_contradictions()
    by = {n.get("column", n["title"]): n for n in notes}
    assert "midjourney-v7" not in by and "dall-e-4" not in by
    assert by["imagen-4"]["implied_price_usd"] == [0.07] and by["imagen-4"]["price_table_usd"] == 0.08
    relay = next(n for n in notes if n["title"].startswith("The relay's monthly column"))
    assert relay["implied_price_usd"] == [0.012, 0.011, 0.01]
    assert relay["price_table_usd"] == [0.05, 0.08]
    assert "exchange-rate" in relay["explanation"]
    # At the relay's per-model prices the saving is single digits, not 83-86 %.
    assert 0 < relay["savings_at_price_table"] < 0.10
    arithmetic = next(n for n in notes if "arithmetic" in n["title"])
    assert arithmetic["rows"] == [{"volume": 100_000, "recomputed": pytest.approx(1 - 1100 / 7000, abs=1e-4),
                                   "published": 0.85}]
    for n in notes:
        assert n["title"] and n["explanation"]


# --- a run's bill -----------------------------------------------------------------


def _summary(**over):
    s = {"target": {"name": "relay", "api": "relay", "model": "midjourney-v7"},
         "requests": 210, "failures": 10, "attempts": 260, "retries": 50, "failovers": 5,
         "status_codes": {"200": 200, "429": 6, "timeout": 3, "500": 1},
         "cost": {"usd": 15.85, "per_image_usd": 0.07925, "images": 200}}
    s.update(over)
    return s


def test_run_cost_bills_images_not_attempts(profiles):
    rc = run_cost(_summary(), profiles=profiles)
    # 195 images at midjourney-v7's 0.08 and 5 failovers billed at the fallback's 0.05.
    assert rc["billed_usd"] == pytest.approx(15.85)
    assert rc["per_image_usd"] == pytest.approx(0.07925)
    assert rc["succeeded"] == 200
    assert rc["unbilled_attempts"] == 60          # 260 attempts, 200 of them delivered an image
    assert rc["requested_price_usd"] == 0.08
    assert rc["at_requested_price_usd"] == pytest.approx(16.0)
    # The five failovers cost 0.03 less each than the requested model would have.
    assert rc["failover_delta_usd"] == pytest.approx(-0.15)
    assert rc["abandoned_timeouts"] == 3
    assert rc["abandoned_usd_upper"] == pytest.approx(3 * 0.07925)
    assert rc["monthly_at_run_price_usd"]["100000"] == pytest.approx(7925.0)
    assert "fallback model's price" in rc["rule"]
    md = run_cost_markdown(rc)
    assert "| billed | $15.85 |" in md and "| difference the failovers made | −$0.15 |" in md
    assert md.startswith("| Cost of the run | Amount |")   # a header a reader can read, not an empty one


def test_run_cost_without_images_or_a_known_target(profiles):
    rc = run_cost({"target": {"name": "https://relay.example.com/v1"}, "requests": 5, "failures": 5,
                   "cost": {"usd": 0, "images": 0}}, profiles=profiles)
    assert rc["per_image_usd"] is None and rc["requested_price_usd"] is None
    assert rc["unbilled_attempts"] == 5 and rc["billed_usd"] == 0
    assert rc["monthly_at_run_price_usd"] == {}
    rc = run_cost({}, profiles=profiles)
    assert rc["requests"] == 0 and rc["per_request_usd"] is None


def test_the_mock_bills_a_failover_at_the_fallback_models_price(start_mock, profiles):
    # The documented rule, checked against what the simulated relay reports per answer.
    mock = start_mock("--latency-scale", "0.01", "--seed", "1")
    mock.admin("midjourney-v7", outage=True)
    r = httpx.post(f"{mock.url}/relay/v1/images/generations", timeout=10,
                   headers={"Authorization": "Bearer hs_costtest1"},
                   json={"prompt": "white cotton t-shirt on a mannequin", "model": "midjourney-v7"})
    assert r.status_code == 200, r.text
    served = r.json()["model"]   # the model that answered
    assert served != "midjourney-v7" and r.headers["x-relay-failover"] == f"midjourney-v7->{served}"
    assert float(r.headers["x-cost-usd"]) == pytest.approx(profiles["relay"].price_for(served))
