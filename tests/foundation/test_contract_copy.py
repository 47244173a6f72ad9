"""docs/contract.md is a copy of ../shared/API.md, the contract phones are written against."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "API.md"


def test_the_contract_copy_holds_the_shared_contract_verbatim():
    if not SHARED.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing")
        pytest.skip("no ../shared/API.md beside this checkout")
    assert SHARED.read_text(encoding="utf-8") in (ROOT / "docs" / "contract.md").read_text(
        encoding="utf-8")
