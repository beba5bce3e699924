"""A look from outside: every page the suite writes, opened in headless Chromium as a person opens it.

Each page fails its test on a console error, an uncaught exception, a failed request, an image
that did not load, or text showing float noise or an unfilled value (browser.assert_clean). The
pages: report.html of a real run (a flash sale against dall-e-4, aborted by its abort_on_fail
threshold; its summary.json is tests/data/flash_sale-dall-e-4.json, as `loadtest run` wrote it, one limit in
a detail since written as the gate now words it),
report.html of the synthetic passing and failing runs of test_plots_html, and compare.html from
synthetic cells with the real contradictions and caveats, and capacity.html of the capacity
search in tests/data/capacity.json (the knee scenario of test_capacity.py; its figures are
examples shaped as a search against the mock writes them), written as `loadtest capacity`
writes it, beside each step's report. The live SLA view is opened in test_ui.py, with a run
behind it.

A page more is one entry in PAGES: a builder that writes the page under a folder and returns
its path, and the text a reader must find on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from browser import VIEWPORT, assert_clean, launch, screenshot, watch
from playwright.sync_api import sync_playwright
from test_plots_html import compare_cells, make_summary

from loadtest.capacity import CapacityDoc, write_reports
from loadtest.compare import TARGETS, caveats, contradictions, sla
from loadtest.cost import monthly_projection
from loadtest.report.display import limit_text
from loadtest.report.html import write_compare_html, write_html
from loadtest.summary import Summary
from loadtest.thresholds import format_value
from mockprovider.profile import load_profiles

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parent / "data"


def real_report(out: Path) -> Path:
    return write_html(Summary.read(DATA / "flash_sale-dall-e-4.json"), out)


def synthetic_report(passed: bool) -> Callable[[Path], Path]:
    def build(out: Path) -> Path:
        doc = make_summary(passed=passed)
        # The synthetic run's sentences print raw numbers; put them as the gate words them.
        for t in doc["thresholds"]:
            shown = format_value(t["metric"], t["aggregation"], t["observed"])
            t["detail"] = f"observed {shown}, limit {limit_text(t['metric'], t['aggregation'], t['op'], t['limit'])}"
        doc["reasons"] = [{"kind": "breach", "text": f"{t['label']}: {t['detail']}"} for t in doc["thresholds"]
                          if t["verdict"] == "fail"]
        if not passed:     # an outage switched on mid-run, as the outage scenario does
            doc["actions"] = [{"at_s": 20.0, "planned_at_s": 20.0, "provider": "midjourney-v7",
                               "settings": {"outage": True}, "outcome": "HTTP 200", "ok": True}]
        return write_html(Summary.model_validate(doc), out)
    return build


def compare_page(out: Path) -> Path:
    cells = compare_cells()
    for c in cells:
        c["failed"] = 3 if (c["metric"], c["target"]) == ("burst847_peak", "dall-e-4") else 0
    profiles = load_profiles()
    doc = {"generated_at": "2026-12-01T07:32:27Z", "reduced": False, "seed": 42, "duration_s": 431.6,
           "targets": list(TARGETS), "cells": cells, "definitions": {c["metric"]: c["definition"] for c in cells},
           "sla": sla(), "contradictions": contradictions(copy.deepcopy(cells), profiles),
           "caveats": caveats(cells, profiles), "cost": monthly_projection(list(TARGETS))}
    return write_compare_html(doc, out)


def capacity_page(out: Path) -> Path:
    doc = CapacityDoc.model_validate_json((DATA / "capacity.json").read_text())
    for step in doc.steps:
        # Each step's own report, as the search leaves it under steps/ (its content is another test's).
        report = out / step.report_dir / "report" / "report.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text('<!DOCTYPE html><title>step</title><link rel="icon" href="data:,">')
    write_reports(doc, out)
    return out / "capacity.html"


# name -> (builder, texts a reader must find, the screenshot kept for the README or None)
PAGES: dict[str, tuple[Callable[[Path], Path], list[str], str | None]] = {
    "report, a real run against dall-e-4": (
        real_report, ["FAIL", "aborted early because latency p(99) < 600 ms [stage=surge] failed",
                      "over by", "Exit code 1"], "report.png"),
    "report, synthetic, passing": (synthetic_report(True), ["PASS", "The run held every threshold"], None),
    "report, synthetic, failing": (synthetic_report(False), ["FAIL", "midjourney-v7", "outage = true"], None),
    "compare": (compare_page, ["The SLA", "latency p(99) < 600 ms", "What this machine could not reproduce",
                               "Where the published figures contradict each other",
                               "2026-12-01 07:32:27 UTC"], "compare.png"),
    "capacity": (capacity_page, ["holds at 90 req/s, breaks at 95 req/s", "Bound: the target. Exit code 0",
                                 "The target itself broke", "What broke first at 95 req/s: over-saturation",
                                 "latency p(99) < 3000 ms", "highest that held", "lowest that broke",
                                 "BREAKS", "(gate: PASS, exit 0)",
                                 "2026-12-01 09:14:05 UTC"], "capacity.png"),
}


@pytest.mark.parametrize("name", PAGES)
def test_the_page_opens_whole_in_a_browser(tmp_path: Path, name: str) -> None:
    build, texts, keep = PAGES[name]
    page_file = build(tmp_path / "out")
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            seen = watch(page)
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert_clean(page, seen)
            text = page.evaluate("document.body.innerText")
            missing = [t for t in texts if t not in text]
            assert not missing, f"{name}: the page does not say {missing}"
            widths = page.locator("figure img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
            assert widths and min(widths) >= 900, widths    # the figures are there, at a readable size
            if keep:
                screenshot(page, keep, tmp_path, max_height=2000)
        finally:
            browser.close()


def test_a_broken_image_fails_the_check(tmp_path: Path) -> None:
    """The check itself can fail: a missing image, a console error and float noise are each caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><h1>x</h1>'
                   '<p>p99 108.57653499999742 ms</p><img src="missing.png" alt="a figure">'
                   '<script>console.error("boom")</script></body></html>')
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            seen = watch(page)
            page.goto(bad.as_uri())
            page.wait_for_load_state("load")
            with pytest.raises(AssertionError) as failed:
                assert_clean(page, seen)
            said = str(failed.value)
            assert "broken image: a figure" in said and "boom" in said and "'8.576534" in said
        finally:
            browser.close()
