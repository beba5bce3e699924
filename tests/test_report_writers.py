import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from loadtest.gate import End, RunFacts, judge
from loadtest.health import HealthSamples, assess
from loadtest.recorder import PERCENTILE_DEFINITION, Recorder
from loadtest.report import console, dumps, junit, markdown, write_all
from loadtest.summary import LoadDoc, RunDoc, ScenarioDoc, StageWindow, Summary, TargetDoc, build_summary
from loadtest.thresholds import parse_thresholds

T0 = 1_700_000_000.0
STAGES = [("ramp", 0.0, 10.0), ("surge", 10.0, 20.0)]
TARGET = {"name": "relay", "api": "relay", "base_url": "http://127.0.0.1:8000/relay/v1", "model": "dall-e-4"}


def evaluate(thresholds, rec, facts=None, health=None):
    return judge(thresholds, rec, health, facts, min_samples=100)


def docs(scenario="flash_sale", description=""):
    return dict(scenario=ScenarioDoc(name=scenario, description=description, load_model="closed", planned_s=20.0,
                                     min_samples=100, stages=[StageWindow(name=n, start_s=a, end_s=b)
                                                              for n, a, b in STAGES]),
                target=TargetDoc(**TARGET), run=RunDoc(end="schedule", planned_s=20.0, elapsed_s=20.0),
                load=LoadDoc(model="closed", peak_users=847, think_time_s=[0.5, 0.9]))


def make_summary(*, median=250.0, facts=None, thresholds=None, n=4000, scenario="flash_sale", description="",
                 dropped=0, health=None):
    rng = np.random.default_rng(3)
    rec = Recorder(stages=STAGES, start_time=T0)
    rec.set_users(847, ts=T0 + 1)
    for i in range(n):
        ok = i % 500 != 0
        rec.record(name="generate", target="relay", latency_ms=float(rng.lognormal(np.log(median), 0.3)), ok=ok,
                   status=200 if ok else 429, ts=T0 + 0.5 + i * 19 / n, cost_usd=0.05 if ok else 0.0,
                   attempts=2 if i % 100 == 0 else 1)
    for _ in range(dropped):
        rec.record_dropped(name="generate", target="relay", ts=T0 + 12)
    rec.stop(T0 + 20)
    facts = facts or RunFacts()
    th = parse_thresholds(thresholds or {"latency": ["p(99)<600"], "latency{stage:surge}": ["p(99)<600"],
                                         "success": ["rate>=0.99"]})
    verdict = evaluate(th, rec, facts, health)
    summary = build_summary(**docs(scenario, description), recorder=rec, verdict=verdict, health=health,
                            started_at=datetime.fromtimestamp(T0, UTC), duration_s=20.0,
                            expected_latency={"distribution": "lognormal", "median_ms": 42})
    return summary, rec, verdict


# -- summary.json --------------------------------------------------------------------------------

