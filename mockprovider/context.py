"""What every handler of the server shares: providers, metrics and serving options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .images import ImageStore
from .metrics import Metrics
from .provider import Providers


@dataclass
class MockContext:
    providers: Providers
    metrics: Metrics
    images: ImageStore = field(default_factory=ImageStore)   # image bytes, URLs, the /images route
    max_body_bytes: int = 16 * 1024 * 1024
    admin_token: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)   # per-wire state (e.g. job stores)
    loop: asyncio.AbstractEventLoop | None = None          # set on startup; saves a lookup per request
