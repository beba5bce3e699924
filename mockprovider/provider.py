"""A simulated provider at run time: its profile, live settings, and behaviour chain."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .behaviours import Behaviour, Call, Capacity, Chain, Failover, Faults, Latency, Outage, Outcome, RateLimit
from .profile import Profile
from .settings import Settings
from .toxics import ProviderToxics

if TYPE_CHECKING:
    from .shared import SharedState


@dataclass(frozen=True)
class RunOptions:
    seed: int = 0
    latency_scale: float = 1.0
    limits: bool = True   # False: --no-limits


def _rng(seed: int, name: str) -> random.Random:
    # One stream per provider, so load on one provider never shifts another's draws.
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class Provider:
    def __init__(self, profile: Profile, options: RunOptions, upstream: dict[str, Settings],
                 shared: SharedState | None = None,
                 with_toxics: dict[str, ProviderToxics] | None = None) -> None:
        self.profile = profile
        self.options = options
        self.settings = Settings.from_profile(profile, limits=options.limits)
        self.rng = _rng(options.seed, profile.name)
        self._upstream = upstream
        self.latency = Latency(profile.latency, self.settings, self.rng, options.latency_scale)
        if shared is None:
            self.capacity = Capacity(self.settings)
            self.rate_limit = RateLimit(self.settings, profile.rate_limit.counts)
        else:   # limits counted across every worker process
            from .shared import SharedCapacity, SharedRateLimit
            self.capacity = SharedCapacity(self.settings, shared, profile.name)
            self.rate_limit = SharedRateLimit(self.settings, profile.rate_limit.counts,
                                              buckets=shared.buckets(profile.name))
        self.faults = Faults(profile.faults, self.settings, self.rng, options.latency_scale)
        self.outage = Outage(self.settings)
        self.failover = Failover(profile.relay, upstream) if profile.relay else None
        self.chain = self._build_chain()
        # Toxics act where answers are written (wire/toxic_answer.py), not in the chain; a provider is in
        # `with_toxics` only while one of them is on, so the response layer looks no further otherwise.
        self.toxics = ProviderToxics(profile.name, options.seed, lambda: self.settings.toxics)
        self._with_toxics = with_toxics if with_toxics is not None else {}

    @property
    def name(self) -> str:
        return self.profile.name

    def _build_chain(self) -> Chain:
        steps: list[Behaviour] = [self.outage]
        if self.settings.limits:
            steps += [self.rate_limit, self.faults]
        if self.failover is not None:
            steps.append(self.failover)
        if self.settings.limits:
            steps.append(self.capacity)
        steps.append(self.latency)
        return Chain(steps)

    def update(self, changes: dict[str, Any], *, text: bool = False) -> dict[str, Any]:
        """Change settings (`text`: values as `--set` spells them); calls in flight see them at once."""
        applied = self.settings.update(changes, text=text)
        self._settings_changed()
        return applied

    def reset(self) -> None:
        """Back to the profile, for the calls in flight too: queued calls are admitted again under the
        profile's slots and queue, sleeping ones have their time left scaled to the profile's latency,
        and every key's rate-limit bucket starts full."""
        fresh = Settings.from_profile(self.profile, limits=self.options.limits)
        self.settings.__dict__.update(fresh.__dict__)
        self.rate_limit.reset()
        self._settings_changed()

    def _settings_changed(self) -> None:
        self.chain = self._build_chain()
        self.capacity.apply()
        self.latency.set_multiplier(self.settings.latency_multiplier)
        self._toxics_changed()

    def _toxics_changed(self) -> None:
        if self.toxics.active():
            self._with_toxics[self.name] = self.toxics
        else:
            self._with_toxics.pop(self.name, None)

    def serve(self, call: Call) -> Awaitable[Outcome]:
        """What answers `call`, to await (a coroutine, or a finished future); its draws are made now."""
        return self.chain.run(call)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "api": self.profile.api,
            "behaviours": self.chain.names,
            "toxics": [t.name for t in self.toxics.active()],
            "settings": self.settings.as_dict(),
            "running": self.capacity.running,
            "queued": self.capacity.queued,
        }


class Providers(dict[str, Provider]):
    """Every provider the server simulates, by name."""

    def __init__(self, profiles: Iterable[Profile], options: RunOptions, shared: SharedState | None = None) -> None:
        super().__init__()
        self.options = options
        self._settings: dict[str, Settings] = {}
        self.with_toxics: dict[str, ProviderToxics] = {}   # providers with a toxic on, by name
        for profile in profiles:
            provider = Provider(profile, options, self._settings, shared, self.with_toxics)
            self[profile.name] = provider
            self._settings[profile.name] = provider.settings

    def by_api(self, api: str) -> dict[str, Provider]:
        return {n: p for n, p in self.items() if p.profile.api == api}
