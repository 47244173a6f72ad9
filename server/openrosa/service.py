"""What the OpenRosa endpoints do: the stored XForm, an enumerator's CSVs, submissions.

A submission goes into the same pipeline as a JSON push (``sync.ingest.ingest_batch``): the XML
is mapped to a visit (``forms.xform.submission_to_visit``), each file part goes through the
photo pipeline (``sync.photos.receive_photo``: Pillow validation, EXIF, thumbnail, phash,
content-addressed by SHA-256) and replaces its filename by its hash, the geopoint becomes the
visit's location, and the visit is stored with ``channel='openrosa'`` once every file its XML
names has arrived (Collect may split a submission over several POSTs).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import threading

from flask import current_app
from sqlalchemy import Text, cast, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

import forms
from forms.xform import XFormError, build_xform, prefill_csvs, submission_to_visit
from server.models import User
from server.services.photos import _row as photo_row
from server.services.photos import storage
from sync import photos as store
from sync.db import utcnow, write_transaction
from sync.forms import compiled_form, published_forms
from sync.ingest import (
    ACCEPTED,
    DUPLICATE,
    UUID_REUSED,
    WAITING,
    ingest_batch,
    photo_arrived,
)
from sync.models.assignment import OPEN_STATUSES, Assignment
from sync.models.feed import FeedEntry, FeedState
from sync.models.form import FormVersion
from sync.models.openrosa import (
    OpenRosaFile,
    OpenRosaMedia,
    OpenRosaSubmission,
    OpenRosaXForm,
)
from sync.models.registry import VerifiedRecord
from sync.models.visit import Photo, Visit

MEDIA_FILES = ("households.csv", "members.csv")
_PLACEHOLDER_SHA = "0" * 64  # a file not arrived yet, while the answers are checked
_XFORMS: dict[tuple[int, str], tuple[bytes, str]] = {}
_XFORMS_LOCK = threading.Lock()


class OpenRosaError(Exception):
    """A refusal: ``status`` for HTTP, ``message`` (Indonesian) for the enumerator."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# --------------------------------------------------------------------------- forms


def listed_forms(session: Session) -> list[FormVersion]:
    """The newest open version of each form: Collect knows a form by its formID."""
    newest: dict[str, FormVersion] = {}
    for row in published_forms(session):
        newest[row.form_id] = row  # ordered by form_id, version
    return list(newest.values())


def open_form(session: Session, form_id: str, version: int) -> FormVersion:
    """The form version, its definition loaded only when used (the manifest and the CSVs need
    its id and hash: the compiled form is cached by hash)."""
    row = session.scalar(select(FormVersion).options(defer(FormVersion.definition)).where(
        FormVersion.form_id == form_id, FormVersion.version == version)) \
        if 0 <= version < 2**31 else None
    if row is None:
        raise OpenRosaError(404, f"Formulir {form_id} versi {version} tidak dikenal di server "
                            "ini.")
    if row.closed_at is not None:
        raise OpenRosaError(403, f"Formulir {form_id} versi {version} sudah ditutup; kirimannya "
                            "tidak diterima lagi.")
    return row


def xform(session: Session, row: FormVersion) -> tuple[bytes, str]:
    """The XForm bytes of a form version and their md5, generated once and stored: the version
    is immutable, so the bytes served (and formList's hash) never change."""
    key = (row.id, row.hash)
    cached = _XFORMS.get(key)
    if cached is not None:
        return cached
    with _XFORMS_LOCK:
        stored = session.get(OpenRosaXForm, row.id)
        if stored is None:
            data = build_xform(row.definition)
            md5 = hashlib.md5(data).hexdigest()
            try:
                with write_transaction(session):
                    session.add(OpenRosaXForm(form_version_id=row.id, xml=data, md5=md5))
            except IntegrityError:  # another worker stored it first: serve theirs
                pass
            stored = session.get(OpenRosaXForm, row.id)
        _XFORMS[key] = (bytes(stored.xml), stored.md5)
    return _XFORMS[key]


# --------------------------------------------------------------------------- prefill CSVs


