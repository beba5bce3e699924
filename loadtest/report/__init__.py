"""Report writers: summary.json (the source of truth), junit.xml, summary.md, the console table.

Every writer renders from the summary dict alone, so reports can be rebuilt from a saved
summary.json without the recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import junit, markdown
from .summary import build_summary, json_safe

__all__ = ["build_summary", "write_all", "dumps", "FILES"]

# summary["files"] key -> file name, relative to the report directory
FILES = {"summary": "summary.json", "junit": "junit.xml", "markdown": "summary.md"}


def write_all(summary: dict[str, Any], outdir: Path) -> dict[str, Path]:
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    # Other writers (HTML, recording.json) may have registered their files already; keep them.
    files = dict(summary.get("files") or {})
    for key, name in FILES.items():
        files.setdefault(key, name)
    summary["files"] = files
    summary.setdefault("report_dir", str(outdir))
    paths = {key: outdir / files[key] for key in FILES}
    _write(paths["summary"], dumps(summary))
    _write(paths["junit"], junit.render(summary))
    _write(paths["markdown"], markdown.render(summary))
    return paths


# Lists written one element per line: a 4-hour run has 14,400 timeline rows, and a row per line
# keeps the file a third the size and still readable.
_ROW_LISTS = ("timeline", "latency_distribution")


def dumps(summary: dict[str, Any]) -> str:
    doc = json_safe(summary)
    marks = {key: f"\u0000{key}\u0000" for key in _ROW_LISTS if doc.get(key)}
    text = json.dumps({k: marks.get(k, v) for k, v in doc.items()}, indent=2, ensure_ascii=False, allow_nan=False)
    for key, mark in marks.items():
        rows = ",\n    ".join(json.dumps(r, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
                               for r in doc[key])
        text = text.replace(json.dumps(mark, ensure_ascii=False), "[\n    " + rows + "\n  ]", 1)
    return text + "\n"


def _write(path: Path, text: str) -> None:
    # Write then rename, so a CI step reading the file never sees half of it.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
