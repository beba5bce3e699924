"""Locust's own reports (locust_*.csv, locust.html), written by the plugin instead of Locust's main.

Locust's main writes them with no error handling of its own: a report folder that filled up
mid-run raised from its CSV greenlet into the console, its HTML writer's OSError ended the
process before the gate had run, and after an abort its CSV greenlet could wake once more
after the files were closed (`ValueError: I/O operation on closed file`). Here the plugin
owns their whole life: the CSV greenlet is stopped before the files close, the final tables
are written once the run has stopped, and a failed write is one line in the verdict's
reasons, like any other report file that could not be written.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import gevent
from locust import stats as locust_stats
from locust.html import get_html_report

from ..report import write_text

log = logging.getLogger("loadtest")


class LocustReports:
    """`PREFIX_stats.csv`, `_stats_history.csv`, `_failures.csv`, `_exceptions.csv` and `locust.html`."""

    def __init__(self, environment: Any, csv_prefix: Path | None, html_file: Path | None) -> None:
        self.environment = environment
        self.csv_prefix = csv_prefix
        self.html_file = html_file
        self.failures: list[tuple[str, str]] = []   # (what could not be written, why)
        self._writer: Any = None
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Open the CSV files and write them every second (Locust's own writer) until `finish`."""
        if self.csv_prefix is None or self._writer is not None:
            return
        try:
            self.csv_prefix.parent.mkdir(parents=True, exist_ok=True)
            self._writer = locust_stats.StatsCSVFileWriter(self.environment, locust_stats.PERCENTILES_TO_REPORT,
                                                           str(self.csv_prefix), False)
        except OSError as exc:
            self._failed("Locust's CSV files", exc)
            return
        self._greenlet = gevent.spawn(self._write_every_second)

    def _write_every_second(self) -> None:
        try:
            self._writer.stats_writer()
        except OSError as exc:          # the folder filled up or went away: say so once, stop writing
            self._failed("Locust's CSV files", exc)
            log.warning("cannot write Locust's CSV files to %s: %s; the run goes on, and its verdict will say the "
                        "report is incomplete", self.csv_prefix.parent if self.csv_prefix else "", why(exc))

    def finish(self) -> list[tuple[str, str]]:
        """Stop the CSV writer, write the final tables and locust.html; what could not be written, and why."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True)     # first, so it cannot wake again after the files are closed
            self._greenlet = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self._final_tables(writer)
        if self.html_file is not None:
            try:
                write_text(self.html_file, get_html_report(self.environment, show_download_link=False))
            except OSError as exc:
                self._failed(self.html_file.name, exc)
        return list(self.failures)

    def _final_tables(self, writer: Any) -> None:
        # The history file keeps what the greenlet appended; the three tables are rewritten whole,
        # from the stats as they stand now that the run has stopped.
        handles = [writer.requests_csv_filehandle, writer.stats_history_csv_filehandle,
                   writer.failures_csv_filehandle, writer.exceptions_csv_filehandle]
        for handle in handles:
            try:
                handle.close()
            except OSError as exc:
                self._failed("Locust's CSV files", exc)
        if self.failures:
            return
        assert self.csv_prefix is not None
        tables = {"_stats.csv": writer.requests_csv, "_failures.csv": writer.failures_csv,
                  "_exceptions.csv": writer.exceptions_csv}
        for suffix, fill in tables.items():
            path = self.csv_prefix.with_name(self.csv_prefix.name + suffix)
            try:
                with open(path.with_name(path.name + ".tmp"), "w", newline="", encoding="utf-8") as fh:
                    fill(csv.writer(fh))
                path.with_name(path.name + ".tmp").replace(path)
            except OSError as exc:
                path.with_name(path.name + ".tmp").unlink(missing_ok=True)
                self._failed("Locust's CSV files", exc)
                return

    def _failed(self, what: str, exc: OSError) -> None:
        if (what, why(exc)) not in self.failures:
            self.failures.append((what, why(exc)))


def why(exc: BaseException) -> str:
    """An OSError's reason in words ("No space left on device"), without the file name."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    return str(getattr(cause, "strerror", None) or cause)


def write_failures_text(folder: Path, failures: list[tuple[str, str]]) -> str:
    """"the report could not be written to DIR: No space left on device (locust.html, summary.json)"."""
    by_cause: dict[str, list[str]] = {}
    for what, cause in failures:
        if what not in by_cause.setdefault(cause, []):
            by_cause[cause].append(what)
    return f"the report could not be written to {folder}: " + "; ".join(
        f"{cause} ({', '.join(whats)})" for cause, whats in by_cause.items())
