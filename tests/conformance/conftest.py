from __future__ import annotations

from typing import Any

from . import harness


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for backend, counts in sorted(harness.STATS.items()):
        terminalreporter.write_line(f"conformance {backend}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if harness.FOUND:
        terminalreporter.write_line(f"conformance: {len(harness.FOUND)} disagreements collected")
    harness.write_report()
