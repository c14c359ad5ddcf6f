"""The benchmark suite runs end to end at smoke size and prints its table (no figure is judged here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.procfile import ROOT

SECTIONS = ("drain", "http", "web under load", "pickup", "redis", "worker memory", "search", "trends")


@pytest.mark.slow
def test_the_benchmark_runs_and_prints_every_section():
    run = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| section | measured | figure | ratio | notes |"
    for section in SECTIONS:
        assert any(line.startswith(f"| {section} |") for line in table), section
    assert any("RQ Worker" in line and "jobs/s" in line for line in table)
