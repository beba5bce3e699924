"""`make loadtest` / `make ui`: the embedded mock when the target lives there, Locust, the verdict.

The gate itself runs inside Locust (loadtest/locust/plugin.py) and becomes Locust's
exit code; this module starts what the run needs, hands Locust the options, and
stops everything after, passing the exit code through.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from mockprovider.settings import SettingsError

from .gate import RunFacts, evaluate
from .mockproc import MockProcess
from .recorder import Recorder
from .report import build_summary, console, write_all
from .scenario import Scenario, ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "locustfiles" / "imagegen.py"
EXIT_PASS, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


def mock_args(scenario: Scenario) -> list[str]:
    args = ["--seed", str(scenario.mock.seed), "--latency-scale", str(scenario.mock.latency_scale)]
    for s in scenario.mock.sets:
        args += ["--set", s]
    for p in scenario.mock.profiles:
        args += ["--profiles", p]
    return args


def reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def report_dir_for(scenario: Scenario, given: str | None) -> Path:
    if given:
        return Path(given)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return ROOT / "reports" / f"{scenario.name}-{stamp}"


def unreachable_verdict(scenario: Scenario, base_url: str, outdir: Path) -> int:
    """No run at all: the target does not answer. Still a verdict CI can read."""
    facts = RunFacts(target_reachable=False, notes=[f"nothing listens at {base_url}"])
    recorder = Recorder(stages=scenario.load.windows())
    verdict = evaluate(scenario.thresholds, recorder, facts, scenario.min_samples)
    summary = build_summary(
        scenario={"name": scenario.name, "description": scenario.description},
        target={"name": scenario.target.name, "api": scenario.target.api, "base_url": base_url,
                "model": scenario.target.model},
        recorder=recorder, verdict=verdict, facts=facts, started_at=datetime.now(UTC), duration_s=0.0)
    outdir.mkdir(parents=True, exist_ok=True)
    write_all(summary, outdir)
    print(console.render(summary, color=sys.stdout.isatty()))
    return verdict.exit_code


def locust_command(scenario_ref: str, *, target: str | None, api: str | None, model: str | None,
                   duration: str | None, profiles: Sequence[str], mock_url: str | None, embedded: bool,
                   outdir: Path | None, workers: int, headless: bool, web_port: int = 8089,
                   host: str | None = None, sets: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--scenario", scenario_ref,
           "--loglevel", "INFO"]
    for flag, value in (("--target", target), ("--api", api), ("--model", model), ("--duration", duration),
                        ("--mock-url", mock_url), ("--host", host)):
        if value:
            cmd += [flag, value]
    if profiles:
        cmd += ["--profiles", ",".join(profiles)]
    if embedded:
        cmd.append("--embedded-mock")
    if sets:
        cmd += ["--mock-sets", ",".join(sets)]
    if outdir is not None:
        cmd += ["--report-dir", str(outdir), "--csv", str(outdir / "locust"), "--html", str(outdir / "locust.html")]
    if workers > 0:
        cmd += ["--processes", str(workers)]
    if headless:
        cmd += ["--headless", "--only-summary"]
    else:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(web_port)]
    return cmd


def run(scenario_ref: str, *, target: str | None = None, api: str | None = None, model: str | None = None,
        duration: str | None = None, workers: int = 0, profiles: Sequence[str] = (), mock_url: str | None = None,
        sets: Sequence[str] = (), report_dir: str | None = None, headless: bool = True, web_port: int = 8089) -> int:
    try:
        scenario = load_scenario(scenario_ref, target=target, duration=duration, api=api, model=model,
                                 profiles=profiles)
        if sets:
            scenario = scenario.with_mock_sets(sets)
    except (ScenarioError, SettingsError) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if sets and mock_url:
        print("loadtest: --set changes the mock this command starts; with --mock-url, use its admin API",
              file=sys.stderr)
        return EXIT_INVALID
    if workers < 0:
        print("loadtest: WORKERS must be 0 or more", file=sys.stderr)
        return EXIT_INVALID
    outdir = report_dir_for(scenario, report_dir) if headless else None
    mock: MockProcess | None = None
    needs_mock = scenario.target.on_mock or bool(scenario.actions)
    try:
        if needs_mock and not mock_url:
            try:
                mock = MockProcess(*mock_args(scenario)).start()
            except RuntimeError as exc:
                print(f"loadtest: {exc}", file=sys.stderr)
                return EXIT_INVALID
            mock_url = mock.url
            print(f"mock providers on {mock_url} (seed {scenario.mock.seed}, latency scale "
                  f"{scenario.mock.latency_scale:g}{', ' + ', '.join(scenario.mock.sets) if scenario.mock.sets else ''})",
                  flush=True)
        base_url = scenario.target.base_url or scenario.target.url_on(mock_url or "")
        if not reachable(base_url):
            print(f"loadtest: the target {base_url} does not answer", file=sys.stderr)
            if outdir is None:
                return EXIT_INVALID
            return unreachable_verdict(scenario, base_url, outdir)
        print(f"scenario {scenario.name}: {scenario.description}".rstrip(": "), flush=True)
        print(f"target {scenario.target.name} ({scenario.target.api}, model {scenario.target.model}) at {base_url}; "
              f"{scenario.load.model} model, {scenario.duration_s:.0f} s"
              f"{f', {workers} Locust workers' if workers else ''}", flush=True)
        if outdir is not None:
            print(f"reports will be written to {os.path.relpath(outdir)}", flush=True)
        else:
            print(f"Locust web UI: http://127.0.0.1:{web_port}  (the SLA tab shows each threshold live; "
                  "Ctrl-C to stop)", flush=True)
        cmd = locust_command(scenario_ref, target=target, api=api, model=model, duration=duration,
                             profiles=profiles, mock_url=mock_url, embedded=mock is not None, outdir=outdir,
                             workers=workers, headless=headless, web_port=web_port, sets=sets)
        code = _run_locust(cmd)
        if outdir is not None:
            print(final_line(outdir, code), flush=True)
        return code
    finally:
        if mock is not None:
            mock.stop()


def final_line(outdir: Path, code: int) -> str:
    """The last thing a person reads: the verdict, and where the report is."""
    words = {EXIT_PASS: "PASS: the SLA held", EXIT_FAIL: "FAIL: the SLA was breached",
             EXIT_INVALID: "INVALID: this run proves nothing"}.get(code, f"exit {code}")
    page = outdir / "report.html"
    where = os.path.relpath(page if page.exists() else outdir)
    return f"\nverdict: {words} (exit {code}); report: {where}"


def _run_locust(cmd: list[str]) -> int:
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Let Locust stop its users, gate what it has and write the reports.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
    if code not in (EXIT_PASS, EXIT_FAIL, EXIT_INVALID):
        print(f"loadtest: Locust ended with exit code {code}; treating the run as proving nothing",
              file=sys.stderr)
        return EXIT_INVALID
    return code

