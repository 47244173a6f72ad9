"""Publishing and closing form versions, and finding the exact version a visit was filled in.

A published version is immutable: publishing the same ``form_id`` and ``version`` again with
the same content is a no-op, with other content a refusal. Closing a form (one version, or
all) makes pushes for it refused from then on.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

import forms
from sync import feed
from sync.db import utcnow
from sync.models import FormVersion


class FormPublishError(Exception):
    """A definition that cannot be published; ``errors`` lists every problem with its path."""

    def __init__(self, message: str, errors: list[dict] | None = None, status: int = 422):
        super().__init__(message)
        self.message, self.errors, self.status = message, errors or [], status


def publish_form(session: Session, definition: dict, actor_id: int | None = None
                 ) -> tuple[FormVersion, bool]:
    """Store a checked definition; return it and whether it was new."""
    problems = forms.check_definition(definition)
    if problems:
        raise FormPublishError("The form definition has errors.", problems)
    digest = forms.content_hash(definition)
    existing = session.scalar(select(FormVersion).where(
        FormVersion.form_id == definition["form_id"],
        FormVersion.version == definition["version"]))
    if existing is not None:
        if existing.hash == digest:
            return existing, False
        raise FormPublishError(
            f"{definition['form_id']} version {definition['version']} is already published "
            "with other content; published versions are immutable, publish a new version.",
            status=409)
    row = FormVersion(form_id=definition["form_id"], version=definition["version"],
                      title=_title(definition), hash=digest, definition=definition,
                      published_by=actor_id)
    session.add(row)
    session.flush()
    feed.form_published(session, row.form_id, row.version)
    return row, True


def _title(definition: dict) -> str:
    title = definition.get("title")
    if isinstance(title, dict):
        return title.get("id") or next(iter(title.values()), definition["form_id"])
    return str(title or definition["form_id"])


def close_form(session: Session, form_id: str, version: int | None = None) -> list[FormVersion]:
    """Close one version, or every open version of a form; return what was closed."""
    stmt = select(FormVersion).where(FormVersion.form_id == form_id,
                                     FormVersion.closed_at.is_(None))
    if version is not None:
        stmt = stmt.where(FormVersion.version == version)
    rows = list(session.scalars(stmt))
    now = utcnow()
    for row in rows:
        row.closed_at = now
        feed.form_closed(session, row.form_id, row.version)
    return rows


def published_forms(session: Session, include_closed: bool = False) -> list[FormVersion]:
    stmt = select(FormVersion).order_by(FormVersion.form_id, FormVersion.version)
    if not include_closed:
        stmt = stmt.where(FormVersion.closed_at.is_(None))
    return list(session.scalars(stmt))


def get_form_version(session: Session, form_id: str, version: int) -> FormVersion | None:
    return session.scalar(select(FormVersion).where(FormVersion.form_id == form_id,
                                                    FormVersion.version == version))


def latest_open_version(session: Session, form_id: str) -> FormVersion | None:
    return session.scalar(select(FormVersion).where(
        FormVersion.form_id == form_id, FormVersion.closed_at.is_(None))
        .order_by(FormVersion.version.desc()).limit(1))


_COMPILED: dict[str, object] = {}


def compiled_form(row: FormVersion):
    """The engine's loaded form for a published version, compiled once per process.

    Keyed by content hash: a published version never changes, so the cache never goes stale.
    """
    form = _COMPILED.get(row.hash)
    if form is None:
        form = _COMPILED[row.hash] = forms.load_form(row.definition)
    return form
