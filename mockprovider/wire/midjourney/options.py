"""The operator's Midjourney settings: which secrets are accounts, where callbacks may go, store limits."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class MidjourneyOptions:
    # None: any non-empty mj-api-secret is an account (a proxy whose admin set no secret list here).
    secrets: frozenset[str] | None = None
    # Callback hosts allowed beyond loopback ("*": any host).
    notify_hosts: frozenset[str] = frozenset()
    max_tasks: int = 100_000            # tasks held, running or finished
    max_store_bytes: int = 128 * MIB    # what those tasks hold, text and bookkeeping
    retention_s: float = 600.0          # a finished task stays fetchable this long


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("Midjourney jobs (midjourney-proxy shape)")
    g.add_argument("--mj-secrets", metavar="S1,S2,...",
                   help="only these mj-api-secret values are accounts (comma separated); default: any "
                        "non-empty secret is an account")
    g.add_argument("--mj-secrets-file", type=Path, metavar="FILE",
                   help="as --mj-secrets, one secret a line (blank lines and #comments skipped)")
    g.add_argument("--mj-notify-hosts", metavar="H1,H2,...",
                   help="hosts notifyHook callbacks may go to besides loopback ('*': any); default: loopback only")
    g.add_argument("--mj-max-tasks", type=int, default=MidjourneyOptions.max_tasks, metavar="N",
                   help=f"tasks held at most, running or finished (default {MidjourneyOptions.max_tasks:,})")
    g.add_argument("--mj-max-store-mb", type=float, default=MidjourneyOptions.max_store_bytes / MIB, metavar="MB",
                   help=f"memory the held tasks may take (default {MidjourneyOptions.max_store_bytes // MIB})")
    g.add_argument("--mj-retention-s", type=float, default=MidjourneyOptions.retention_s, metavar="S",
                   help=f"how long a finished task stays fetchable (default {MidjourneyOptions.retention_s:g})")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def options_from_args(args: argparse.Namespace) -> MidjourneyOptions:
    """The options from parsed arguments, or ValueError naming what is wrong."""
    secrets: set[str] | None = None
    if args.mj_secrets is not None:
        secrets = set(_split(args.mj_secrets))
        if not secrets:
            raise ValueError("--mj-secrets lists no secret")
    if args.mj_secrets_file is not None:
        try:
            lines = args.mj_secrets_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--mj-secrets-file {args.mj_secrets_file}: {exc}") from None
        listed = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
        if not listed:
            raise ValueError(f"--mj-secrets-file {args.mj_secrets_file} lists no secret")
        secrets = (secrets or set()) | listed
    hosts = frozenset(h.lower().rstrip(".") for h in _split(args.mj_notify_hosts or ""))
    if not 1 <= args.mj_max_tasks <= 10_000_000:
        raise ValueError("--mj-max-tasks must be 1..10,000,000")
    if not 1 <= args.mj_max_store_mb <= 64 * 1024:
        raise ValueError("--mj-max-store-mb must be 1..65536")
    if not 0 <= args.mj_retention_s <= 7 * 86400:
        raise ValueError("--mj-retention-s must be 0..604800 (a week)")
    return MidjourneyOptions(secrets=frozenset(secrets) if secrets is not None else None, notify_hosts=hosts,
                             max_tasks=args.mj_max_tasks, max_store_bytes=int(args.mj_max_store_mb * MIB),
                             retention_s=args.mj_retention_s)
