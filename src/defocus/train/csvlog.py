"""Training logs as CSV files that survive a crash and a resume (shared by every training loop).

A row is appended and flushed at once; a resumed run first drops the rows logged after its checkpoint
(:func:`truncate_csv`), so a log never holds a step twice.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..io import atomic_write


def append_csv(path: Path, fields: list[str], row: dict) -> None:
    """Append ``row``; a new file gets the header ``fields``, an existing one keeps its own (a resumed run)."""
    new = not path.exists()
    if not new:
        with open(path, newline="") as f:
            fields = next(csv.reader(f), None) or fields
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()


def truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (by a run that died before its next checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = list(rows[0].keys()) if rows else None
    if fields is None:
        return
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=fields)
    w.writeheader()
    w.writerows(r for r in rows if int(r["step"]) <= step)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()), force=True)
