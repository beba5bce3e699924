"""Report writers: summary.json (the source of truth), junit.xml, summary.md, report.html, the console.

Every writer renders from a `loadtest.summary.Summary` alone, so reports can be rebuilt from
a saved summary.json without the recording.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..summary import Summary

# The writers (and loadtest.summary's pydantic models) are imported when a report is written, not with this
# package: the Locust process needs FILES, write_text and ReportWriteError for the whole run, the models only
# at its end, and pydantic with the models is ~8 MB it would otherwise hold for hours (BENCHMARKS.md).

__all__ = ["write_all", "write_html_apart", "dumps", "FILES", "ReportWriteError", "WRITE_FAILED"]

# summary.files key -> file name, relative to the report directory
FILES = {"summary": "summary.json", "junit": "junit.xml", "markdown": "summary.md"}


class ReportWriteError(OSError):
    """The report could not be written (an unwritable or full directory); the message says where and why."""


def write_all(summary: Summary, outdir: Path) -> dict[str, Path]:
    """summary.json, junit.xml and summary.md into outdir (the HTML page is report.html.write_html)."""
    from . import junit, markdown
    outdir = Path(outdir)
    for key, name in FILES.items():
        summary.files.setdefault(key, name)
    summary.report_dir = summary.report_dir or str(outdir)
    paths = {key: outdir / summary.files[key] for key in FILES}
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        write_text(paths["summary"], dumps(summary))
        write_text(paths["junit"], junit.render(summary))
        write_text(paths["markdown"], markdown.render(summary))
    except OSError as exc:
        raise ReportWriteError(f"cannot write the report to {outdir}: {exc.strerror or exc}") from exc
    return paths


# The load generator's process runs for hours on a memory budget; matplotlib and the figures it draws (about
# 40 MB) would be its largest allocation, made once at the very end. So it hands the summary to a short-lived
# child that draws report.html and exits.
WRITE_FAILED = 3     # the child's exit code when the folder cannot be written (an OSError)


def _drawer_setup() -> Callable[[], None]:
    """The child's preexec_fn: in its parent's session, so a stop of the run reaches it, and ended with its parent
    (loadtest.children); SIGINT ignored from exec on, so the Ctrl-C or stop that is ending the run while the page is
    drawn does not lose the page: the parent decides when to stop, and the group's SIGTERM or SIGKILL still ends it."""
    import signal

    from ..children import own_session
    tie = own_session(new_session=False, ctrl_c=False)

    def setup() -> None:
        tie()
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return setup


def write_html_apart(summary: Summary, outdir: Path, timeout_s: float = 600.0) -> Path:
    """report.html and its PNGs drawn by `python -m loadtest.report.html` in a child process, the summary on
    its stdin. A folder the child cannot write is raised here as OSError; any other failure as RuntimeError."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "loadtest.report.html", str(outdir)],
                          input=summary.model_dump_json(by_alias=True), capture_output=True, text=True,
                          timeout=timeout_s, check=False, preexec_fn=_drawer_setup())
    lines = [s for s in proc.stdout.splitlines() if s.strip()]
    if proc.returncode == 0 and lines:
        return Path(outdir) / lines[-1].strip()
    message = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    if proc.returncode == WRITE_FAILED:
        raise OSError(message)
    raise RuntimeError(f"the child drawing report.html failed: {message}")


# Lists written one element per line: a 4-hour run has 14,400 timeline rows, and a row per line
# keeps the file a third the size and still readable.
_ROW_LISTS = ("timeline", "latency_distribution")


def dumps(summary: Summary) -> str:
    doc = summary.json_dict()
    marks = {key: f"\u0000{key}\u0000" for key in _ROW_LISTS if doc.get(key)}
    text = json.dumps({k: marks.get(k, v) for k, v in doc.items()}, indent=2, ensure_ascii=False, allow_nan=False)
    for key, mark in marks.items():
        rows = ",\n    ".join(json.dumps(r, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
                               for r in doc[key])
        text = text.replace(json.dumps(mark, ensure_ascii=False), "[\n    " + rows + "\n  ]", 1)
    return text + "\n"


def write_text(path: Path, text: str) -> None:
    # Write then rename, so a CI step reading the file never sees half of it; a failed write leaves
    # no half file behind.
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