def test_summary_document():
    summary, rec, verdict = make_summary()
    s = summary.json_dict()
    assert s["format"] == "loadtest.summary/1"
    assert s["scenario"]["name"] == "flash_sale" and s["target"] == TARGET
    assert s["started_at"] == "2023-11-14T22:13:20Z"
    assert (s["verdict"], s["passed"], s["exit_code"]) == ("pass", True, 0)
    assert s["requests"] == 4000 and s["failures"] == 8 and s["dropped"] == 0
    assert s["success_rate"] == pytest.approx(3992 / 4000)
    assert s["attempts"] == 4040 and s["retries"] == 40
    assert s["status_codes"] == {"200": 3992, "429": 8}
    assert s["peak_users"] == 847
    assert s["cost"] == {"usd": pytest.approx(3992 * 0.05), "images": 3992, "per_image_usd": pytest.approx(0.05)}
    assert set(s["latency_ms"]) == {"p50", "p90", "p95", "p99", "p99.9", "max", "min", "mean"}
    assert s["latency_ms"]["p99"] == pytest.approx(rec.select().percentile(99), abs=0.001)
    assert [st["name"] for st in s["stages"]] == ["ramp", "surge"]
    assert sum(st["requests"] for st in s["stages"]) == 4000
    assert s["thresholds"][1]["filters"] == {"stage": "surge"} and s["thresholds"][1]["expression"] == "p(99)<600"
    assert s["thresholds"][1]["key"] == "latency{stage:surge}"
    assert {"metric", "filters", "expression", "label", "observed", "unit", "samples", "verdict", "detail",
            "abort_on_fail", "margin"} <= set(s["thresholds"][0])
    assert s["thresholds"][0]["margin"]["unit"] == "ms" and s["thresholds"][0]["margin"]["words"].endswith("to spare")
    assert len(s["timeline"]) == 20 and s["timeline"][3]["users"] == 847
    assert s["latency_distribution"][-1] == [100.0, s["latency_ms"]["max"]]
    assert s["expected_latency"] == {"distribution": "lognormal", "median_ms": 42}
    assert s["generator"] == {"saturated": False, "reasons": [], "figures": {}}
    assert s["percentile_definition"] == PERCENTILE_DEFINITION and s["files"] == {}
    # milliseconds to the microsecond, never float noise
    assert all(v is None or round(v, 3) == v for v in s["latency_ms"].values())
    json.dumps(s, allow_nan=False)   # strict JSON
    assert Summary.model_validate(s) == summary


def test_summary_of_an_empty_run_is_strict_json():
    rec = Recorder(start_time=T0)
    verdict = evaluate(parse_thresholds({"latency": ["p(99)<600"]}), rec)
    s = build_summary(**docs("x"), recorder=rec, verdict=verdict, health=None,
                      started_at=datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), duration_s=0)
    text = json.dumps(s.json_dict(), allow_nan=False)
    assert s.latency_ms.p99 is None and s.success_rate is None and s.cost.per_image_usd is None
    assert s.started_at == "2025-01-01T10:00:00Z" and s.expected_latency is None
    assert '"verdict": "invalid"' in text


# -- JUnit ---------------------------------------------------------------------------------------

def parse(xml_text):
    root = ET.fromstring(xml_text)
    (suite,) = root.findall("testsuite")
    return root, suite


def test_junit_counts_a_breach():
    s, _, _ = make_summary(median=450)   # p99 above 600 ms
    root, suite = parse(junit.render(s))
    assert suite.get("name") == "sla.flash_sale"
    counts = tuple(suite.get(k) for k in ("tests", "failures", "errors", "skipped"))
    assert counts == ("4", "2", "0", "0")
    assert root.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["run is valid", "latency p(99) < 600 ms",
                                              "latency p(99) < 600 ms [stage=surge]", "success rate >= 0.99"]
    assert all(c.get("classname") == "sla.flash_sale" for c in cases)
    assert cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure is not None and "over by" in failure.get("message")
    assert cases[3].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["target"] == "relay" and props["requests"] == "4000" and float(props["p99_ms"]) > 600
    assert float(props["rps"]) == pytest.approx(200.0)


def test_junit_marks_an_invalid_run_and_insufficient_thresholds_as_errors():
    s, _, _ = make_summary(n=50)
    _, suite = parse(junit.render(s))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "4")
    valid = suite.find("testcase[@name='run is valid']")
    assert "proves nothing" in valid.find("error").text


def test_junit_for_a_saturated_generator():
    hot = assess(HealthSamples(cpu=[97.0] * 12, lag_ms=[400.0], lag_at=[T0 + 5]))
    s, _, _ = make_summary(health=hot)
    _, suite = parse(junit.render(s))
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    err = suite.find("testcase[@name='run is valid']/error")
    assert "CPU was at or above 90 % for 100% of the run" in err.get("message")


def test_junit_escapes_and_strips_what_xml_cannot_carry():
    s, _, _ = make_summary(scenario="ab", median=450)
    s.scenario.name = 'a<b>&"c"\x07'
    s.thresholds[0].detail = 'over & out <now> "quoted" \x00\x1b'
    text = junit.render(s)
    _, suite = parse(text)   # would raise on bad escaping or control characters
    assert suite.get("name") == 'sla.a<b>&"c"\ufffd'
    assert suite.findall("testcase")[1].find("failure").get("message") == 'over & out <now> "quoted" \ufffd\ufffd'


