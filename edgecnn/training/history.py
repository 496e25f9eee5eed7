"""A stage's epoch history, as Keras' CSVLogger writes it under a run's logs/."""

from __future__ import annotations

import csv
from pathlib import Path


def read_history(csv_path: Path) -> list[dict]:
    """One dict of metrics per epoch, in epoch order; empty when the file does not exist."""
    if not csv_path.exists():
        return []
    with csv_path.open() as stream:
        rows = {int(row["epoch"]): {k: float(v) for k, v in row.items()} for row in csv.DictReader(stream)}
    return [rows[epoch] for epoch in sorted(rows)]  # an epoch repeated after a resume counts once
