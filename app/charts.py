"""Charts drawn on the server as SVG: the geometry here, the markup in ``templates/charts.html``.

No script and no inline style (the pages' Content-Security-Policy stays strict); lines differ by
dash pattern as well as colour, every chart has a title and a text summary, and its numbers are
in a table beside it, so nothing depends on colour or on seeing the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WIDTH, HEIGHT = 720, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 8, 24
DASHES = ("", "6 4", "2 3", "10 3 2 3")


@dataclass
class Line:
    key: str
    label: str
    dash: str
    index: int
    segments: list[str] = field(default_factory=list)  # "x,y x,y ..." runs between missing values
    dots: list[tuple[float, float]] = field(default_factory=list)  # lone points, which a line cannot show


@dataclass
class Chart:
    title: str
    unit: str
    lines: list[Line]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    rows: list[tuple[str, list[str]]]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM


def _label(at: float, step: int) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%H:%M" if step < 3600 else "%d %b %H:%M")


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{value * 100:.0f} %"
    if unit == "s":
        return f"{value:.3g} s"
    return f"{value:.3g}"


def build(title: str, points: list[dict[str, Any]], wanted: list[tuple[str, str]], unit: str, step: int) -> Chart:
    """A line chart of the ``wanted`` (key, label) values of ``points``, oldest first."""
    values = [[point.get(key) for point in points] for key, _ in wanted]
    highest = max([value for column in values for value in column if value is not None] or [0])
    top = 1.0 if unit == "%" else (highest or 1) * 1.1
    if not unit:  # counts: whole numbers on the axis
        top = float(max(2, math.ceil(top / 2) * 2))
    span_x = max(1, len(points) - 1)

    def x(index: int) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * index / span_x, 1)

    def y(value: float) -> float:
        return round(TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top), 1)

    lines = []
    for number, ((key, label), column) in enumerate(zip(wanted, values, strict=True)):
        line = Line(key, label, DASHES[number % len(DASHES)], number)
        run: list[str] = []
        for index, value in enumerate(column):
            if value is None:
                if run:
                    line.segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(index)},{y(value)}")
        if run:
            line.segments.append(" ".join(run))
        for segment in [each for each in line.segments if " " not in each]:
            line.segments.remove(segment)
            x_at, y_at = segment.split(",")
            line.dots.append((float(x_at), float(y_at)))
        lines.append(line)
    y_ticks = [(y(top * share), _format(top * share if unit != "%" else share, unit)) for share in (0, 0.5, 1)]
    marks = sorted({0, len(points) // 2, len(points) - 1}) if points else []
    x_ticks = [(x(index), _label(points[index]["at"], step)) for index in marks]
    rows = [(_label(point["at"], step), [_format(point.get(key), unit) for key, _ in wanted]) for point in points]
    totals = []
    for (_, label), column in zip(wanted, values, strict=True):
        present = [value for value in column if value is not None]
        if unit:  # a rate or a time: its highest value says most
            totals.append(f"{label}: highest {_format(max(present, default=None), unit)}")
        else:  # a count: its total
            totals.append(f"{label}: {sum(present):g} in all")
    return Chart(title, unit, lines, y_ticks, x_ticks, rows, "; ".join(totals))
