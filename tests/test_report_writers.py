import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from loadtest.gate import RunFacts, evaluate
from loadtest.recorder import PERCENTILE_DEFINITION, Recorder
from loadtest.report import build_summary, console, junit, markdown, write_all
from loadtest.thresholds import parse_thresholds

T0 = 1_700_000_000.0
STAGES = [("ramp", 0.0, 10.0), ("surge", 10.0, 20.0)]
TARGET = {"name": "relay", "api": "relay", "base_url": "http://127.0.0.1:8000/relay/v1", "model": "dall-e-4"}


def make_summary(*, median=300.0, facts=None, thresholds=None, n=4000, scenario="flash_sale", description="",
                 dropped=0):
    rng = np.random.default_rng(3)
    rec = Recorder(stages=STAGES, start_time=T0)
    rec.set_users(847, ts=T0 + 1)
    for i in range(n):
        ok = i % 500 != 0
        rec.record(name="generate", target="relay", latency_ms=float(rng.lognormal(np.log(median), 0.3)), ok=ok,
                   status=200 if ok else 429, ts=T0 + 0.5 + i * 19 / n, cost_usd=0.05 if ok else 0.0,
                   attempts=2 if i % 100 == 0 else 1)
    for i in range(dropped):
        rec.record_dropped(name="generate", target="relay", ts=T0 + 12)
    rec.stop(T0 + 20)
    facts = facts or RunFacts()
    th = parse_thresholds(thresholds or {"latency": ["p(99)<600"], "latency{stage:surge}": ["p(99)<600"],
                                         "success": ["rate>=0.99"]})
    verdict = evaluate(th, rec, facts)
    summary = build_summary(scenario={"name": scenario, "description": description}, target=TARGET, recorder=rec,
                            verdict=verdict, facts=facts, started_at=datetime.fromtimestamp(T0, UTC),
                            duration_s=20.0, expected_latency={"distribution": "lognormal", "median_ms": 42})
    return summary, rec, verdict


# -- summary.json --------------------------------------------------------------------------------

def test_summary_document():
    s, rec, verdict = make_summary()
    assert s["scenario"] == "flash_sale" and s["target"] == TARGET
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
    assert {"metric", "filters", "expression", "label", "observed", "unit", "samples", "verdict", "detail",
            "abort_on_fail"} <= set(s["thresholds"][0])
    assert len(s["timeline"]) == 20 and s["timeline"][3]["users"] == 847
    assert s["latency_distribution"][-1] == [100.0, s["latency_ms"]["max"]]
    assert s["expected_latency"] == {"distribution": "lognormal", "median_ms": 42}
    assert s["generator"] == {"saturated": False, "detail": ""}
    assert s["percentile_definition"] == PERCENTILE_DEFINITION and s["files"] == {}
    json.dumps(s, allow_nan=False)   # strict JSON


def test_summary_of_an_empty_run_is_strict_json():
    rec = Recorder(start_time=T0)
    verdict = evaluate(parse_thresholds({"latency": ["p(99)<600"]}), rec)
    s = build_summary(scenario={"name": "x"}, target=TARGET, recorder=rec, verdict=verdict, facts=RunFacts(),
                      started_at=datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), duration_s=0,
                      extra={"seed": 7})
    text = json.dumps(s, allow_nan=False)
    assert s["latency_ms"]["p99"] is None and s["success_rate"] is None and s["cost"]["per_image_usd"] is None
    assert s["started_at"] == "2025-01-01T10:00:00Z" and s["seed"] == 7 and s["expected_latency"] is None
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
    s, _, _ = make_summary(facts=RunFacts(generator_saturated=True, saturation_detail="CPU at 97 % for 12 s"))
    _, suite = parse(junit.render(s))
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    err = suite.find("testcase[@name='run is valid']/error")
    assert "CPU at 97 % for 12 s" in err.get("message")


