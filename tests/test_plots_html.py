"""Plots and the HTML reports: rendered from realistic synthetic summaries, checked as files a person opens.

The synthetic run is a flash sale against the relay (baseline, a surge to 847 users, a
hold, a decay); every second's latencies are drawn from a log-normal whose median grows
with load, and the failing variant overloads during the surge (queueing, 429s, 503s,
timeouts). Nothing is run; the figures only have to look like a real run's.
"""

from __future__ import annotations

import base64
import copy
import math
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest.cost import monthly_projection
from loadtest.report import display, plots
from loadtest.report import html as html_module
from loadtest.report.html import THRESHOLD_COLUMNS, write_compare_html
from loadtest.report.html import write_html as write_typed_html
from loadtest.summary import Summary
from loadtest.thresholds import parse_thresholds

STAGES = (("baseline", 15, 100), ("surge", 5, 847), ("hold", 40, 847), ("decay", 10, 100))
PCTS = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100]


def _users_at(t: float) -> int:
    start = 0.0
    prev = STAGES[0][2]
    for _, dur, users in STAGES:
        if t < start + dur:
            if users > prev:    # spawning: about 400 a second, as the scenario says
                return int(min(users, prev + 400 * (t - start + 1)))
            return users
        start += dur
        prev = users
    return prev


