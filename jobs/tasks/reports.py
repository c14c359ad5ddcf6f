"""CSV reports built in chunks, returned as a downloadable artifact."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Annotated

from pydantic import Field

from jobs import progress, task
from jobs.records.artifacts import Artifact
from jobs.registry import lowest_queue

Cell = str | int | float | bool | None
# A cell a spreadsheet would read as a formula (CSV injection): written with a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: Cell) -> Cell:
    """``value`` as a spreadsheet shows it, never as a formula it runs."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _neutral_rows(rows: Iterator[dict[str, Cell]]) -> Iterator[dict[str, Cell]]:
    for row in rows:
        yield {str(neutral(key)): neutral(value) for key, value in row.items()}


CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")


def sample_orders(count: int, seed: int = 7) -> Iterator[dict[str, Cell]]:
    """A reproducible sample data set: orders with a customer, a day and an amount."""
    rng = random.Random(seed)
    start = date(2026, 1, 1)
    for number in range(1, count + 1):
        yield {
            "order": number,
            "customer": rng.choice(CUSTOMERS),
            "day": (start + timedelta(days=rng.randrange(365))).isoformat(),
            "amount": round(rng.uniform(5, 500), 2),
            "paid": rng.random() > 0.1,
        }


@task(queue=lowest_queue(), timeout=1800)
def csv_export(
    rows: Annotated[list[dict[str, Cell]] | None, Field(max_length=100_000)] = None,
    sample_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 1000,
    chunk_size: Annotated[int, Field(ge=1, le=100_000)] = 500,
    # "\-", not a bare "-" in the class: browsers read a form's pattern with the v flag, which refuses it.
    filename: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,100}\.csv$")] = "report.csv",
) -> Artifact:
    """Build a CSV from posted rows (or from the sample data set), reporting progress per chunk."""
    source = _neutral_rows(iter(rows)) if rows is not None else sample_orders(sample_rows)
    total = len(rows) if rows is not None else sample_rows
    first = next(source, None)
    columns = list(first) if first else []
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    written = 0
    chunk = [first] if first else []
    for row in source:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            writer.writerows(chunk)
            written += len(chunk)
            chunk = []
            progress(written, total, f"{written} of {total} rows")
    writer.writerows(chunk)
    written += len(chunk)
    progress(written, total, f"{written} rows written")
    return Artifact(output.getvalue().encode(), "text/csv", filename)
