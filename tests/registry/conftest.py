"""Helpers for the registry tests: small generated extracts written as files."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from sync.generator import iter_families


def family_lines(count: int, seed: int = 1) -> list[dict]:
    return list(iter_families(count, seed))


def write_jsonl(path, items) -> str:
    """Write dicts (as JSON) and strings (as they are) one a line."""
    with open(path, "w", encoding="utf-8") as fh:
        for item in items:
            fh.write(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
            fh.write("\n")
    return str(path)


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


@pytest.fixture
def families():
    """Sixty generated families (seed 1), planted anomalies included."""
    return family_lines(60)
