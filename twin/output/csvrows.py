"""Writing result rows (dicts or dataclasses) to CSV, the one format every result ends in."""

from __future__ import annotations

import csv
from dataclasses import asdict, is_dataclass
from pathlib import Path


def write_rows(rows: list, path: Path, append: bool = False) -> Path:
    """Header from the first row; ``append`` keeps an existing file's rows."""
    dicts = [asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or not append
    with path.open("a" if append else "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(dicts[0]))
        if new:
            w.writeheader()
        w.writerows(dicts)
    return path
