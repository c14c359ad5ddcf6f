"""The code blocks of the README and docs/, as the tests that run them read them."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^([ \t]*)```(\w+)\n(.*?)^\1```", re.M | re.S)


def code_blocks(path: Path, language: str) -> list[str]:
    """Every ``language`` block of ``path``, dedented (a block inside a list item is indented)."""
    return [textwrap.dedent(body) for _, lang, body in _BLOCK.findall(path.read_text()) if lang == language]
