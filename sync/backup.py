"""Online backups of a SQLite database with sqlite3's backup API, kept for a number of days.

The backup API copies a consistent snapshot page by page while the app keeps writing (WAL
readers are not blocked); the copy is written beside its final name and renamed, so a backup
that exists is complete. PostgreSQL is backed up with pg_dump outside Tapak.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from pathlib import Path

NAME = re.compile(r"^tapak-(\d{8})\.db$")


def backup_sqlite(database: str | Path, directory: str | Path, keep_days: int,
                  today: dt.date | None = None) -> dict:
    """Copy ``database`` into ``directory/tapak-YYYYMMDD.db`` and prune older copies."""
    today = today or dt.datetime.now(dt.UTC).date()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"tapak-{today:%Y%m%d}.db"
    partial = target.with_suffix(".db.partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=4096)
        finally:
            copy.close()
    finally:
        source.close()
    os.replace(partial, target)
    return {"path": str(target), "bytes": target.stat().st_size,
            "pruned": prune(directory, keep_days, today)}


def prune(directory: Path, keep_days: int, today: dt.date) -> list[str]:
    """Remove backups dated ``keep_days`` days or more before ``today``."""
    oldest = today - dt.timedelta(days=keep_days - 1)
    removed = []
    for path in sorted(directory.iterdir()):
        match = NAME.match(path.name)
        if match and dt.datetime.strptime(match.group(1), "%Y%m%d").date() < oldest:
            path.unlink()
            removed.append(path.name)
    return removed
