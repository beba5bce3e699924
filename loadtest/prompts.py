"""Prompts shaped like a fashion catalog, across the seed's three uses, and the two edits a catalog makes.

product × colour × material × background × style. The people, places and colours are
pools drawn once from a seeded Faker and shipped with the package (loadtest/data/prompt_pools.json),
read once per process: Faker itself would cost the Locust process about 8 MB of RSS. Each user
then draws its own reproducible stream from the pools with its own seed.

`python -m loadtest.prompts --regenerate` draws the pools from Faker again (a test dependency) and
rewrites the file; tests/test_prompts.py checks that the file is what Faker draws.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

PRODUCTS = ("sneakers", "leather handbag", "silk scarf", "denim jacket", "wool coat", "cotton t-shirt",
            "ankle boots", "sunglasses", "wristwatch", "linen dress", "backpack", "hoodie", "trench coat",
            "pleated skirt", "loafers", "baseball cap", "cashmere sweater", "swimsuit", "belt", "tote bag")
MATERIALS = ("leather", "suede", "organic cotton", "linen", "merino wool", "cashmere", "denim", "silk",
             "recycled polyester", "canvas", "corduroy", "velvet", "nylon", "tweed")
BACKGROUNDS = ("a pure white background", "a marble surface", "a light grey seamless backdrop",
               "a wooden table", "a pastel gradient", "a concrete floor", "soft sand", "a terrazzo plinth")
EDIT_BACKDROPS = ("a white marble countertop with soft window light", "a warm oak shelf", "a sunlit linen tablecloth",
                 "a matte black slate surface", "a seamless terracotta paper backdrop", "a mossy stone in a forest")
STYLES = ("studio product photography", "soft box lighting", "editorial fashion photography",
          "minimalist flat lay", "cinematic lighting", "catalog shot, 85mm lens", "high-key lighting")
SCENES = ("walking down a cobbled street", "at a rooftop café", "on a beach boardwalk at golden hour",
          "in a sunlit loft apartment", "at a city crosswalk", "in a botanical garden", "on a mountain trail")
PEOPLE = ("a young woman", "a man in his thirties", "a teenage skater", "an older woman", "a couple",
          "a runner", "a student")

USE_CASES = ("product_mockup", "lifestyle", "abandoned_cart", "background_replacement", "product_placement")
# Use cases that edit a product photo (client.operation = "edit"): their prompts speak of "the product"
# in the photo rather than naming one, since the photo shows what it shows.
EDIT_USE_CASES = ("background_replacement", "product_placement")


POOL_SIZE = 2000
POOL_SEED = 20_261_124
POOLS_FILE = "data/prompt_pools.json"     # inside the loadtest package

Pools = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@lru_cache(maxsize=1)
def pools() -> Pools:
    """(colours, cities, first names), read from the file shipped with the package: the same in every process."""
    data = json.loads(resources.files("loadtest").joinpath(POOLS_FILE).read_text(encoding="utf-8"))
    return tuple(data["colours"]), tuple(data["cities"]), tuple(data["names"])


def faker_pools() -> Pools:
    """The pools as one Faker seeded with POOL_SEED draws them: what POOLS_FILE holds."""
    from faker import Faker  # a test dependency: only the file is read at run time

    fake = Faker()
    fake.seed_instance(POOL_SEED)
    # Faker's CSS colour names ("MediumSeaGreen") read better as words.
    colours = tuple(sorted({re.sub(r"(?<!^)(?=[A-Z])", " ", fake.color_name()).lower() for _ in range(POOL_SIZE)}))
    cities = tuple(fake.city() for _ in range(POOL_SIZE))
    names = tuple(fake.first_name() for _ in range(POOL_SIZE))
    return colours, cities, names


def pools_json(drawn: Pools) -> str:
    """POOLS_FILE's text for these pools: one entry a line, so a regenerated file diffs readably."""
    colours, cities, names = drawn
    doc = {"seed": POOL_SEED, "size": POOL_SIZE, "colours": colours, "cities": cities, "names": names}
    return json.dumps(doc, ensure_ascii=False, indent=0) + "\n"


def regenerate(path: Path | None = None) -> Path:
    """Draw the pools from Faker and write them to `path` (the package's own file by default)."""
    path = path or Path(__file__).parent / POOLS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pools_json(faker_pools()), encoding="utf-8")
    pools.cache_clear()
    return path


class CatalogPrompts:
    def __init__(self, seed: int, weights: Sequence[tuple[str, float]] = (("product_mockup", 1.0),)) -> None:
        self.colours, self.cities, self.names = pools()
        self.rng = random.Random(seed)
        self.cases = [c for c, _ in weights]
        self.weights = [w for _, w in weights]

    def next(self) -> tuple[str, str]:
        """(use case, prompt)."""
        case = self.rng.choices(self.cases, self.weights)[0]
        return case, getattr(self, case)()

    def for_case(self, case: str) -> str:
        """A prompt for a given use case (a replayed trace names it)."""
        if case not in USE_CASES:
            raise ValueError(f"unknown use case {case!r} (known: {', '.join(USE_CASES)})")
        return str(getattr(self, case)())

    def product_mockup(self) -> str:
        r = self.rng
        return (f"{r.choice(self.colours).capitalize()} {r.choice(MATERIALS)} {r.choice(PRODUCTS)} "
                f"on {r.choice(BACKGROUNDS)}, "
                f"{r.choice(STYLES)}, sharp focus, e-commerce product photo")

    def lifestyle(self) -> str:
        r = self.rng
        return (f"{r.choice(PEOPLE).capitalize()} wearing a {r.choice(self.colours)} {r.choice(MATERIALS)} "
                f"{r.choice(PRODUCTS)} {r.choice(SCENES)} in {r.choice(self.cities)}, {r.choice(STYLES)}")

    def background_replacement(self) -> str:
        r = self.rng
        return (f"Replace the background with {r.choice(BACKGROUNDS + EDIT_BACKDROPS)}; keep the product, its "
                f"colours, its label and its shadow exactly as they are; {r.choice(STYLES)}, e-commerce catalog photo")

    def product_placement(self) -> str:
        r = self.rng
        return (f"Place the product {r.choice(SCENES)}, as if photographed there, with matching light and a natural "
                f"shadow; keep the product itself unchanged; {r.choice(STYLES)}, lifestyle catalog photo")

    def abandoned_cart(self) -> str:
        r = self.rng
        return (f"Personalised banner for {r.choice(self.names)}: the {r.choice(self.colours)} {r.choice(MATERIALS)} "
                f"{r.choice(PRODUCTS)} left in the cart, on {r.choice(BACKGROUNDS)}, {r.choice(STYLES)}, "
                f"warm inviting tone, space for the text 'Still thinking it over?'")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.prompts",
                                     description="The prompt pools shipped with the package.")
    parser.add_argument("--regenerate", action="store_true",
                        help=f"draw the pools from Faker (seed {POOL_SEED}) and rewrite {POOLS_FILE}")
    parser.add_argument("--output", type=Path, help="write there instead of the package's own file")
    args = parser.parse_args(argv)
    if not args.regenerate:
        parser.error("nothing to do: --regenerate rewrites the pools file")
    print(regenerate(args.output))


if __name__ == "__main__":
    main()
