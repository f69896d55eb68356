"""One table of every benchmark's ratios, for `make bench` (issue 11).

Each benchmark prints its own detail and, when ``ODM_BENCH_SUMMARY`` names a file, appends one
JSON line per figure to it (:func:`record`): its section, backend, task, the value and what 1.00
means there. ``python bench/summary.py FILE`` prints them as one table: a row per section and
task, a column per backend. The Makefile empties the file before the first benchmark.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BACKENDS = ["sqlite", "postgres", "mongodb", "dynamodb"]


def record(section: str, backend: str, task: str, value: float | str, unit: str = "x") -> None:
    """Append one figure to the summary file, if `make bench` asked for one."""
    path = os.environ.get("ODM_BENCH_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"section": section, "backend": backend, "task": task, "value": value, "unit": unit}) + "\n")


def table(lines: list[dict[str, object]]) -> list[str]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    units: dict[tuple[str, str], str] = {}
    for line in lines:
        key = (str(line["section"]), str(line["task"]))
        value = line["value"]
        shown = f"{value:.2f}" if isinstance(value, (int, float)) else str(value)
        rows.setdefault(key, {})[str(line["backend"])] = shown
        units[key] = str(line["unit"])
    backends = [b for b in BACKENDS if any(b in r for r in rows.values())] + sorted(
        {b for r in rows.values() for b in r} - set(BACKENDS))
    out = ["| benchmark | task | unit | " + " | ".join(backends) + " |",
           "|---|---|---|" + "---|" * len(backends)]
    for (section, task), got in rows.items():
        out.append(f"| {section} | {task} | {units[(section, task)]} | " + " | ".join(got.get(b, "") for b in backends) + " |")
    return out


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ODM_BENCH_SUMMARY", ".bench-summary.jsonl"))
    lines = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines() if text.strip()] \
        if path.exists() else []
    if not lines:
        sys.exit(f"no benchmark figures in {path}: run `make bench`")
    print("Summary of make bench: x = ours / raw throughput (1.00 = the driver's speed; per object: our time / "
          "marshmallow's, lower is better, targets 0.20 write and 0.15 read), MB = extra RSS while iterating")
    print("\n".join(table(lines)))


if __name__ == "__main__":
    main()
