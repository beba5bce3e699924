"""API keys for a run: the mock's pool, formatted the way each API's keys look, or the team's own."""

from __future__ import annotations

from collections.abc import Sequence

KEY_FORMATS = {"relay": "hs_loadtest_{:05d}", "openai": "sk-loadtest-{:05d}",
               "vertex": "ya29.loadtest-{:05d}", "midjourney": "mj-loadtest-{:05d}",
               "gemini": "AIzaSyLoadtest{:05d}"}


def pool_key(api: str, index: int, pool: int) -> str:
    """The index-th user's key from a simulated pool of `pool` keys."""
    return KEY_FORMATS[api].format(index % pool)


def parse_keys(text: str) -> list[str]:
    """LOADTEST_API_KEYS: comma-separated keys for a real target."""
    return [k.strip() for k in text.split(",") if k.strip()]


def key_for_user(api: str, index: int, pool: int, own_keys: Sequence[str], on_mock: bool) -> str:
    # The team's own keys are for its real target; the simulated providers keep the scenario's pool,
    # so a secret set for CI never shrinks the mock's 64 keys to the two the team happens to own.
    if own_keys and not on_mock:
        return own_keys[index % len(own_keys)]
    return pool_key(api, index, pool)
