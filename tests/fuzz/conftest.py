from __future__ import annotations

from typing import Any

from .test_fuzz import STATS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STATS["examples"]:
        terminalreporter.write_line(
            f"fuzz: {STATS['examples']} calls ({STATS['succeeded']} succeeded, {STATS['odm_errors']} raised odm errors); "
            "any other exception fails its test")
