"""Headless Chromium for the page tests: Debian's /usr/bin/chromium through Playwright (never a download).

`watch(page)` records what a person would see go wrong: console errors, uncaught exceptions,
requests that failed or answered 4xx/5xx. `assert_clean(page, seen)` fails on any of them and
on an image that did not load. `screenshot(page, name, tmp_path)` keeps a PNG in the test's
folder and, with LOADTEST_SCREENSHOTS=dir (`make screenshots`), a small copy in that folder
(the README's pictures in docs/).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, Playwright, ViewportSize

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# A committed screenshot is a palette PNG: a page's flat colours survive 256 of them, at a fifth of the size.
SCREENSHOT_COLOURS = 256


def launch(pw: Playwright) -> Browser:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install the Debian package chromium"
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class Seen:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    bad_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + self.bad_requests


def watch(page: Page) -> Seen:
    seen = Seen()
    page.on("console", lambda m: seen.console_errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: seen.bad_requests.append(f"{r.method} {r.url} failed: {r.failure}"))
    page.on("response", lambda r: seen.bad_requests.append(f"{r.request.method} {r.url} answered {r.status}")
            if r.status >= 400 else None)
    return seen


def broken_images(page: Page) -> list[str]:
    """Every <img> that did not load, or loaded as nothing."""
    return page.evaluate("""() => Array.from(document.images)
        .filter(img => !img.complete || img.naturalWidth === 0)
        .map(img => img.alt || img.src.slice(0, 80))""")


# What a page must never show a person: a number with float noise, or a value that was never filled in.
NOISE = re.compile(r"\d\.\d{6,}|\b(nan|NaN|None|undefined|null|inf)\b")


def assert_clean(page: Page, seen: Seen) -> None:
    """No console error, uncaught exception, failed request or broken image; no float noise or unfilled
    value in the text a person reads."""
    problems = seen.problems() + [f"broken image: {b}" for b in broken_images(page)]
    text = page.evaluate("document.body.innerText")
    problems += [f"the page shows {m.group(0)!r}: ...{text[max(0, m.start() - 40):m.end() + 40]}..."
                 for m in NOISE.finditer(text)]
    assert not problems, f"{page.url}: " + "; ".join(problems)


def screenshot(page: Page, name: str, folder: Path, *, full_page: bool = True, max_height: int | None = None) -> Path:
    """The page (all of it, or the viewport; at most max_height pixels from the top) as folder/name."""
    path = folder / name
    if max_height is not None:
        height = min(max_height, page.evaluate("document.documentElement.scrollHeight"))
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height},
                        full_page=True)
    else:
        page.screenshot(path=str(path), full_page=full_page)
    keep = os.environ.get("LOADTEST_SCREENSHOTS")
    if keep:
        out = Path(keep) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as img:
            img.convert("RGB").quantize(colors=SCREENSHOT_COLOURS, method=Image.Quantize.MEDIANCUT).save(
                out, optimize=True)
    return path
