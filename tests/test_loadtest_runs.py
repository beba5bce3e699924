"""Real Locust runs against the real mock, through `loadtest run` exactly as a CI job calls it.

Each run is `python -m loadtest run ...` from a directory outside the checkout, so the exit code
checked here is the one a CI job sees. Durations are shortened with --duration (the stages keep
their proportions); thresholds are the scenarios' own. No assertion here depends on how fast
this machine is: verdicts, counts and what the report says, not throughput. (The example
workflow's flash sale at full length, against the relay and dall-e-4, runs in test_install.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def loadtest(tmp_path: Path, *args: str, timeout: float = 240) -> tuple[int, str, dict]:
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", *args, "--report-dir", str(report)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    out = proc.stderr + proc.stdout     # the console's last line is the verdict
    summary_path = report / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return proc.returncode, out, summary


def by_label(summary: dict) -> dict[str, dict]:
    return {t["label"]: t for t in summary["thresholds"]}


def test_relay_with_injected_errors_fails_on_success_rate(tmp_path: Path) -> None:
    code, out, summary = loadtest(tmp_path, "single", "--duration", "10s", "--set", "relay.error_rate=0.05")
    assert code == 1, out
    success = by_label(summary)["success rate >= 0.997"]
    assert success["verdict"] == "fail" and success["observed"] < 0.99
    assert summary["mock"]["set"] == ["relay.error_rate=0.05"]
    assert sum(v for k, v in summary["status_codes"].items() if k != "200") == summary["failures"]
    assert out.rstrip().splitlines()[-1].startswith("verdict: FAIL: the SLA was breached")


def test_distributed_run_reaches_the_same_verdict_and_loses_nothing(tmp_path: Path) -> None:
    code, out, summary = loadtest(tmp_path, "flash_sale", "--duration", "35s", "--workers", "2")
    assert summary, out
    assert summary["run"]["workers"] == 2 and summary["run"]["workers_lost"] == []
    assert summary["peak_users"] == 847
    # Every worker's requests reached the master's recorder: Locust's own count agrees.
    stats = (tmp_path / "report" / "locust_stats.csv").read_text().splitlines()
    aggregated = next(line for line in stats if ",Aggregated," in line)
    assert int(aggregated.split(",")[2]) == summary["requests"]
    # The gate's verdict, whatever this machine manages: never a breach blamed on a healthy relay.
    assert code in (0, 2) and (code == 0) == (summary["verdict"] == "pass"), out


def test_open_model_issues_every_scheduled_start_or_counts_it_dropped(tmp_path: Path) -> None:
    code, out, summary = loadtest(tmp_path, "sustained", "--duration", "20s")
    assert summary, out
    planned = summary["load"]["scheduled_starts"]
    # Each scheduled start ran to an answer or was counted dropped. The only others are generations still
    # in flight when the run stopped (a retried one can take seconds), a handful at most.
    missing = planned - (summary["requests"] + summary["dropped"])
    assert 0 <= missing <= 0.001 * planned, (summary["requests"], summary["dropped"], planned)
    assert summary["load"]["max_vus"] == 600
    assert "schedule_lag_p95_ms" in summary["generator"]["figures"]     # lateness is measured in one process too
    assert code in (0, 2), out


def test_open_model_drops_starts_a_slow_target_cannot_take_and_fails(tmp_path: Path) -> None:
    scenario = tmp_path / "slow.toml"
    scenario.write_text("""
