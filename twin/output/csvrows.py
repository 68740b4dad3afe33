"""Writing result rows (dicts or dataclasses) to CSV, the one format every result ends in.

Every file gets a ``git_commit`` column (twin.host.provenance): the code that made its rows,
``+dirty`` where that code differs from the commit. Rows that carry their own keep it."""

from __future__ import annotations

import csv
from dataclasses import asdict, is_dataclass
from pathlib import Path

from twin.host.provenance import git_commit


def write_rows(rows: list, path: Path) -> Path:
    """Header from the first row, then ``git_commit`` unless the rows have one."""
    dicts = [asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows]
    if dicts and "git_commit" not in dicts[0]:
        commit = git_commit()
        for d in dicts:
            d["git_commit"] = commit
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(dicts[0]))
        w.writeheader()
        w.writerows(dicts)
    return path
