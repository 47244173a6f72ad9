"""The queue's bulk decision: open conflicts of one kind, accepted or kept with one note.

The form (``queue.html``, shown when the queue is filtered to open conflicts of one kind) posts
checkboxes ``ids``, the ``kind`` it was filtered by, a ``decision`` (``accept_visit`` or
``keep_registry``) and an optional ``note``. The ids are checked server-side: at most 50 (one
page), all integers, and every one visible to the user must be of the posted kind, or nothing is
decided. ``server.services.review.bulk_resolve`` then decides each id in its own transaction
(a 404 outside the user's areas or a 409 already decided is reported, the rest go on), and the
view flashes one line per outcome. Works without JavaScript: checkboxes, buttons, a 303.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import User
from server.services import ServiceError
from server.services.conflicts import scope
from server.web.labels import DECISIONS, KINDS

MAX_IDS = 50
BULK_LABELS = {"accept_visit": DECISIONS["accept_visit"],
               "keep_registry": DECISIONS["keep_registry"]}
ERRORS = {"already_decided": "sudah diputuskan", "not_found": "tidak ditemukan atau di luar "
          "wilayah Anda"}


class BulkForm(Schema):
    class Meta:
        unknown = EXCLUDE

    ids = fields.List(fields.Integer(strict=False, validate=validate.Range(min=1, max=2**62)),
                      validate=validate.Length(min=1, max=MAX_IDS), required=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(KINDS)))
    decision = fields.String(required=True, validate=validate.OneOf(list(BULK_LABELS)))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


def _ids_text(ids) -> str:
    return ", ".join(f"#{i}" for i in ids)


def decide_bulk(session: Session, user: User, form) -> list[str]:
    """Decide the posted conflicts; the flash lines (Indonesian) that report each id."""
    from server.services import review
    from sync.models import Conflict

    data = {"ids": form.getlist("ids"), "kind": form.get("kind"),
            "decision": form.get("decision"), "note": (form.get("note") or "").strip() or None}
    if not data["ids"]:
        return ["Belum ada konflik yang dipilih. Centang konflik di daftar, lalu pilih "
                "keputusan."]
    try:
        data = BulkForm().load(data)
    except ValidationError as exc:
        if "ids" in exc.messages and len(data["ids"]) > MAX_IDS:
            return [f"Pilih paling banyak {MAX_IDS} konflik sekaligus."]
        raise ServiceError(422, "invalid bulk form",
                           details={"fields": sorted(exc.messages)}) from exc
    ids = list(dict.fromkeys(data["ids"]))
    kinds = dict(session.execute(scope(select(Conflict.id, Conflict.kind)
                                       .where(Conflict.id.in_(ids)), user)).all())
    wrong = sorted(i for i, k in kinds.items() if k != data["kind"])
    if wrong:
        session.rollback()
        return [f"Tidak ada yang diputuskan: {_ids_text(wrong)} bukan "
                f"\u201c{KINDS[data['kind']]}\u201d. Keputusan massal hanya untuk satu jenis "
                "konflik."]
    session.rollback()  # bulk_resolve opens its own transactions
    results = review.bulk_resolve(session, user, ids, data["decision"], note=data["note"])
    done = [r["id"] for r in results if r["status"] == "resolved"]
    failed = [r for r in results if r["status"] != "resolved"]
    lines = [f"Keputusan massal \u201c{BULK_LABELS[data['decision']]}\u201d: {len(done)} dari "
             f"{len(results)} konflik diputuskan"
             + (f" ({_ids_text(done)})." if done else ".")]
    for r in failed:
        code = (r.get("error") or {}).get("code")
        lines.append(f"#{r['id']} tidak diputuskan: {ERRORS.get(code, 'ditolak')}.")
    return lines
