"""The suite's exit codes: what a CI job reads. One home, so every part says the same thing.

0 the SLA held; 1 the SLA was breached, by the target; 2 the run proves nothing (a bad input,
a harness failure, a generator that could not offer the load, too little evidence). A failure
of the harness itself is never 1.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    PASS = 0
    FAIL = 1
    INVALID = 2

    @property
    def words(self) -> str:
        return _WORDS[self]

    @classmethod
    def of(cls, code: int) -> ExitCode:
        """Any other code (a crash, a signal) reads as a run that proves nothing."""
        return cls(code) if code in (0, 1, 2) else cls.INVALID


_WORDS = {
    ExitCode.PASS: "PASS: the SLA held",
    ExitCode.FAIL: "FAIL: the SLA was breached",
    ExitCode.INVALID: "INVALID: this run proves nothing",
}

__all__ = ["ExitCode"]