def test_junit_escapes_and_strips_what_xml_cannot_carry():
    s, _, _ = make_summary(scenario='a<b>&"c"\x07', median=450)
    s["thresholds"][0]["detail"] = 'over & out <now> "quoted" \x00\x1b'
    text = junit.render(s)
    _, suite = parse(text)   # would raise on bad escaping or control characters
    assert suite.get("name") == 'sla.a<b>&"c"\ufffd'
    assert suite.findall("testcase")[1].find("failure").get("message") == 'over & out <now> "quoted" \ufffd\ufffd'


# -- Markdown ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("median, facts, first", [
    (300, None, "✅ **SLA held**"),
    (450, None, "❌ **SLA breached**"),
    (300, RunFacts(target_reachable=False), "⚠️ **run proves nothing**"),
])
def test_markdown_verdict_line(median, facts, first):
    s, _, _ = make_summary(median=median, facts=facts)
    text = markdown.render(s)
    assert text.splitlines()[0].startswith(first)
    assert "`flash_sale` against `relay`" in text.splitlines()[0]


def test_markdown_tables_margin_and_links():
    s, _, _ = make_summary(median=450, description="Flash | sale")
    s["files"] = {"summary": "summary.json", "html": "report.html"}
    text = markdown.render(s)
    assert "| Threshold | Observed | Limit | Verdict | Detail |" in text
    failing = next(line for line in text.splitlines() if line.startswith("| latency p(99) < 600 ms |"))
    assert "❌ fail" in failing and "< 600 ms" in failing and "over by" in failing
    assert f"{s['latency_ms']['p99']:,.1f}" in text
    assert "| 429 | 8 |" in text
    assert "[html](report.html)" in text and "[summary](summary.json)" in text
    assert "_Flash | sale_" in text                 # prose is not table-escaped
    assert "### Stages" in text and "| surge |" in text


# -- console ----------------------------------------------------------------------------------------

def test_console_verdict_first_and_last_with_margin():
    s, _, verdict = make_summary(median=450)
    text = console.render(s)
    lines = text.rstrip("\n").splitlines()
    assert lines[0].startswith("FAIL") and "SLA breached" in lines[0] and "exit 1" in lines[0]
    assert lines[-1] == lines[0]
    failing = next(line for line in lines if "FAIL" in line and "[stage=surge]" in line)
    assert "over by" in failing and "ms" in failing
    assert "\x1b[" not in text
    assert "Success rate" in text and "99.800 %" in text and "429: 8" in text and "$199.60" in text


def test_console_passes_invalid_and_color():
    s, _, _ = make_summary()
    assert console.render(s).startswith("PASS") and "SLA held" in console.render(s).splitlines()[0]
    s, _, _ = make_summary(n=30)
    text = console.render(s)
    assert text.startswith("INVALID") and "run proves nothing" in text
    row = next(line for line in text.splitlines() if "INSUFFICIENT" in line)
    assert row.rstrip().endswith("only 30 requests, at least 100 needed to judge")
    assert "\x1b[1;33m" in console.render(s, color=True)


# -- write_all --------------------------------------------------------------------------------------

def test_write_all_writes_three_files_and_keeps_existing_entries(tmp_path):
    s, _, _ = make_summary(median=450)
    s["files"] = {"html": "report.html"}
    paths = write_all(s, tmp_path / "out")
    assert set(paths) == {"summary", "junit", "markdown"}
    assert all(p.exists() and p.parent == tmp_path / "out" for p in paths.values())
    assert s["files"] == {"html": "report.html", "summary": "summary.json", "junit": "junit.xml",
                          "markdown": "summary.md"}
    text = paths["summary"].read_text()
    saved = json.loads(text)
    assert saved["files"] == s["files"] and saved["verdict"] == "fail"
    assert saved == json.loads(json.dumps(s))                      # the compact rows change nothing
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith('{"t_s"')) == len(s["timeline"])
    ET.parse(paths["junit"])
    assert paths["markdown"].read_text().startswith("❌")
    assert "[junit](junit.xml)" in paths["markdown"].read_text()
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert "junit.xml" in console.render(saved)
