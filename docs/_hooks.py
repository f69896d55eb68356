"""mkdocs hook: docstrings cross-reference in Sphinx's spelling (``:class:`FieldRef```), which
Markdown shows literally; the rendered pages keep just the name, as code."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):(<code>)~?")


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(r"\1", html)
