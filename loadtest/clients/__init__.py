"""How each API is called, as a team's client would: one generation, retries, batches, job polling.

A call here is one *generation* as the shop's customer experiences it: every HTTP attempt
it took (retries after 429/503, Midjourney's submit and polls) is inside it. The clients
take any session with geventhttpclient's interface (Locust's FastHttpSession) and never
report to Locust themselves; `loadtest.locust.users` does, once per generation.

- base.py         Attempt, Generation, the retry loop with backoff the seed recommends, and each API's
                  own batching (`plan`: n images a request, Vertex's sampleCount, Midjourney's grid)
- relay.py, openai.py, vertex.py, midjourney.py, gemini.py   one client per API
- sse.py          Server-Sent Events read as they arrive (OpenAI's image streams, time to first image)
- uploads.py      the product photos and masks an edit uploads, drawn once per process
- keys.py         key pools formatted as each API's keys look
"""

from __future__ import annotations

from .base import ApiClient, Attempt, Generation
from .gemini import GeminiClient
from .midjourney import MidjourneyClient
from .openai import OpenAIImagesClient
from .relay import RelayClient
from .vertex import VertexImagenClient

# api name (mockprovider.apis.APIS) -> its client
CLIENTS: dict[str, type[ApiClient]] = {c.api: c for c in (RelayClient, OpenAIImagesClient, VertexImagenClient,
                                                          MidjourneyClient, GeminiClient)}

__all__ = ["CLIENTS", "ApiClient", "Attempt", "Generation", "RelayClient", "OpenAIImagesClient",
           "VertexImagenClient", "MidjourneyClient", "GeminiClient"]
