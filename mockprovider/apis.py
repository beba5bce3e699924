"""The APIs the suite speaks, and where each one lives on the mock: the one list both halves use.

A profile names its API; a wire module serves it under its prefix; the load generator's
clients call a target through it. Adding an API is a line here, a wire module and a client.
"""

from __future__ import annotations

# api name -> the base URL path of its routes on the mock (what a client's base_url ends with)
MOCK_PREFIX: dict[str, str] = {
    "relay": "/relay/v1",
    "openai": "/openai/v1",
    "vertex": "/vertex/v1",
    "midjourney": "/midjourney",
    # The Gemini Developer API (generativelanguage.googleapis.com); google-genai's base_url is "<mock>/gemini/".
    "gemini": "/gemini/v1beta",
}
APIS: tuple[str, ...] = tuple(MOCK_PREFIX)

__all__ = ["APIS", "MOCK_PREFIX"]
