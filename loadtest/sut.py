"""The system under test between Locust and the simulated providers: a scenario's `[sut]` table.

A team's gateway (LiteLLM proxy, or its own code) sits where its shop would call it: Locust
drives the gateway, the gateway calls the embedded mock, and the mock's provider-side record
shows what the gateway did upstream (loadtest/gateway.py).

    [sut]
    kind = "litellm"                 # or "command": a gateway of the team's own
    health = "/health/liveliness"    # ready once this answers 2xx
    ready_timeout = "120s"
    base_path = ""                   # where the target's API lives on the gateway ("" for LiteLLM's OpenAI routes)
    env = { SOME_VAR = "..." }
    [sut.litellm]                    # kind = "litellm": LiteLLM's proxy config, as TOML
    model_list = [...]

    [sut]
    kind = "command"
    command = ["python", "-m", "mygateway", "--port", "{port}", "--upstream", "{openai_base_url}"]
    health = "/healthz"

Every string of `command`, `env` and the LiteLLM config may hold placeholders: {port} (the free
127.0.0.1 port the gateway is to listen on), {mock_url} (the simulated providers' base URL) and
{<api>_base_url} for each API the mock serves (e.g. {openai_base_url}, {vertex_base_url},
{relay_base_url}); kind = "litellm" adds {config}, the file its config is written to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockprovider.apis import MOCK_PREFIX

from .fields import Problems, Table

KINDS = ("litellm", "command")
DEFAULT_HEALTH = {"litellm": "/health/liveliness", "command": "/health"}
DEFAULT_ORPHAN_WATCH_S = 5.0
MAX_ORPHAN_WATCH_S = 600.0
# LiteLLM's proxy CLI (litellm/proxy/proxy_cli.py, the `litellm` console script), run by this interpreter.
LITELLM_COMMAND = ("{python}", "-m", "litellm.proxy.proxy_cli", "--config", "{config}", "--host", "127.0.0.1",
                   "--port", "{port}", "--num_workers", "1")
# Kept local: no price list fetched at start (LiteLLM reads these; the machine reaches loopback only).
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
               "DISABLE_SCHEMA_UPDATE": "True"}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def placeholders(mock_url: str, port: int, **extra: str) -> dict[str, str]:
    """What {name} stands for in a [sut] table, once the mock and the gateway's port are known."""
    base = mock_url.rstrip("/")
    out = {"mock_url": base, "port": str(port), **extra}
    out.update({f"{api}_base_url": base + prefix for api, prefix in MOCK_PREFIX.items()})
    return out


def known_placeholders(kind: str) -> set[str]:
    names = {"mock_url", "port", *(f"{api}_base_url" for api in MOCK_PREFIX)}
    return names | ({"config", "python"} if kind == "litellm" else {"python"})


def fill(value: Any, values: Mapping[str, str]) -> Any:
    """Every {name} in every string of a (nested) value replaced; other braces left alone."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), value)
    if isinstance(value, Mapping):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def unknown_placeholders(value: Any, kind: str) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str):
        found |= set(_PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for v in value.values():
            found |= unknown_placeholders(v, kind)
    elif isinstance(value, list):
        for v in value:
            found |= unknown_placeholders(v, kind)
    return found - known_placeholders(kind)


@dataclass(frozen=True)
class Sut:
    kind: str
    command: tuple[str, ...]
    health: str
    ready_timeout_s: float = 120.0
    stop_timeout_s: float = 15.0
    base_path: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    litellm: Mapping[str, Any] = field(default_factory=dict)   # kind = "litellm": the proxy's config
    # After Locust stops, how long the providers are still watched for calls the gateway goes on making
    # (orphaned upstream work) before the record is read and the gateway stopped.
    orphan_watch_s: float = DEFAULT_ORPHAN_WATCH_S

    @property
    def name(self) -> str:
        return "LiteLLM proxy" if self.kind == "litellm" else "gateway"

    def fallback_models(self) -> set[str]:
        """Models a LiteLLM config names as fallbacks (router_settings or litellm_settings)."""
        out: set[str] = set()
        for section in ("router_settings", "litellm_settings"):
            for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for entry in (self.litellm.get(section) or {}).get(key) or []:
                    if isinstance(entry, Mapping):
                        for targets in entry.values():
                            out |= {str(t) for t in (targets if isinstance(targets, list) else [targets])}
        return out


def parse_sut(raw: Any, problems: Problems) -> Sut | None:
    if raw is None:
        return None
    t = Table(raw, "sut", problems)
    if not isinstance(raw, Mapping):
        return None
    t.only({"kind", "command", "health", "ready_timeout", "stop_timeout", "base_path", "env", "litellm",
            "orphan_watch"})
    kind = t.choice("kind", "litellm", KINDS)
    command: tuple[str, ...] = LITELLM_COMMAND
    if kind == "command":
        cmd = raw.get("command")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) and c for c in cmd):
            t.fail("command", 'must be a non-empty list of strings, e.g. ["./gateway", "--port", "{port}"]')
            cmd = ["true"]
        elif not any("{port}" in c for c in cmd):
            t.fail("command", "must say where the gateway listens: put {port} in it (a free 127.0.0.1 port)")
        command = tuple(cmd)
    elif "command" in t:
        t.fail("command", 'is for kind = "command"; kind = "litellm" starts LiteLLM\'s proxy itself')
    health = t.string("health", DEFAULT_HEALTH[kind])
    if not health.startswith("/"):
        t.fail("health", f"must be a path on the gateway starting with '/', got {health!r}")
    base_path = t.string("base_path", "")
    if base_path and not base_path.startswith("/"):
        t.fail("base_path", f"must be empty or a path starting with '/', got {base_path!r}")
    env_raw = raw.get("env", {})
    env: dict[str, str] = {}
    if not isinstance(env_raw, Mapping) or not all(isinstance(v, str) for v in env_raw.values()):
        t.fail("env", 'must be a table of NAME = "value" strings')
    else:
        env = dict(env_raw)
    config_raw = raw.get("litellm", {})
    config: dict[str, Any] = {}
    if kind == "litellm":
        if not isinstance(config_raw, Mapping) or not isinstance(config_raw.get("model_list"), list) \
                or not config_raw["model_list"]:
            t.fail("litellm", "must hold LiteLLM's proxy config with a non-empty model_list "
                              "([[sut.litellm.model_list]] model_name = ..., litellm_params = {...})")
        else:
            config = dict(config_raw)
    elif "litellm" in t:
        t.fail("litellm", 'is the config of kind = "litellm"')
    for what, value in (("command", list(command)), ("env", env), ("litellm", config)):
        for name in sorted(unknown_placeholders(value, kind)):
            t.fail(what, f"has a placeholder {{{name}}} that is not known; known: "
                         f"{', '.join('{' + n + '}' for n in sorted(known_placeholders(kind)))}")
    watch = t.duration("orphan_watch", DEFAULT_ORPHAN_WATCH_S)
    if not 0 <= watch <= MAX_ORPHAN_WATCH_S:
        t.fail("orphan_watch", f"must be 0 s to {MAX_ORPHAN_WATCH_S:g} s (how long the providers are watched "
                               f"after the run for calls the gateway still makes), got {watch:g} s")
        watch = DEFAULT_ORPHAN_WATCH_S
    return Sut(kind=kind, command=command, health=health, base_path=base_path.rstrip("/"), env=env,
               litellm=config, ready_timeout_s=t.duration("ready_timeout", 120.0, positive=True),
               stop_timeout_s=t.duration("stop_timeout", 15.0, positive=True), orphan_watch_s=watch)
