"""Read the Procfile: the single place that says which processes exist and how they start."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def procfile_command(process: str, procfile: Path = ROOT / "Procfile") -> tuple[dict[str, str], list[str]]:
    """The command of ``process``: its leading VAR=value settings, and its argv with the
    program taken from this virtualenv."""
    for line in procfile.read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            words = shlex.split(command)
            settings = {}
            while "=" in words[0]:
                key, _, value = words.pop(0).partition("=")
                settings[key] = value
            return settings, [str(Path(sys.executable).parent / words[0]), *words[1:]]
    raise KeyError(f"no {process!r} process in {procfile}")
