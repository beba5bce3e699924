"""loadtest: run a scenario and gate it, find its capacity, open the web UI, list scenarios, compare targets,
calibrate.

Exit codes of `loadtest run`: 0 the SLA held, 1 the SLA was breached, 2 the run proves nothing
(bad input, a harness failure, an unreachable target, a saturated load generator, too little data).
"""

from __future__ import annotations

import argparse
import sys

from .scenario import builtin_scenarios, load_scenario


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help=f"a built-in scenario ({', '.join(sorted(builtin_scenarios()))}) or the path "
                                    "of a TOML file")
    p.add_argument("--target", help="a provider of the mock (relay, dall-e-4, imagen-4, midjourney-v7, ...) "
                                    "or a base URL such as https://relay.example.com/v1")
    p.add_argument("--api", help="wire format of a URL target: relay (default), openai, vertex, midjourney")
    p.add_argument("--model", help="model to ask the target for")
    p.add_argument("--duration", help="stretch the stages to this total, e.g. 90s, 10m, 4h")
    p.add_argument("--workers", type=int, default=0, help="Locust workers (distributed mode); 0 = one process")
    p.add_argument("--profiles", action="append", default=[], metavar="FILE",
                   help="extra mock profile files (e.g. from `calibrate`)")
    p.add_argument("--mock-url", help="use an already running mock instead of starting one")
    p.add_argument("--mock-workers", type=int, default=1, metavar="N",
                   help="processes of the mock this command starts (its --workers; default 1)")
    p.add_argument("--record-url", metavar="URL",
                   help="admin base of a mock (e.g. behind a gateway) whose provider-side record the run reads "
                        "(default: the mock the target lives on)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME.SETTING=VALUE",
                   help="start the mock with a provider setting changed, e.g. --set relay.error_rate=0.05")
    p.add_argument("--baseline", metavar="SUMMARY.json",
                   help="a previous run's summary.json (e.g. main's): show the deltas and judge the scenario's "
                        "[regressions] against it")
    p.add_argument("--inconclusive", choices=("invalid", "fail", "observed"),
                   help="what a threshold its interval cannot decide counts as (the scenario's [gate] inconclusive, "
                        "default invalid); observed judges a shortened smoke run on its observed values alone")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve the run's Prometheus metrics on this port (0: a free one, printed and written to "
                        "--ready-file); off by default")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="the address the metrics endpoint listens on (default 127.0.0.1; 0.0.0.0 for a remote "
                        "Prometheus)")


def _options(args: argparse.Namespace) -> object:
    from .runner import RunOptions
    options = RunOptions(target=args.target, api=args.api, model=args.model, duration=args.duration,
                         workers=args.workers, profiles=tuple(args.profiles), sets=tuple(args.sets),
                         mock_url=args.mock_url, report_dir=getattr(args, "report_dir", None),
                         web_port=getattr(args, "web_port", 8089), ready_file=getattr(args, "ready_file", None),
                         baseline=args.baseline, inconclusive=args.inconclusive, mock_workers=args.mock_workers,
                         metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                         record_url=args.record_url)
    if getattr(args, "expect_workers", None) is not None:     # `loadtest run`'s workers on other hosts
        options.expect_workers = args.expect_workers
        options.master_bind_host = args.master_bind_host
        options.master_bind_port = args.master_bind_port
        options.expect_workers_max_wait = args.expect_workers_max_wait
    return options


def _remote_args(p: argparse.ArgumentParser) -> None:
    from .remote import LOCUST_MASTER_PORT
    p.add_argument("--expect-workers", type=int, default=0, metavar="N",
                   help="wait for N Locust workers started on other hosts with `loadtest worker --master-host "
                        "THIS_HOST` (none are started here); the target or --mock-url must be reachable from them")
    p.add_argument("--master-bind-host", default="0.0.0.0", metavar="ADDRESS",
                   help="with --expect-workers: the address the master listens on for its workers (default 0.0.0.0)")
    p.add_argument("--master-bind-port", type=int, default=LOCUST_MASTER_PORT, metavar="PORT",
                   help=f"with --expect-workers: the master's port (default {LOCUST_MASTER_PORT}, Locust's; 0 picks "
                        "a free one, printed)")
    p.add_argument("--expect-workers-max-wait", type=float, default=300.0, metavar="SECONDS",
                   help="with --expect-workers: how long to wait for them all before giving up (default 300)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadtest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a scenario headless and gate it (exit 0 pass, 1 fail, 2 proves nothing)")
    _scenario_args(p_run)
    p_run.add_argument("--report-dir", help="where the report goes (default ./reports/<scenario>-<time>)")
    p_run.add_argument("--ready-file", help="write where the run's metrics are served to this file (JSON) once "
                                            "Locust listens")
    _remote_args(p_run)
    p_ui = sub.add_parser("ui", help="the Locust web UI with the scenario's shape and a live SLA tab")
    _scenario_args(p_ui)
    p_ui.add_argument("--web-port", type=int, default=8089,
                      help="the web UI's port on 127.0.0.1 (default 8089; 0 picks a free one)")
    p_ui.add_argument("--ready-file", help="write the web UI's URL to this file (JSON) once it listens")
    sub.add_parser("worker", help="one Locust worker for `loadtest run --expect-workers` on another host",
                   add_help=False)
    sub.add_parser("scenarios", help="list the built-in scenarios")
    p_schema = sub.add_parser("schema", help="print the JSON Schema of summary.json (or capacity.json)")
    p_schema.add_argument("document", nargs="?", choices=("summary", "capacity"), default="summary")
    sub.add_parser("capacity", help="the highest arrival rate at which the scenario's SLA holds: a bracket",
                   add_help=False)
    sub.add_parser("compare", help="relay vs direct: the seed's latency table, measured", add_help=False)
    sub.add_parser("calibrate", help="fit a provider profile from observed latencies", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "capacity":
        from .capacity import main as capacity_main
        return capacity_main(rest)
    if args.command == "compare":
        from .compare import main as compare_main
        return compare_main(rest)
    if args.command == "worker":
        from .remote import worker_main
        return worker_main(rest)
    if args.command == "calibrate":
        from .calibrate import main as calibrate_main
        return calibrate_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "scenarios":
        for name in sorted(builtin_scenarios()):
            s = load_scenario(name)
            print(f"{name:18} {s.duration_s:6.0f} s  {s.load.KIND:6}  {s.description}")
        return 0
    if args.command == "schema":
        if args.document == "capacity":
            from .capacity import schema_text as capacity_schema
            sys.stdout.write(capacity_schema())
            return 0
        from .summary import schema_text
        sys.stdout.write(schema_text())
        return 0
    from .runner import RunOptions, run
    options = _options(args)
    assert isinstance(options, RunOptions)
    return run(args.scenario, options, headless=args.command == "run")


if __name__ == "__main__":
    sys.exit(main())
