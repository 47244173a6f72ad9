"""Prefill and example visits: the form engine applied to a family's verified record."""

from __future__ import annotations

import forms
from server.models import User
from server.services import ServiceError
from server.services.households import get_visible
from sync import forms as form_store
from sync.models.registry import VerifiedRecord


def _open_form(session, form_id: str, version: int | None = None):
    row = (form_store.get_form_version(session, form_id, version) if version is not None
           else form_store.latest_open_version(session, form_id))
    if row is None:
        raise ServiceError(404, f"No published, open form {form_id!r}"
                           + (f" version {version}." if version is not None else "."))
    return row


def prefill(session, user: User, household_id: str, form_id: str) -> dict:
    """What the phone starts a visit from: answers from the current verified record."""
    household = get_visible(session, user, household_id)
    row = _open_form(session, form_id)
    record = session.get(VerifiedRecord, household.id)
    if record is None:
        raise ServiceError(404, f"Household {household_id!r} has no verified record yet.")
    return {
        "form_id": row.form_id,
        "version": row.version,
        "household_id": household.id,
        "base_version": record.version,
        "answers": forms.prefill(form_store.compiled_form(row), record.doc),
    }


def example_visit(session, form_id: str, version: int | None = None,
                  household_id: str | None = None) -> dict:
    """One complete, valid visit in the push format: the family found and matching its record.

    Prefilled from ``household_id``'s verified record, or from a synthetic family when none is
    given, so that phone teams and tests have a working payload to start from.
    """
    try:
        row = _open_form(session, form_id, version)
    except ServiceError as exc:
        raise LookupError(exc.message) from None
    if household_id is not None:
        record = session.get(VerifiedRecord, household_id)
        if record is None:
            raise LookupError(f"No household {household_id!r} with a verified record.")
        doc, base_version = record.doc, record.version
    else:
        from sync.generator import iter_families

        doc, base_version = next(iter_families(1, seed=1)), 1
    visit = forms.example_visit(form_store.compiled_form(row), doc)
    visit["base_version"] = base_version
    visit.setdefault("trunk_version", base_version)
    return visit