def make_summary(passed: bool = True, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    timeline, all_lat = [], []
    codes_total: dict[str, int] = {}
    stage_acc: dict[str, list[float]] = {n: [] for n, _, _ in STAGES}
    stage_fail = {n: 0 for n, _, _ in STAGES}
    bounds, t0 = [], 0
    for name, dur, _ in STAGES:
        bounds.append((name, t0, t0 + dur))
        t0 += dur
    for t in range(t0):
        users = _users_at(t)
        stage = next(n for n, a, b in bounds if a <= t < b)
        overload = (not passed) and stage in ("surge", "hold") and t < 30
        median = 42 * (1 + users / 3000) * (8 if overload else 1)
        rps = users / (0.7 + median / 1000)
        n = int(rps)
        lat = rng.lognormal(math.log(median), 0.33, n)
        codes = {"200": n}
        if overload:
            bad = {"429": int(0.03 * n), "503": int(0.01 * n), "timeout": 2}
            for c, k in bad.items():
                codes[c] = k
                codes["200"] -= k
            lat[:2] = 30_000.0
        else:
            k = int(rng.binomial(n, 0.0002))
            if k:
                codes["500"] = k
                codes["200"] -= k
        fails = n - codes["200"]
        for c, k in codes.items():
            codes_total[c] = codes_total.get(c, 0) + k
        all_lat.append(lat)
        stage_acc[stage].extend(lat.tolist())
        stage_fail[stage] += fails
        q = np.percentile(lat, [50, 95, 99])
        timeline.append({"t_s": t, "users": users, "requests": n, "failures": fails, "dropped": 0, "rps": float(n),
                         "codes": codes, "p50_ms": float(q[0]), "p95_ms": float(q[1]), "p99_ms": float(q[2]),
                         "max_ms": float(lat.max())})
    lat = np.concatenate(all_lat)
    requests = int(len(lat))
    failures = requests - codes_total["200"]
    p = lambda x: round(float(np.percentile(lat, x)), 1)  # noqa: E731
    stages: list[dict[str, Any]] = []
    for name, a, b in bounds:
        s = np.asarray(stage_acc[name])
        stages.append({"name": name, "start_s": a, "end_s": b, "requests": len(s), "failures": stage_fail[name],
                       "dropped": 0,
                       "rps": round(len(s) / (b - a), 1),
                       "latency_ms": {"p50": round(float(np.percentile(s, 50)), 1),
                                      "p99": round(float(np.percentile(s, 99)), 1)}})
    p99, p50 = p(99), p(50)
    success = 1 - failures / requests
    thresholds = [
        _thr("latency", {}, "p(99)<600", p99, "ms", requests, p99 < 600),
        _thr("latency", {}, "p(50)<500", p50, "ms", requests, p50 < 500),
        _thr("success", {}, "rate>=0.9995", round(success, 6), "", requests, success >= 0.9995),
        _thr("requests", {"stage": "hold"}, "rps>=1000", stages[2]["rps"], "req/s", stages[2]["requests"],
             stages[2]["rps"] >= 1000),
        _thr("latency", {"stage": "surge"}, "p(99)<600", stages[1]["latency_ms"]["p99"], "ms",
             stages[1]["requests"], stages[1]["latency_ms"]["p99"] < 600, abort=True),
    ]
    ok = all(t["verdict"] == "pass" for t in thresholds)
    reasons = [] if ok else [{"kind": "breach", "text": f"{t['label']}: observed {t['observed']} {t['unit']}".strip()}
                             for t in thresholds if t["verdict"] == "fail"]
    retries = int(codes_total.get("429", 0) * 0.8)
    images = codes_total["200"]
    return {
        "scenario": {"name": "flash_sale", "load_model": "closed", "planned_s": float(t0), "min_samples": 1000,
                     "description": "Flash sale: a baseline, a surge to 847 concurrent users within seconds, a "
                                    "hold, a decay",
                     "stages": [{"name": n, "start_s": a, "end_s": b} for n, a, b in bounds]},
        "generator": {"saturated": False}, "run": {"end": "schedule", "planned_s": float(t0), "elapsed_s": float(t0)},
        "load": {"model": "closed", "peak_users": 847, "think_time_s": [0.5, 0.9]},
        "target": {"name": "relay", "api": "relay", "base_url": "http://127.0.0.1:8000/relay/v1",
                   "model": "midjourney-v7"},
        "started_at": "2025-01-01T12:00:00+00:00", "duration_s": float(t0), "passed": ok,
        "verdict": "pass" if ok else "fail", "exit_code": 0 if ok else 1, "reasons": reasons,
        "thresholds": thresholds, "requests": requests, "failures": failures, "dropped": 0,
        "success_rate": round(success, 6), "attempts": requests + retries, "retries": retries,
        "failovers": 12, "latency_ms": {"p50": p50, "p90": p(90), "p95": p(95), "p99": p99, "p99.9": p(99.9),
                                        "max": round(float(lat.max()), 1), "min": round(float(lat.min()), 1),
                                        "mean": round(float(lat.mean()), 1)},
        "rps": round(requests / t0, 1), "status_codes": codes_total, "peak_users": 847,
        "cost": {"usd": round(images * 0.08, 2), "per_image_usd": 0.08, "images": images},
        "stages": stages, "timeline": timeline,
        "latency_distribution": [[q, round(float(np.percentile(lat, q)), 2)] for q in PCTS],
        "expected_latency": {"distribution": "lognormal", "p50_ms": 42.0, "p99_ms": 89.0, "sigma": 0.3226,
                             "min_ms": 10.0, "max_ms": 2000.0, "latency_scale": 1.0},
        "files": {"summary": "summary.json", "junit": "junit.xml", "markdown": "summary.md",
                  "locust_html": "locust.html", "locust_csv": "locust_stats.csv"},
    }


def _thr(metric: str, filters: dict[str, str], expr: str, observed: float, unit: str, samples: int, ok: bool,
         abort: bool = False) -> dict[str, Any]:
    tag = "{" + ",".join(f"{k}:{v}" for k, v in filters.items()) + "}" if filters else ""
    op = next(o for o in ("<=", ">=", "==", "!=", "<", ">") if o in expr)
    agg, _, limit = expr.partition(op)
    return {"key": f"{metric}{tag}", "aggregation": "p" if agg.startswith("p(") else agg, "op": op,
            "limit": float(limit), "metric": metric, "filters": filters, "expression": expr,
            "label": parse_thresholds({f"{metric}{tag}": [expr]})[0].label(),
            "observed": observed, "unit": unit, "samples": samples, "verdict": "pass" if ok else "fail",
            "detail": "" if ok else f"{observed} {unit} breaks {expr}".strip(), "abort_on_fail": abort}


def write_html(summary: dict[str, Any], outdir: Path) -> Path:
    """The page for a summary written as JSON (the synthetic runs here are built as summary.json reads)."""
    return write_typed_html(Summary.model_validate(summary), outdir)


def compare_cells() -> list[dict[str, Any]]:
    published = {"single_p50": (42, 3200, 4100, 2800), "single_p99": (89, 8700, 11300, 6400),
                 "batch10_per_image": (38, 2100, 3200, 1900), "burst847_peak": (67, 14200, 19800, 11600),
                 "sustained_rps": (1200, 28, 22, 34)}
    labels = {"single_p50": ("single", "Single image P50", "ms"), "single_p99": ("single", "Single image P99", "ms"),
              "batch10_per_image": ("batch_10", "Batch 10, average per image", "ms"),
              "burst847_peak": ("concurrent_847", "Concurrent 847, peak", "ms"),
              "sustained_rps": ("sustained", "Sustained throughput", "req/s")}
    factor = {"relay": 1.05, "midjourney-v7": 0.97, "dall-e-4": 1.02, "imagen-4": 1.1}
    cells = []
    for metric, pub in published.items():
        for target, value in zip(("relay", "midjourney-v7", "dall-e-4", "imagen-4"), pub):
            workload, label, unit = labels[metric]
            measured = round(value * factor[target] * (1.25 if metric == "burst847_peak" else 1), 1)
            if metric == "batch10_per_image":
                measured = round(value * 0.45, 1)
            cells.append({"workload": workload, "target": target, "metric": metric, "label": label, "unit": unit,
                          "measured": measured, "published": value,
                          "deviation_pct": round(100 * (measured - value) / value, 1), "samples": 1000,
                          "definition": f"{label}, as measured", "run": f"runs/{workload}-{target}"})
    return cells


# --- checking the output --------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_real_png(path: Path, min_kb: float = 15) -> None:
    assert path.exists()
    w, h = png_size(path)
    # 100 dpi figures of 10-12 x 6-7 inches: big enough to read, small enough to mail.
    assert 900 <= w <= 1300 and 550 <= h <= 800, (w, h)
    assert min_kb * 1024 < path.stat().st_size < 600 * 1024   # a blank canvas compresses to a few KB


class Page(HTMLParser):
    """Collects what a reader (and a browser) would: images, links, text; and checks tags nest."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.attrs_by_id: dict[str, dict[str, str]] = {}
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.attrs_by_id[a["id"]] = a
        if tag == "img":
            self.imgs.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    assert p.doctype, "no <!DOCTYPE html>"
    assert not p.errors, p.errors
    assert not p.stack, f"unclosed: {p.stack}"
    return p


def embedded(page: Page, png: Path) -> bool:
    want = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
    return any(img.get("src") == want and img.get("alt") for img in page.imgs)


# --- the run report ------------------------------------------------------------------


@pytest.fixture(scope="module")
def passing() -> dict[str, Any]:
    return make_summary(passed=True)


@pytest.fixture(scope="module")
def failing() -> dict[str, Any]:
    return make_summary(passed=False)


@pytest.mark.parametrize(("s", "text"), [
    (42.4, "42 s"), (130, "2 min 10 s"), (900, "15 min"), (4 * 3600, "4 h"), (4 * 3600 + 300, "4 h 5 min"),
    (None, "—"), (math.nan, "—")])
def test_a_length_of_time_reads_without_a_zero_remainder(s, text):
    assert display.duration(s) == text


def test_the_synthetic_runs_are_what_they_claim(passing, failing):
    assert passing["verdict"] == "pass" and failing["verdict"] == "fail"
    assert passing["latency_ms"]["p99"] < 600 < failing["latency_ms"]["p99"]
    assert failing["status_codes"]["429"] > 0 and failing["status_codes"]["timeout"] > 0


@pytest.mark.parametrize("which", ["passing", "failing"])
def test_report_renders_embeds_states_and_links(request, tmp_path, which):
    summary = request.getfixturevalue(which)
    out = write_html(summary, tmp_path)
    assert out == tmp_path / "report.html"
    pngs = [tmp_path / n for n in ("latency_over_time.png", "latency_distribution.png", "status_codes.png")]
    for png in pngs:
        assert_real_png(png)
    page = parse(out)
    for png in pngs:
        assert embedded(page, png), f"{png.name} is not embedded"
        assert png.name in page.links, f"{png.name} is not linked"
    banner = page.attrs_by_id["verdict"]
    assert banner["data-verdict"] == summary["verdict"]
    text = " ".join(page.text)
    word = {"pass": "PASS", "fail": "FAIL"}[summary["verdict"]]
    assert word in text
    assert ("SLA was not met" in text) == (summary["verdict"] == "fail")
    for reason in summary["reasons"]:
        assert reason["text"] in text
    for f in summary["files"].values():
        assert f in page.links
    for t in summary["thresholds"]:
        assert display.threshold_name(t) in text and f"{t['key']}: {t['expression']}" in text
    for s in summary["stages"]:
        assert s["name"] in text
    assert "fallback model's price" in text          # the billing rule travels with the bill
    assert f"{summary['requests']:,}" in text


def test_the_page_drawn_in_a_child_process_is_the_page_drawn_here(tmp_path, failing):
    """The load generator draws its page apart (write_html_apart), so matplotlib never enters its memory."""
    from loadtest.report import write_html_apart
    typed = Summary.model_validate(failing)
    here = write_html(failing, tmp_path / "here").read_text(encoding="utf-8")
    apart = write_html_apart(typed, tmp_path / "apart")
    assert apart == tmp_path / "apart" / "report.html"
    assert apart.read_text(encoding="utf-8") == here
    for png in ("latency_over_time.png", "latency_distribution.png", "status_codes.png"):
        assert (tmp_path / "apart" / png).read_bytes() == (tmp_path / "here" / png).read_bytes()


def test_the_child_drawing_the_page_lets_its_parent_decide_the_stop(tmp_path, failing):
    """A Ctrl-C or stop reaches the Locust process's whole group while it may be drawing the page: the child
    ignores SIGINT (its parent ends the run) and still writes the page."""
    import os
    import signal
    import threading
    import time

    import psutil

    from loadtest.report import write_html_apart
    hit: list[int] = []

    def interrupt_the_child() -> None:
        deadline = time.monotonic() + 30
        while not hit and time.monotonic() < deadline:
            for child in psutil.Process().children():
                try:
                    if "loadtest.report.html" in " ".join(child.cmdline()):
                        os.kill(child.pid, signal.SIGINT)
                        hit.append(child.pid)
                except psutil.Error:
                    pass
            time.sleep(0.01)

    interrupter = threading.Thread(target=interrupt_the_child)
    interrupter.start()
    page = write_html_apart(Summary.model_validate(failing), tmp_path)
    interrupter.join()
    assert hit, "the child was never seen"
    assert page == tmp_path / "report.html" and page.stat().st_size > 10_000


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_child_that_cannot_write_is_an_oserror_and_a_broken_one_says_why(tmp_path, failing):
    from loadtest.report import write_html_apart
    typed = Summary.model_validate(failing)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write report.html into"):
        write_html_apart(typed, blocked / "report")
    broken = typed.model_copy(update={"timeline": [{"t_s": "a second"}]})   # no longer a Summary
    with pytest.raises(RuntimeError, match="the child drawing report.html failed: .*validation error"):
        write_html_apart(broken, tmp_path / "broken")
    assert not (tmp_path / "broken" / "report.html").exists()


def test_colour_tells_pass_from_fail(tmp_path, passing, failing):
    a = parse(write_html(passing, tmp_path / "a")).attrs_by_id["verdict"]["style"]
    b = parse(write_html(failing, tmp_path / "b")).attrs_by_id["verdict"]["style"]
    assert a != b and "#1e7e34" in a and "#b02a37" in b


def test_invalid_run_says_it_proves_nothing(tmp_path, passing):
    s = copy.deepcopy(passing)
    s.update(verdict="invalid", passed=False, exit_code=2,
             reasons=[{"kind": "insufficient", "text": "only 12 samples; the gate needs 1000"}])
    page = parse(write_html(s, tmp_path))
    text = " ".join(page.text)
    assert "INVALID" in text and "proves nothing" in text and "only 12 samples" in text


def test_absolute_file_paths_become_relative_links(tmp_path, passing):
    s = copy.deepcopy(passing)
    s["files"] = {"summary": str(tmp_path / "summary.json"), "elsewhere": "/var/tmp/locust.log"}
    page = parse(write_html(s, tmp_path))
    assert "summary.json" in page.links
    assert "file:///var/tmp/locust.log" in page.links


def test_text_from_the_summary_is_escaped(tmp_path, passing):
    s = copy.deepcopy(passing)
    s["scenario"]["description"] = "<script>alert(1)</script> & more"
    s["reasons"] = [{"kind": "breach", "text": "p(99) < 600 & <b>"}]
    html = write_html(s, tmp_path).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    parse(tmp_path / "report.html")


# --- plots on edge cases ----------------------------------------------------------------


def _edge(base: dict[str, Any], case: str) -> dict[str, Any]:
    s = copy.deepcopy(base)
    if case == "empty timeline":
        s["timeline"] = []
    elif case == "no expected latency":
        s["expected_latency"] = None
    elif case == "all failed":
        n = s["requests"]
        s.update(failures=n, success_rate=0.0, status_codes={"500": n - 40, "timeout": 40},
                 latency_distribution=[], latency_ms={}, cost={"usd": 0, "images": 0, "per_image_usd": None},
                 expected_latency=None)
        for row in s["timeline"]:
            row.update(codes={"500": row["requests"]}, failures=row["requests"], p50_ms=None, p95_ms=None,
                       p99_ms=None, max_ms=None)
    elif case == "single second":
        s["timeline"] = s["timeline"][:1]
        s["stages"] = [{"name": "only", "start_s": 0, "end_s": 1, "requests": 5, "failures": 0, "dropped": 0,
                        "rps": 5, "latency_ms": {"p50": 40, "p99": 80}}]
        s["latency_distribution"] = [[50, 40.0]]
    elif case == "nothing at all":
        s.update(verdict="invalid", exit_code=2, passed=False, requests=0, failures=0, success_rate=None,
                 status_codes={}, timeline=[], stages=[], latency_distribution=[], latency_ms={}, thresholds=[],
                 cost={"usd": None, "images": 0, "per_image_usd": None}, expected_latency=None,
                 reasons=[{"kind": "note", "text": "no requests were made"}])
    elif case == "long run":
        # Four hours at one row a second: bars are binned, the axis is in hours.
        row = s["timeline"][40]
        s["timeline"] = [dict(row, t_s=t) for t in range(4 * 3600)]
        s["stages"] = [{"name": "hold", "start_s": 0, "end_s": 4 * 3600, "requests": 1, "failures": 0,
                        "dropped": 0, "rps": 1, "latency_ms": {}}]
    return s


EDGE_CASES = ["empty timeline", "no expected latency", "all failed", "single second", "nothing at all", "long run"]


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_cases_render(tmp_path, passing, case):
    s = _edge(passing, case)
    out = write_html(s, tmp_path)
    page = parse(out)
    for name in ("latency_over_time.png", "latency_distribution.png", "status_codes.png"):
        assert_real_png(tmp_path / name, min_kb=5)
        assert embedded(page, tmp_path / name)


def test_sla_lines_come_from_latency_thresholds(failing):
    lines = plots.sla_lines(failing)
    assert [(ln["stat"], ln["ms"], ln["stage"]) for ln in lines] == [
        ("P99", 600.0, None), ("P50", 500.0, None), ("P99", 600.0, "surge")]
    extra = {"thresholds": [{"metric": "latency", "filters": {"name": "x"}, "expression": "p(99)<600"},
                            {"metric": "latency", "filters": {}, "expression": "p(99.9) <= 1500"},
                            {"metric": "latency", "filters": {}, "expression": "med<300"},
                            {"metric": "success", "filters": {}, "expression": "rate>0.99"}]}
    assert [ln["label"] for ln in plots.sla_lines(extra)] == ["SLA P99.9 <= 1500 ms", "SLA P50 < 300 ms"]


def test_status_code_groups():
    groups = {c: plots.code_group(c) for c in ("200", "201", "429", "500", "503", "timeout", "404", "error")}
    assert groups == {"200": "2xx", "201": "2xx", "429": "429", "500": "5xx", "503": "5xx", "timeout": "timeout",
                      "404": "other", "error": "other"}


def test_status_bars_add_up_to_the_run(passing):
    lefts, width, groups = plots._binned_codes(passing["timeline"], 240)
    assert width == 1 and len(lefts) == len(passing["timeline"])
    assert sum(sum(v) for v in groups.values()) == pytest.approx(passing["requests"])
    _, width, groups = plots._binned_codes(_edge(passing, "long run")["timeline"], 240)
    assert width == 60     # 14,400 seconds into at most 240 bars


def test_expected_curve_is_scaled_and_clipped():
    exp = {"p50_ms": 42.0, "p99_ms": 89.0, "sigma": 0.3226, "min_ms": 10.0, "max_ms": 60.0, "latency_scale": 0.5}
    q = plots._expected_quantiles(exp, [0.5, 0.99, 0.999])
    assert q[0] == pytest.approx(21.0)
    assert q[1] == pytest.approx(30.0)      # 89 ms clipped at 60, then scaled
    assert q[2] == pytest.approx(30.0)


# --- the comparison report ------------------------------------------------------------


def test_compare_report(tmp_path):
    cells = compare_cells()
    cells[0]["measured"] = None            # a cell that could not be measured
    cells[0]["deviation_pct"] = None
    (tmp_path / cells[1]["run"]).mkdir(parents=True)
    (tmp_path / cells[1]["run"] / "report.html").write_text("<!DOCTYPE html><html></html>")
    targets = ["midjourney-v7", "dall-e-4", "imagen-4", "relay"]
    compare = {"generated_at": "2025-01-01T12:00:00+00:00", "reduced": True, "seed": 42, "duration_s": 130.0,
               "targets": targets, "cells": cells, "definitions": {c["metric"]: c["definition"] for c in cells},
               "contradictions": [{"title": "Batch faster than single <per image>",
                                   "explanation": "2,100 ms < 3,200 ms & so on"}],
               "cost": monthly_projection(targets)}
    out = write_compare_html(compare, tmp_path)
    png = tmp_path / "relay_vs_direct.png"
    assert_real_png(png)
    page = parse(out)
    assert embedded(page, png)
    text = " ".join(page.text)
    assert "Batch faster than single <per image>" in text and "2,100 ms < 3,200 ms & so on" in text
    assert "not measured" in text
    c = cells[5]
    assert f"{c['deviation_pct']:+.0f} %" in text
    assert f"{cells[1]['run']}/report.html" in page.links
    assert "reduced run" in text
    assert "$120" in text and "Savings against the direct average" in text


def test_relay_vs_direct_edge_cases(tmp_path):
    assert_real_png(plots.relay_vs_direct([], tmp_path / "none.png"), min_kb=5)
    one = [{"workload": "single", "target": "relay", "metric": "single_p50", "unit": "ms", "measured": None,
            "published": 42}]
    assert_real_png(plots.relay_vs_direct(one, tmp_path / "one.png"), min_kb=5)


# --- rough edges a reader would trip on ------------------------------------------------------


def _drawn(fig):
    fig.canvas.draw()
    return fig


def _tick_texts(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


@pytest.mark.parametrize("which", ["passing", "failing"])
def test_the_latency_axis_names_the_unit_its_ticks_are_in(request, which):
    fig = _drawn(plots.latency_over_time_figure(request.getfixturevalue(which)))
    top = fig.axes[0]
    label = top.get_ylabel()
    unit = "s" if top.get_ylim()[1] > 2000 else "ms"
    assert label.endswith(f"({unit})"), label
    ticks = _tick_texts(top.yaxis)
    assert ticks and all(re.fullmatch(r"[\d,.]+", t) for t in ticks), ticks   # bare numbers, in that unit
    big = _drawn(plots.latency_over_time_figure(_slow(request.getfixturevalue(which))))
    assert big.axes[0].get_ylabel().endswith("(s)")
    assert max(float(t.replace(",", "")) for t in _tick_texts(big.axes[0].yaxis)) < 100   # 8 s reads "8", not 8,000


def _slow(summary):
    s = copy.deepcopy(summary)
    for row in s["timeline"]:
        row.update(p50_ms=4000.0, p95_ms=7000.0, p99_ms=8000.0)
    return s


def test_the_distribution_shows_the_whole_measured_range(failing):
    """The failing run's slowest requests are 30 s timeouts: the axis reaches them, and the percentile
    scale reaches the highest percentile measured below 100 %."""
    fig = _drawn(plots.latency_distribution_figure(failing))
    ax = fig.axes[0]
    fastest, slowest = failing["latency_distribution"][0][1], failing["latency_distribution"][-1][1]
    assert slowest >= 30_000
    left, right = ax.get_xlim()
    assert left <= fastest and right >= slowest
    top_p = max(p for p, _ in failing["latency_distribution"] if p < 100) / 100
    assert ax.get_ylim()[1] > top_p
    marks = {line.get_gid(): line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() in ("min", "max")}
    assert marks == {"min": fastest, "max": slowest}
    assert ax.get_xlabel() == "latency (s, log scale)"
    assert all(re.fullmatch(r"[\d,.]+", t) for t in _tick_texts(ax.xaxis))


def _with_marks(summary, run):
    s = copy.deepcopy(summary)
    s["actions"] = [{"at_s": 20.0, "planned_at_s": 20.0, "provider": "midjourney-v7", "settings": {"outage": True},
                     "outcome": "HTTP 200", "ok": True}]
    s["run"] = {**s["run"], **run}
    return s


@pytest.mark.parametrize("run,kind,at", [
    ({"end": "abort", "aborted_by": "latency p(99) < 600 ms [stage=surge]", "aborted_at_s": 41.0, "elapsed_s": 41.2},
     "abort", 41.0),
    ({"end": "abort", "generator_abort": "latency p(99) < 600 ms", "aborted_at_s": 6.0, "elapsed_s": 6.1},
     "abort", 6.0),
    ({"end": "stopped", "elapsed_s": 33.5}, "stop", 33.5),
])
def test_time_plots_mark_the_actions_and_how_the_run_ended(failing, run, kind, at):
    s = _with_marks(failing, run)
    for fig in (plots.latency_over_time_figure(s), plots.status_codes_figure(s)):
        for ax in fig.axes[:2]:
            found = {(line.get_gid(), np.asarray(line.get_xdata())[0]) for line in ax.get_lines()
                     if line.get_gid() in ("action", "abort", "stop")}
            assert found == {("action", 20.0), (kind, at)}, found
        words = [t.get_text() for t in fig.axes[0].texts]
        assert "midjourney-v7: outage=true" in " ".join(words)
    plain = plots.latency_over_time_figure(failing)
    assert not [line for ax in plain.axes for line in ax.get_lines() if line.get_gid() in ("action", "abort", "stop")]


def test_stage_windows_read_to_a_tenth_of_a_second(tmp_path, passing):
    s = copy.deepcopy(passing)
    for st, (a, b) in zip(s["stages"], [(0, 6.428571), (6.428571, 12.857143), (12.857143, 50), (50, 70)]):
        st.update(start_s=a, end_s=b)
    text = " ".join(parse(write_html(s, tmp_path)).text)
    assert "0–6.4 s" in text and "6.4–12.9 s" in text and "12.9–50 s" in text
    assert "6.42857" not in text


def test_the_cost_table_has_a_header_and_says_what_was_not_billed(tmp_path, failing):
    html = write_html(failing, tmp_path).read_text()
    cost = html[html.index("<h2>Cost</h2>"):]
    assert "<th>item</th><th>amount</th>" in cost and "<th></th>" not in html
    assert "attempts refused, so not billed" in cost and "attempts (not billed)" not in cost
    assert f"<td>HTTP attempts</td><td class=\"num\">{failing['attempts']:,}</td>" in cost


def test_thresholds_show_limit_headroom_and_each_verdict_in_its_colour(passing):
    s = copy.deepcopy(passing)
    s["thresholds"][0].update(verdict="inconclusive")
    s["thresholds"][1].update(verdict="insufficient", needed_samples=1000, samples=412)
    head = html_module._thresholds(s)      # "inconclusive" is not in summary.json's schema yet: the table alone
    assert [h for h, _, _ in THRESHOLD_COLUMNS] == ["threshold", "scope", "observed", "limit", "headroom", "samples",
                                                    "verdict", "detail"]
    for word, colour in (("INCONCLUSIVE", "#a15c00"), ("INSUFFICIENT", "#a15c00"), ("PASS", "#1e7e34")):
        assert f'style="color:{colour}">{word}</span>' in head, word
    assert "&gt;= 99.95 %" in head and "412 of the 1,000 samples needed" in head


def test_a_section_and_a_threshold_column_are_one_entry_each(tmp_path, passing, monkeypatch):
    monkeypatch.setattr(html_module, "SECTIONS", [("Provider side", lambda s, _: "<p>gateway figures</p>"),
                                                  ("Not this run", lambda s, _: None)])
    monkeypatch.setattr(html_module, "THRESHOLD_COLUMNS",
                        [*html_module.THRESHOLD_COLUMNS, ("95 % interval", lambda t: "101–109 ms", True)])
    html = write_html(passing, tmp_path).read_text()
    assert "<h2>Provider side</h2><p>gateway figures</p>" in html.replace("\n", "")
    assert "Not this run" not in html
    assert "<th>95 % interval</th>" in html and html.count("101–109 ms") == len(passing["thresholds"])


def test_compare_states_the_sla_and_keeps_caveats_apart(tmp_path):
    cells = compare_cells()
    compare = {"generated_at": "2026-12-01T07:32:27.452093+00:00", "reduced": False, "seed": 42,
               "duration_s": 431.6, "targets": ["relay", "midjourney-v7", "dall-e-4", "imagen-4"], "cells": cells,
               "sla": {"scenario": "flash_sale", "thresholds": ["latency p(99) < 600 ms", "success rate >= 99.95 %"],
                       "latency_ms": 600.0},
               "contradictions": [{"title": "Two SLAs", "explanation": "the seed states both"}],
               "caveats": [{"title": "The relay's burst, on this machine", "explanation": "two cores"}]}
    text = " ".join(parse(write_compare_html(compare, tmp_path)).text)
    assert "Generated 2026-12-01 07:32:27 UTC" in text and "452093" not in text and "+00:00" not in text
    assert "took 7 min 12 s" in text
    assert "latency p(99) < 600 ms; success rate >= 99.95 %" in text
    # The single-image P99s (89 ms x 1.05 for the relay), each in one unit with its margin.
    assert "relay: 93.5 ms" in text and "506 ms to spare" in text
    assert "dall-e-4: 11.53 s" in text and "over by 10.93 s" in text
    assert "midjourney-v7: 8,439 ms" in text and "over by 7,839 ms" in text
    contradictions = text.index("Where the published figures contradict each other")
    caveats = text.index("What this machine could not reproduce")
    assert contradictions < text.index("Two SLAs") < caveats < text.index("The relay's burst, on this machine")
    fig_sla = [line for line in _sla_lines(tmp_path)]
    assert fig_sla == [600.0]


def _sla_lines(tmp_path):
    from matplotlib.image import imread  # noqa: F401  (the PNG exists; the line is checked on the figure)
    cells = compare_cells()
    out: list[float] = []
    orig = plots._save

    def keep(fig, path):
        out.extend(line.get_ydata()[0] for ax in fig.axes for line in ax.get_lines() if line.get_gid() == "sla")
        return orig(fig, path)
    plots._save = keep
    try:
        plots.relay_vs_direct(cells, tmp_path / "x.png", sla_ms=600.0)
    finally:
        plots._save = orig
    return out
