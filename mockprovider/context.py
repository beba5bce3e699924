"""What every handler of the server shares: providers, metrics, the provider-side record, images and serving options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .images import ImageStore
from .limits import BODY_TIMEOUT_S, DEFAULT_MAX_BODY_MB
from .metrics import Metrics
from .provider import Providers
from .record import Record

if TYPE_CHECKING:
    from .shared import SharedState


@dataclass
class MockContext:
    providers: Providers
    metrics: Metrics
    record: Record = field(default_factory=Record)
    images: ImageStore = field(default_factory=ImageStore)   # image bytes, URLs, the /images route
    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 1024 * 1024)
    body_timeout_s: float = BODY_TIMEOUT_S                 # the longest a body may take to arrive
    admin_token: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)   # per-wire state (e.g. job stores)
    loop: asyncio.AbstractEventLoop | None = None          # set on startup; saves a lookup per request
    shared: SharedState | None = None                      # with --workers N: what the workers share
    internal_port: int = 0                                 # with --workers N: this worker's own port