# -- Markdown ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("median, facts, first", [
    (250, None, "✅ **SLA held**"),
    (450, None, "❌ **SLA breached**"),
    (250, RunFacts(end=End.INTERRUPTED, planned_s=20, elapsed_s=9), "⚠️ **run proves nothing**"),
])
def test_markdown_verdict_line(median, facts, first):
    s, _, _ = make_summary(median=median, facts=facts)
    text = markdown.render(s)
    assert text.splitlines()[0].startswith(first)
    assert "`flash_sale` against `relay`" in text.splitlines()[0]


def test_markdown_tables_margin_and_file_names():
    s, _, _ = make_summary(median=450, description="Flash | sale")
    s.files = {"summary": "summary.json", "html": "report.html"}
    text = markdown.render(s)
    assert "| Threshold | Observed | 95 % interval | Limit | Verdict | Detail |" in text
    failing = next(line for line in text.splitlines() if line.startswith("| latency p(99) < 600 ms |"))
    assert "❌ fail" in failing and "< 600 ms" in failing and "over by" in failing
    assert f"{s.latency_ms.p99:,.1f}" in text
    assert "| 429 | 8 |" in text
    # A job summary is shown apart from the files: no relative links, the artefact named instead.
    assert "](" not in text and "`report.html`" in text and "artefact `sla-report`" in text
    assert "_Flash | sale_" in text                 # prose is not table-escaped
    assert "### Stages" in text and "| surge |" in text


# -- console ----------------------------------------------------------------------------------------

def test_console_evidence_then_one_verdict_line():
    s, _, verdict = make_summary(median=450)
    text = console.render(s)
    assert "exit 1" not in text and "SLA" not in text.splitlines()[0]   # the verdict is the caller's last line
    failing = next(line for line in text.splitlines() if "FAIL" in line and "[stage=surge]" in line)
    assert "over by" in failing and "ms" in failing
    assert "\x1b[" not in text
    assert "Success rate" in text and "99.800 %" in text and "429: 8" in text and "$199.60" in text
    line = console.verdict_line(s, report="reports/x/report.html")
    assert line == ("verdict: FAIL: the SLA was breached — flash_sale against relay (exit 1); "
                    "report: reports/x/report.html")


def test_console_passes_invalid_and_color():
    s, _, _ = make_summary()
    assert console.verdict_line(s).startswith("verdict: PASS: the SLA held")
    s, _, _ = make_summary(n=30)
    text = console.render(s)
    assert "proves nothing" in text and console.verdict_line(s).startswith("verdict: INVALID")
    row = next(line for line in text.splitlines() if "INSUFFICIENT" in line)
    assert row.rstrip().endswith("30 of the 100 samples needed")
    assert "\x1b[1;33m" in console.render(s, color=True)


# -- write_all --------------------------------------------------------------------------------------

def test_write_all_writes_three_files_and_keeps_existing_entries(tmp_path):
    s, _, _ = make_summary(median=450)
    s.files = {"html": "report.html"}
    paths = write_all(s, tmp_path / "out")
    assert set(paths) == {"summary", "junit", "markdown"}
    assert all(p.exists() and p.parent == tmp_path / "out" for p in paths.values())
    assert s.files == {"html": "report.html", "summary": "summary.json", "junit": "junit.xml",
                       "markdown": "summary.md"}
    text = paths["summary"].read_text()
    saved = json.loads(text)
    assert saved["files"] == s.files and saved["verdict"] == "fail"
    assert saved == s.json_dict()                      # the compact rows change nothing
    assert Summary.read(paths["summary"]) == s
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith('{"t_s"')) == len(s.timeline)
    ET.parse(paths["junit"])
    assert paths["markdown"].read_text().startswith("❌")
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert "junit.xml" in console.render(Summary.read(paths["summary"]))


