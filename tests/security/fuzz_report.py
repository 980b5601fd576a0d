"""How many cases each fuzz test covered, in pytest's summary: ``fuzz: checkpoints (--resume) 196 cases, ...``.

A plugin the root ``conftest.py`` loads, so the summary is printed by the process that writes it (with
pytest-xdist, the controller, which collects no test and loads no conftest of ``tests/security/``); the counts
travel there in each report's ``user_properties``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

__all__ = ["count_cases"]

PROPERTY = "fuzz_cases"
_COUNTS: dict[str, int] = {}


def count_cases(record_property: Callable[[str, object], None], kind: str, cases: int) -> None:
    """Record how many cases a fuzz test covered; printed in the summary, and by the test itself (``-rA``)."""
    record_property(PROPERTY, (kind, cases))
    print(f"fuzz: {kind}: {cases} cases")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        for name, value in report.user_properties:
            if name == PROPERTY:
                kind, cases = value
                _COUNTS[kind] = _COUNTS.get(kind, 0) + int(cases)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _COUNTS:
        counts = ", ".join(f"{kind} {cases} cases" for kind, cases in sorted(_COUNTS.items()))
        terminalreporter.write_line(f"fuzz: {counts}")
