"""python -m loadtest: run a scenario and gate it, open the web UI, compare targets, calibrate."""

from __future__ import annotations

import argparse
import sys

from .scenario import scenario_names


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help=f"scenario name ({', '.join(scenario_names())}) or a TOML path")
    p.add_argument("--target", help="a provider of the mock (relay, dall-e-4, imagen-4, midjourney-v7, ...) "
                                    "or a base URL such as https://relay.example.com/v1")
    p.add_argument("--api", help="wire format of a URL target: relay (default), openai, vertex, midjourney")
    p.add_argument("--model", help="model to ask the target for")
    p.add_argument("--duration", help="stretch the stages to this total, e.g. 90s, 10m, 4h")
    p.add_argument("--workers", type=int, default=0, help="Locust workers (distributed mode); 0 = one process")
    p.add_argument("--profiles", action="append", default=[], metavar="FILE",
                   help="extra mock profile files (e.g. from `calibrate`)")
    p.add_argument("--mock-url", help="use an already running mock instead of starting one")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME.SETTING=VALUE",
                   help="start the mock with a provider setting changed, e.g. --set relay.error_rate=0.05")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a scenario headless and gate it (exit 0 pass, 1 fail, 2 proves nothing)")
    _scenario_args(p_run)
    p_run.add_argument("--report-dir", help="where reports go (default reports/<scenario>-<time>)")
    p_ui = sub.add_parser("ui", help="the Locust web UI with the scenario's shape and a live SLA tab")
    _scenario_args(p_ui)
    p_ui.add_argument("--web-port", type=int, default=8089)
    sub.add_parser("scenarios", help="list the scenarios")
    sub.add_parser("compare", help="relay vs direct: the seed's latency table, measured", add_help=False)
    sub.add_parser("calibrate", help="fit a provider profile from observed latencies", add_help=False)

    args, rest = parser.parse_known_args(argv)
    if args.command == "compare":
        from .compare import main as compare_main
        return compare_main(rest)
    if args.command == "calibrate":
        from .calibrate import main as calibrate_main
        return calibrate_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "scenarios":
        from .scenario import load_scenario
        for name in scenario_names():
            s = load_scenario(name)
            print(f"{name:18} {s.duration_s:6.0f} s  {s.load.model:6}  {s.description}")
        return 0
    from .runner import run
    if args.command == "run":
        return run(args.scenario, target=args.target, api=args.api, model=args.model, duration=args.duration,
                   workers=args.workers, profiles=args.profiles, mock_url=args.mock_url, sets=args.sets,
                   report_dir=args.report_dir, headless=True)
    return run(args.scenario, target=args.target, api=args.api, model=args.model, duration=args.duration,
               workers=args.workers, profiles=args.profiles, mock_url=args.mock_url, sets=args.sets, headless=False,
               web_port=args.web_port)


if __name__ == "__main__":
    sys.exit(main())