def _label(household_id: str, doc: dict, status: str) -> str:
    head = next((m.get("nama") for m in doc.get("anggota") or []
                 if isinstance(m, dict) and m.get("hubungan") == 1), None)
    parts = [household_id, head or "", doc.get("alamat") or ""]
    rt, rw = doc.get("rt"), doc.get("rw")
    if rt or rw:
        parts.append(f"RT {rt or '-'}/RW {rw or '-'}")
    label = " · ".join(p for p in parts if p)
    if status == "visited":
        label += " (sudah dikunjungi)"
    elif status == "returned":
        label += " (kunjungan ulang)"
    return label


def _family(household_id: str, status: str, note: str | None, version: int,
            doc: dict) -> dict:
    return {"household_id": household_id, "label": _label(household_id, doc, status),
            "base_version": version, "visited": status == "visited",
            "revisit": status == "returned",
            "revisit_note": note if status == "returned" else None, "record": doc}


def _assigned(session: Session, user: User):
    """(household id, status, note, record version, record JSON text) of the enumerator's open
    assignments, by household id."""
    return session.execute(
        select(Assignment.household_id, Assignment.status, Assignment.note,
               VerifiedRecord.version, cast(VerifiedRecord.doc, Text))
        .join(VerifiedRecord, VerifiedRecord.household_id == Assignment.household_id)
        .where(Assignment.enumerator_id == user.id, Assignment.status.in_(OPEN_STATUSES))
        .order_by(Assignment.household_id)).all()


def families(session: Session, user: User) -> list[dict]:
    """The enumerator's open assignments as ``prefill_csvs`` wants them, by household id."""
    return [_family(hid, status, note, version, json.loads(doc) if doc else {})
            for hid, status, note, version, doc in _assigned(session, user)]


# The CSVs' format: bump it when ``prefill_csvs`` or ``_label`` change what the same families
# give, so that rows built by an older release are not served.
CSV_FORMAT = 1
_COLUMNS = {"households.csv": ("households", "households_md5"),
            "members.csv": ("members", "members_md5")}


def media_state(session: Session, user: User, row: FormVersion) -> str:
    """What an enumerator's CSVs are built from, as one string that changes whenever they may.

    Every writer of an assignment (status, note, enumerator) or a verified record emits a
    change-feed entry for the enumerator holding the family, in its own transaction
    (``sync.feed``); an entity's newer entry replaces its older one with a higher seq. So the
    enumerator's highest seq grows with every change to their families, and only compaction
    (which removes tombstones, and moves ``compacted_seq``) or a reset (``epoch``) can lower
    it. The form version (immutable; its id and content hash) and ``CSV_FORMAT`` complete it.
    """
    return _state(row, *session.execute(select(*_feed_columns(user))).one())


def _feed_columns(user: User) -> list:
    one = FeedState.id == 1
    return [select(FeedState.epoch).where(one).scalar_subquery(),
            select(FeedState.compacted_seq).where(one).scalar_subquery(),
            select(func.max(FeedEntry.seq)).where(FeedEntry.user_id == user.id)
            .scalar_subquery()]


def _state(row: FormVersion, epoch: int | None, compacted: int | None,
           top: int | None) -> str:
    epoch = 1 if epoch is None else epoch  # no feed_state row yet: the first epoch
    return f"{CSV_FORMAT}:{row.id}:{row.hash[:16]}:{epoch}:{compacted or 0}:{top or 0}"