name = "slow_open"
[target]
name = "dall-e-4"
[load]
model = "open"
max_vus = 10
stages = [{ name = "hold", duration = "8s", rate = 20 }]
[thresholds]
success = ["rate>=0.9995"]
dropped = ["count==0"]
[gate]
min_samples = 50
""")
    code, out, summary = loadtest(tmp_path, str(scenario))
    assert code == 1, out
    # 20 starts a second need ~90 in flight at 4.5 s each; 10 VUs leave most starts dropped,
    # and the dropped starts count against the success rate.
    assert summary["dropped"] > 50
    assert by_label(summary)["success rate >= 0.9995"]["verdict"] == "fail"
    assert summary["success_rate"] < 0.5


def test_unreachable_target_proves_nothing(tmp_path: Path) -> None:
    code, out, summary = loadtest(tmp_path, "single", "--target", "http://127.0.0.1:9/v1", "--duration", "5s")
    assert code == 2, out
    assert summary["verdict"] == "invalid" and summary["run"]["end"] == "not_run"
    assert "could not be reached" in " ".join(r["text"] for r in summary["reasons"])


@pytest.mark.parametrize("args, message", [
    (["no_such_scenario"], "no scenario 'no_such_scenario'"),
    (["single", "--target", "dalle-4"], "--target 'dalle-4' is neither a base URL nor a provider"),
    (["single", "--duration", "soon"], "--duration: not a duration"),
    (["single", "--duration=-5s"], "--duration: a duration cannot be negative"),
    (["single", "--duration", "0s"], "--duration: it must be longer than 0 s"),
    (["single", "--set", "relay.error_rate"], "NAME.setting=value"),
    (["single", "--set", "nobody.outage=true"], "no provider 'nobody'"),
    (["single", "--workers", "-1"], "--workers (WORKERS) must be 0 or more"),
    (["single", "--target", ""], "--target must not be empty"),
    (["single", "--mock-url", "localhost:8000"], "--mock-url 'localhost:8000' is not a usable base URL"),
])
def test_bad_input_is_a_clear_error_blamed_where_it_was_typed(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, _ = loadtest(tmp_path, *args, timeout=60)
    assert code == 2, out
    assert message in out
    assert "Traceback" not in out and "scenarios/single.toml" not in out


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "latin1.toml").write_bytes(b'name = "caf\xe9"\n') and "latin1.toml", "not UTF-8 text"),
    (lambda d: (d / "folder").mkdir() or "folder", "is a directory, not a scenario file"),
    (lambda d: (d / "page.toml").write_text("<html></html>") and "page.toml", "not valid TOML"),
])
def test_a_scenario_path_that_is_no_scenario_is_exit_2_without_a_traceback(tmp_path: Path, make, message: str) -> None:
    code, out, _ = loadtest(tmp_path, make(tmp_path), timeout=60)
    assert code == 2, out
    assert message in out and "Traceback" not in out


def test_an_unwritable_report_folder_is_exit_2_before_any_load(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    proc = subprocess.run([sys.executable, "-m", "loadtest", "run", "single", "--report-dir", str(blocked / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "cannot write the report to" in proc.stderr and "Traceback" not in proc.stderr
    assert "mock providers on" not in proc.stdout     # nothing was started


@pytest.mark.parametrize("scenario", ["single", "batch_10", "batch_50", "rate_limit_storm", "outage"])
def test_every_scenario_runs_and_reports(tmp_path: Path, scenario: str) -> None:
    # Shortened to 15 s, too short for the 95 % intervals: judged on the observed values (a smoke run).
    code, out, summary = loadtest(tmp_path, scenario, "--duration", "15s", "--inconclusive", "observed")
    assert summary, out
    assert summary["exit_code"] == code and code in (0, 1, 2)
    assert (code == 0) == (summary["verdict"] == "pass") and (code == 1) == (summary["verdict"] == "fail")
    assert summary["requests"] > 0 and summary["run"]["end"] == "schedule"
    if scenario.startswith("batch"):
        size = int(scenario.split("_")[1])
        assert summary["batches"]["size"] == size and summary["batches"]["batches"] >= 1
    if scenario == "rate_limit_storm":
        assert summary["retries"] > 0          # 429s were met and retried ...
        assert summary["status_codes"]["200"] > 0.9 * summary["requests"]   # ... and mostly turned into images
    if scenario == "outage":
        assert [a["settings"] for a in summary["actions"]] == [{"outage": True}, {"outage": False}]
        assert all(a["ok"] for a in summary["actions"])
        assert summary["failovers"] > 0        # the relay served another model meanwhile
        assert code == 0, out


# -- streams, edits and native batches ----------------------------------------------------------------

def variant(tmp_path: Path, name: str, **changes: dict) -> Path:
    """The built-in scenario with some tables changed (for a short run: a lower sample floor, and the observed
    values judged where a few hundred requests cannot give 95 % intervals narrow enough)."""
    import tomllib

    import tomli_w

    from loadtest.scenario import scenario_path
    raw = tomllib.loads(scenario_path(name).read_text())
    for table, values in changes.items():
        raw.setdefault(table, {}).update(values)
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def test_stream_preview_times_the_first_image_apart_and_gates_on_it(tmp_path: Path) -> None:
    # Shortened to 20 s, where 150 samples would not fit: the floor is lowered, the thresholds are the scenario's.
    path = variant(tmp_path, "stream_preview", gate={"min_samples": 30, "inconclusive": "observed"})
    # Two Locust workers: the first images each one timed reach the master's recorder.
    code, out, summary = loadtest(tmp_path, str(path), "--duration", "20s", "--workers", "2")
    assert code == 0, out
    assert summary["run"]["workers"] == 2 and summary["run"]["workers_lost"] == []
    first = by_label(summary)["first_image p(95) < 2500 ms"]
    assert first["verdict"] == "pass" and first["samples"] == summary["first_image"]["samples"] >= 30
    # Every successful generation streamed, so each has its first image (none lost in the merge); a failed one
    # has one only if an image came before its failure.
    assert summary["requests"] - summary["failures"] <= summary["first_image"]["samples"] <= summary["requests"]
    fi, lat = summary["first_image"]["ms"], summary["latency_ms"]
    # The first of two partial images is due at a third of each generation: well before the whole of it.
    assert fi["p50"] < 0.6 * lat["p50"] and fi["max"] <= lat["max"]
    assert summary["stages"][0]["first_image"]["samples"] == summary["first_image"]["samples"]
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "### Time to first image" in md and "first_image p(95) < 2500 ms" in md
    assert "first_image p(95) &lt; 2,500 ms" in (tmp_path / "report" / "report.html").read_text()
    assert "First image" in out and 'name="first_image p(95) &lt; 2500 ms"' in \
        (tmp_path / "report" / "junit.xml").read_text()


def test_a_slow_first_image_breaks_its_threshold_while_the_rest_holds(tmp_path: Path) -> None:
    path = variant(tmp_path, "stream_preview", gate={"min_samples": 20, "inconclusive": "observed"},
                   thresholds={"first_image": ["p(95)<2500"], "latency": ["p(95)<60000"], "success": ["rate>=0.99"]})
    # Three times slower: first images near 3 s, finished images still far inside a minute.
    code, out, summary = loadtest(tmp_path, str(path), "--duration", "30s", "--set",
                                  "gpt-image-1-mini.latency_multiplier=3")
    assert code == 1, out
    verdicts = {t["metric"]: t["verdict"] for t in summary["thresholds"]}
    assert verdicts == {"first_image": "fail", "latency": "pass", "success": "pass"}
    assert summary["reasons"][0]["text"].startswith("first_image p(95) was")


def test_catalog_edit_replaces_backgrounds_over_multipart_edits(tmp_path: Path) -> None:
    path = variant(tmp_path, "catalog_edit", gate={"min_samples": 30, "inconclusive": "observed"})
    # gpt-image-1's edits at a twentieth of their time, so a 20 s run edits a few hundred photos.
    code, out, summary = loadtest(tmp_path, str(path), "--duration", "20s", "--set",
                                  "gpt-image-1.latency_multiplier=0.05")
    assert code == 0, out
    assert summary["status_codes"].get("200", 0) == summary["requests"] - summary["failures"] >= 30
    assert summary["cost"]["images"] == summary["requests"] - summary["failures"]
    assert summary["first_image"] is None               # nothing streamed
    assert summary["cost"]["per_image_usd"] == pytest.approx(0.042, rel=0.01)   # gpt-image-1, medium, square


def test_a_batch_sent_the_native_way_is_one_request_of_ten(tmp_path: Path) -> None:
    # What is asserted is the batch's shape, its cost and that every request succeeds: the latency ceiling is
    # loosened, since a P99 of a hundred-odd requests is the second-slowest, which one hiccup of a busy
    # machine decides.
    path = variant(tmp_path, "batch_10", client={"batch": {"size": 10, "mode": "native"}},
                   gate={"min_samples": 20, "inconclusive": "observed"},
                   thresholds={"latency": ["p(99)<5000"], "success": ["rate>=0.998"]})
    code, out, summary = loadtest(tmp_path, str(path), "--duration", "12s")
    assert summary, out
    b = summary["batches"]
    assert (b["mode"], b["requests_per_batch"], b["images_per_request"]) == ("native", 1, [10])
    assert summary["cost"]["images"] == 10 * (summary["requests"] - summary["failures"])
    assert code == 0, out
