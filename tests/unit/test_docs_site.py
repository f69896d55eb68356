"""The documentation site builds as ``make docs`` builds it: mkdocs --strict, so a broken link,
a missing anchor or a docstring mkdocstrings cannot render fails ``make test`` too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _nav_pages(entries: list) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_the_site_builds_strict_without_a_warning(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about MkDocs 2 is not ours
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"mkdocs build --strict failed (install the docs extra: pip install -e '.[docs]'):\n{output[-4000:]}"
    assert "WARNING" not in output, output[-4000:]

    # The API reference holds the public surface, async twins included, generated from the docstrings.
    model = (tmp_path / "site" / "reference" / "model" / "index.html").read_text(encoding="utf-8")
    for anchor in ("odm.model.Model.get", "odm.model.Model.aget", "odm.model.Model.insert_many", "odm.schema.Index"):
        assert f'id="{anchor}"' in model, anchor
    query = (tmp_path / "site" / "reference" / "query" / "index.html").read_text(encoding="utf-8")
    assert 'id="odm.query.Query.page"' in query and 'id="odm.query.Query.apage"' in query
    assert ":class:" not in model + query  # Sphinx roles in docstrings are shown as plain code


def test_every_page_is_in_the_nav() -> None:
    # A page missing from the nav builds but nobody finds it.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = set(_nav_pages(config["nav"]))
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").glob("**/*.md")}
    assert sorted(pages - listed) == []
    assert sorted(p for p in listed if not (ROOT / "docs" / p).is_file()) == []