def _split(data: bytes, header: bytes, key: int) -> dict[str, bytes] | None:
    """The rows of a CSV ``prefill_csvs`` wrote, grouped by column ``key`` (the household), in
    order; None unless they put together give back exactly ``data``."""
    if not data.startswith(header):
        return None
    body = data[len(header):].decode("utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    spans: dict[str, list[int]] = {}
    start = 0
    for record in csv.reader(io.StringIO(body, newline="")):
        writer.writerow(record)
        end = buf.tell()
        span = spans.get(record[key])
        if span is None:
            spans[record[key]] = [start, end]
        elif span[1] == start:
            span[1] = end
        else:  # a family's rows are together, or they are not told apart
            return None
        start = end
    if buf.getvalue() != body:
        return None
    return {hid: body[a:b].encode("utf-8") for hid, (a, b) in spans.items()}


def build_media(session: Session, user: User, row: FormVersion,
                previous: tuple[bytes, bytes, str | None] | None = None
                ) -> tuple[dict[str, bytes], str | None]:
    """``({"households.csv": bytes, "members.csv": bytes}, rows)`` for this enumerator only.

    ``rows`` (JSON) lists each family's household id, a digest of everything its rows are
    built from (its status, note, record version and record, the form, ``CSV_FORMAT``) and the
    length of its rows in each file. Given the ``previous`` build (``households``,
    ``members``, ``rows``), a family whose digest is unchanged reuses its rows from it; only
    the others go through ``prefill_csvs``. The bytes are those ``prefill_csvs`` gives for
    all the families at once (``tests/openrosa/test_media_cache.py`` checks it).
    """
    form = compiled_form(row)
    headers = prefill_csvs(form, [])
    assigned = _assigned(session, user)
    salt = f"{CSV_FORMAT}:{row.hash}:".encode()
    digests = []
    for _hid, status, note, version, doc in assigned:
        h = hashlib.md5(salt)
        h.update(f"{status}\x00{note if status == 'returned' else ''}\x00{version}\x00"
                 .encode())
        h.update((doc or "").encode())
        digests.append(h.hexdigest())
    reuse: dict[str, tuple[bytes, bytes]] = {}
    if previous is not None and previous[2] and previous[0].startswith(headers[0]) \
            and previous[1].startswith(headers[1]):
        offsets = [len(headers[0]), len(headers[1])]
        for hid, digest, hh_len, mem_len in json.loads(previous[2]):
            reuse[f"{hid}\x00{digest}"] = (
                previous[0][offsets[0]:offsets[0] + hh_len],
                previous[1][offsets[1]:offsets[1] + mem_len])
            offsets[0] += hh_len
            offsets[1] += mem_len
        if offsets != [len(previous[0]), len(previous[1])]:
            reuse = {}  # the index does not describe these bytes: reuse nothing
    missing = [(hid, status, note, version, doc)
               for (hid, status, note, version, doc), digest in zip(assigned, digests,
                                                                    strict=True)
               if f"{hid}\x00{digest}" not in reuse]
    households, members = prefill_csvs(form, [
        _family(hid, status, note, version, json.loads(doc) if doc else {})
        for hid, status, note, version, doc in missing])
    hh_rows, mem_rows = _split(households, headers[0], 0), _split(members, headers[1], 1)
    if hh_rows is None or mem_rows is None:  # rows not told apart: build all, reuse nothing
        households, members = prefill_csvs(form, [
            _family(hid, status, note, version, json.loads(doc) if doc else {})
            for hid, status, note, version, doc in assigned])
        return {"households.csv": households, "members.csv": members}, None
    parts_hh, parts_mem, index = [headers[0]], [headers[1]], []
    for (hid, *_rest), digest in zip(assigned, digests, strict=True):
        hh, mem = reuse.get(f"{hid}\x00{digest}") or (hh_rows.get(hid, b""),
                                                       mem_rows.get(hid, b""))
        parts_hh.append(hh)
        parts_mem.append(mem)
        index.append([hid, digest, len(hh), len(mem)])
    return ({"households.csv": b"".join(parts_hh), "members.csv": b"".join(parts_mem)},
            json.dumps(index, separators=(",", ":")))


def media(session: Session, user: User, row: FormVersion,
          filename: str | None = None) -> tuple[dict[str, str], bytes | None]:
    """The md5 of each CSV of this enumerator, and the bytes of ``filename`` if one is named.

    Served from ``openrosa_media`` while the row's state is the current ``media_state``;
    otherwise built again (reusing the rows of unchanged families) and stored. The state is
    read before the families, so a row may hold bytes newer than its state (a change committed
    in between: built again on the next request), never older: stale bytes are never served.
    """
    t = OpenRosaMedia
    columns = [t.state, t.households_md5, t.members_md5]
    if filename is not None:
        columns.append(getattr(t, _COLUMNS[filename][0]))
    where = (t.user_id == user.id, t.form_version_id == row.id)
    # The state and the cached row in one statement (one round trip, one snapshot).
    found = session.execute(select(*_feed_columns(user), *[
        select(c).where(*where).scalar_subquery() for c in columns])).one()
    state = _state(row, *found[:3])
    cached = found[3:] if found[3] is not None else None
    if cached is not None and cached[0] == state:
        md5s = {"households.csv": cached[1], "members.csv": cached[2]}
        return md5s, (bytes(cached[3]) if filename is not None else None)
    previous = None
    if cached is not None:  # its rows are reused only if its bytes are what it says
        stored = session.execute(select(t.households, t.members, t.rows).where(*where)).first()
        if stored is not None and hashlib.md5(stored[0]).hexdigest() == cached[1] \
                and hashlib.md5(stored[1]).hexdigest() == cached[2]:
            previous = (bytes(stored[0]), bytes(stored[1]), stored[2])
    files, rows = build_media(session, user, row, previous)
    md5s = {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
    values = {"state": state, "households": files["households.csv"],
              "members": files["members.csv"], "households_md5": md5s["households.csv"],
              "members_md5": md5s["members.csv"], "rows": rows, "built_at": utcnow()}
    table = OpenRosaMedia.__table__
    try:
        with write_transaction(session):
            conn = session.connection()
            if conn.dialect.name == "postgresql":
                # A cache: a row lost in a crash is only built again (an older row's state
                # no longer matches), so its commit need not wait for the disk.
                conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            if not conn.execute(update(table).where(table.c.user_id == user.id,
                                                    table.c.form_version_id == row.id)
                                .values(**values)).rowcount:
                conn.execute(insert(table).values(user_id=user.id, form_version_id=row.id,
                                                  **values))
    except IntegrityError:  # another request of this enumerator stored it at once
        pass
    return md5s, (files[filename] if filename is not None else None)


# --------------------------------------------------------------------------- submissions


@dataclasses.dataclass
class Outcome:
    status: int
    message: str


def _root_of(xml: bytes) -> tuple[str | None, str | None]:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(xml)
    except (ParseError, DefusedXmlException, ValueError):
        raise OpenRosaError(400, "Isi xml_submission_file bukan XML yang sah (rusak, atau "
                            "memakai entitas/DTD yang tidak diizinkan). Tidak ada yang "
                            "disimpan.") from None
    return root.get("id"), root.get("version")


def _location(definition: dict, answers: dict) -> dict | None:
    for f in definition["fields"]:
        if f.get("type") == "geopoint" and isinstance(answers.get(f["name"]), dict):
            geo = answers[f["name"]]
            return {"lat": geo.get("lat"), "lon": geo.get("lon"),
                    "accuracy_m": geo.get("accuracy_m")}
    return None


def _visit(definition: dict, visit: dict, shas: dict[str, str]) -> dict:
    """The push-format visit: photos with their hashes, the location, a branch of its own."""
    out = dict(visit)
    out["photos"] = [{"field": p["field"], "filename": p["filename"],
                      "sha256": shas.get(p["filename"], _PLACEHOLDER_SHA)}
                     for p in visit["photos"]]
    location = _location(definition, visit["answers"])
    if location is not None:
        out["location"] = location
    # Each OpenRosa visit is a branch of its own for the held-chain logic: Collect keeps no
    # offline chain of versions, so the visit never waits for a predecessor.
    out["branch_id"] = visit["uuid"]
    out["trunk_version"] = visit.get("base_version")
    return out


_CODES_ID = {"required": "wajib diisi", "type": "jenis jawabannya salah",
             "constraint": "tidak memenuhi aturan", "photo_missing": "fotonya tidak ada"}


def _problems_message(problems: list[dict]) -> str:
    lines = []
    for p in problems[:20]:
        path = str(p.get("path", "")).removeprefix("answers.")
        lines.append(f"- {path or 'kunjungan'}: {_CODES_ID.get(p.get('code'), p.get('code'))}"
                     f" ({p.get('message')})")
    more = f"\n... dan {len(problems) - 20} masalah lain." if len(problems) > 20 else ""
    return ("Kiriman ditolak; perbaiki isian berikut lalu kirim lagi:\n" + "\n".join(lines)
            + more)


def _file_parts(files) -> list:
    parts = []
    for key, part in files.items(multi=True):
        if key == "xml_submission_file":
            continue
        parts.append((part.filename or key, part))
    return parts


def _part_size(part) -> int:
    stream = part.stream
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _sha_of(part) -> str:
    digest = hashlib.sha256()
    stream = part.stream
    stream.seek(0)
    for chunk in iter(lambda: stream.read(64 * 1024), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def receive(session: Session, user: User, req) -> Outcome:
    """One POST of a submission; raises ``OpenRosaError`` with nothing stored when refused."""
    config = current_app.config
    xml_part = req.files.get("xml_submission_file")
    if xml_part is None:
        raise OpenRosaError(400, "Kiriman harus memuat bagian xml_submission_file.")
    max_xml = config["MAX_PUSH_BYTES"]
    xml = xml_part.stream.read(max_xml + 1)
    if len(xml) > max_xml:
        raise OpenRosaError(413, f"XML kiriman lebih dari {max_xml} byte.")
    form_id, version = _root_of(xml)
    if not isinstance(form_id, str) or not version or not version.isdigit():
        raise OpenRosaError(404, f"Formulir {form_id!r} versi {version!r} tidak dikenal di "
                            "server ini.")
    row = open_form(session, form_id, int(version))
    definition = row.definition
    try:
        visit, problems = submission_to_visit(definition, xml)
    except XFormError:
        raise OpenRosaError(400, "XML kiriman tidak cocok dengan formulir ini (tanpa "
                            "instanceID, atau formulir lain).") from None
    uuid = visit["uuid"]
    if not 8 <= len(uuid) <= 64 or "/" in uuid or "\x00" in uuid:
        raise OpenRosaError(400, "instanceID kiriman harus 8-64 karakter.")
    xml_sha = hashlib.sha256(xml).hexdigest()
    staged = session.get(OpenRosaSubmission, uuid)
    household = visit.get("household_id")
    not_yours = OpenRosaError(403, f"Keluarga {household or '(kosong)'} tidak ditugaskan "
                              "kepada Anda (lagi); kiriman tidak disimpan.")
    if staged is not None and staged.user_id != user.id:
        raise not_yours
    if staged is not None and staged.xml_sha256 != xml_sha:
        raise OpenRosaError(409, "Kiriman lain dengan instanceID yang sama sudah diterima, "
                            "dengan isi berbeda; kiriman ini tidak disimpan. Kirim ulang isian "
                            "yang persis sama, atau buat isian baru.")
    # A resend of a stored visit stays harmless after its family's assignment ended.
    if (staged is None or staged.ingested_at is None) and (
            not household or session.scalar(select(Assignment.id).where(
                Assignment.household_id == household, Assignment.enumerator_id == user.id,
                Assignment.status.in_(OPEN_STATUSES)).limit(1)) is None):
        raise not_yours
    if staged is None and session.get(Visit, uuid) is not None:
        raise OpenRosaError(409, "Kunjungan dengan instanceID ini sudah diterima lewat jalur "
                            "lain; kiriman ini tidak disimpan.")
    known = dict(session.execute(select(OpenRosaFile.filename, OpenRosaFile.sha256)
                                 .where(OpenRosaFile.instance_id == uuid)).all()) \
        if staged is not None else {}
    named = {p["filename"] for p in visit["photos"]}
    max_photo = config["MAX_PHOTO_BYTES"]
    new_parts = []
    for name, part in _file_parts(req.files):
        if _part_size(part) > max_photo:
            raise OpenRosaError(413, f"Berkas {name} lebih dari {max_photo} byte; kiriman tidak "
                                "disimpan.")
        if name in named and name not in known:
            new_parts.append((name, part))
    # The answers are checked before anything is stored (files not arrived: a placeholder).
    if staged is None:
        _answers, errors = forms.validate_visit(compiled_form(row),
                                                _visit(definition, visit, known))
        if problems or errors:
            raise OpenRosaError(400, _problems_message(problems + errors))
    # Files: each through the photo pipeline; one refused removes those this POST added.
    received: dict[str, store.PhotoResult] = {}
    try:
        for name, part in new_parts:
            sha = _sha_of(part)
            result = store.receive_photo(storage(), sha, part.stream, max_bytes=max_photo)
            received[name] = result
    except store.PhotoError as exc:
        for result in received.values():
            if result.created:
                with contextlib.suppress(OSError):
                    storage().delete(result.sha256)
        reason = ("bukan foto JPEG, PNG atau HEIC yang utuh" if exc.status == 422
                  else "terlalu besar")
        raise OpenRosaError(exc.status if exc.status in (413, 422) else 422,
                            f"Berkas {name} {reason}; kiriman tidak disimpan.") from None
    device_id = (req.args.get("deviceID") or "openrosa")[:128].replace("\x00", "")
    now = utcnow()
    with write_transaction(session):
        if staged is None:
            session.add(OpenRosaSubmission(instance_id=uuid, user_id=user.id, form_id=row.form_id,
                                           form_version=row.version, xml=xml,
                                           xml_sha256=xml_sha, device_id=device_id,
                                           received_at=now))
            session.flush()
        for name, result in received.items():
            if session.get(Photo, result.sha256) is None:
                try:
                    with session.begin_nested():
                        session.add(photo_row(result, user))
                except IntegrityError:  # the same photo from another request at once
                    pass
            session.add(OpenRosaFile(instance_id=uuid, filename=name, sha256=result.sha256,
                                     received_at=now))
        for result in received.values():
            photo_arrived(session, result.sha256)
    shas = {**known, **{n: r.sha256 for n, r in received.items()}}
    missing = sorted(named - set(shas))
    staged = session.get(OpenRosaSubmission, uuid)
    if staged.ingested_at is not None:
        if received:
            return Outcome(201, "Foto tambahan diterima; kunjungan ini sudah tersimpan.")
        return Outcome(202, "Kiriman ini sudah diterima sebelumnya; tidak ada yang berubah.")
    if missing:
        return Outcome(201, "Bagian kiriman disimpan. Kunjungan diproses setelah foto berikut "
                       "tiba: " + ", ".join(missing) + ".")
    return _ingest(session, user, staged, definition, visit, shas)


def _ingest(session: Session, user: User, staged: OpenRosaSubmission, definition: dict,
            visit: dict, shas: dict[str, str]) -> Outcome:
    full = _visit(definition, visit, shas)
    result = ingest_batch(session, user_id=user.id, device_id=staged.device_id,
                          batch_id=staged.instance_id, raw_body=bytes(staged.xml), visits=[full],
                          channel="openrosa")[0]
    if result.status in (ACCEPTED, WAITING, DUPLICATE):
        with write_transaction(session):
            row = session.get(OpenRosaSubmission, staged.instance_id)
            row.ingested_at = utcnow()
        if result.status == DUPLICATE:
            return Outcome(202, "Kiriman ini sudah diterima sebelumnya; tidak ada yang berubah.")
        return Outcome(201, "Kunjungan diterima dan akan dicocokkan dengan data DTSEN.")
    with write_transaction(session):  # refused by the pipeline: nothing of it is kept
        row = session.get(OpenRosaSubmission, staged.instance_id)
        if row is not None:
            session.delete(row)
    if result.status == UUID_REUSED:
        raise OpenRosaError(409, "Kunjungan lain dengan instanceID yang sama sudah tersimpan; "
                            "kiriman ini tidak disimpan.")
    raise OpenRosaError(400, _problems_message(result.errors))

