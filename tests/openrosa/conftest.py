"""Fixtures of the OpenRosa core tests: the v1 definition, its XForm, ODK's form engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import forms
from forms.xform import build_xform
from tests.openrosa.engine import OdkEngine, engine_missing, require_engine

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def v1() -> dict:
    return forms.get_form("verifikasi_keluarga", 1).definition


@pytest.fixture(scope="session")
def v1_xform(v1) -> bytes:
    return build_xform(v1)


@pytest.fixture(scope="session")
def answer_sets() -> list[dict]:
    return json.loads((DATA / "answer_sets.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def _engine_process():
    if engine_missing() is not None:
        yield None
        return
    engine = OdkEngine()
    yield engine
    engine.close()


@pytest.fixture
def odk(_engine_process) -> OdkEngine:
    """ODK's form engine (one Node process for the session); skips or fails without it."""
    require_engine()
    return _engine_process