def test_an_unwritable_report_folder_is_one_clear_error(tmp_path):
    from loadtest.report import ReportWriteError
    s, _, _ = make_summary()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(ReportWriteError, match="cannot write the report to"):
        write_all(s, blocked / "out")


def test_report_write_failures_read_as_one_sentence(tmp_path):
    from loadtest.locust.native import why, write_failures_text
    from loadtest.report import ReportWriteError
    full = OSError(28, "No space left on device", str(tmp_path / "locust.html"))
    wrapped = ReportWriteError("cannot write the report")
    wrapped.__cause__ = full
    text = write_failures_text(tmp_path, [("Locust's CSV files", why(full)), ("locust.html", why(full)),
                                          ("summary.json, junit.xml, summary.md", why(wrapped)),
                                          ("report.html", "Read-only file system")])
    assert text == (f"the report could not be written to {tmp_path}: No space left on device (Locust's CSV files, "
                    "locust.html, summary.json, junit.xml, summary.md); Read-only file system (report.html)")


def test_no_summary_from_before_a_failed_write_is_left_saying_the_run_passed(tmp_path):
    from loadtest.locust.run import _replace_stale_report
    passed, _, _ = make_summary()
    assert passed.exit_code == 0
    write_all(passed, tmp_path)
    failed, _, _ = make_summary(facts=RunFacts(harness_errors=("the report could not be written to r: full",)))
    failed.files.update({"html": "report.html", "recording": "recording.json"})   # listed, never written
    _replace_stale_report(failed, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["exit_code"] == 2 and on_disk["verdict"] == "invalid"
    assert set(failed.files) == {"summary", "junit", "markdown"} and set(on_disk["files"]) == set(failed.files)
    # A folder that takes no new summary (here a folder squats where it would be written first): the old
    # one is removed all the same, and no file is listed that is not there.
    write_all(passed, tmp_path)
    (tmp_path / "summary.json.tmp").mkdir()
    _replace_stale_report(failed, tmp_path)
    assert not (tmp_path / "summary.json").exists()
    assert not {"summary", "junit", "markdown"} & set(failed.files)
def test_every_number_in_summary_json_is_rounded_once():
    """Milliseconds to the microsecond, fractions to six places: no float noise anywhere in the file."""
    _, rec, verdict = make_summary()
    # A second with one request: its percentiles are that request's exact latency, as measured.
    rec = Recorder(stages=STAGES, start_time=T0)
    rng = np.random.default_rng(5)
    for i in range(2000):
        rec.record(name="generate", target="relay", latency_ms=float(rng.lognormal(np.log(300), 0.3)), ok=True,
                   status=200, ts=T0 + 0.5 + i * 18 / 2000)
    rec.record(name="generate", target="relay", latency_ms=117.97328699958598, ok=True, status=200, ts=T0 + 19.5)
    rec.stop(T0 + 20)
    summary = build_summary(**docs(), recorder=rec, verdict=verdict, health=None,
                            started_at=datetime.fromtimestamp(T0, UTC), duration_s=20.0,
                            expected_latency={"distribution": "lognormal", "sigma": 0.3228093097462464})
    raw = [r["p99_ms"] for r in rec.timeline() if r["p99_ms"] is not None]
    assert any(round(v, 3) != v for v in raw)       # the HDR buckets' edges: binary fractions, noisy in decimal
    doc = json.loads(dumps(summary))

    def floats(x, where=""):
        if isinstance(x, float):
            yield where, x
        elif isinstance(x, dict):
            for k, v in x.items():
                yield from floats(v, f"{where}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from floats(v, f"{where}[{i}]")

    noisy = [(w, v) for w, v in floats(doc) if round(v, 6) != v]
    assert not noisy, noisy[:5]
    timeline = [v for row in doc["timeline"] for k, v in row.items() if k.endswith("_ms") and v is not None]
    assert timeline and all(round(v, 3) == v for v in timeline)      # each second's latencies, to the µs
    assert doc["expected_latency"]["sigma"] == 0.322809
