"""Work from the phone: the supervisor's and admin's pages to run the field work.

Rounds (create, close), assigning families to enumerators, exports and escalations. Routes on
the pages blueprint (``/review/...``), kept apart from the review pages of ``views.py``. As
there, a view parses its query or form with a marshmallow schema, calls the same service the
API calls, and renders a template; every POST carries the CSRF token and answers 303.
"""

from __future__ import annotations

import datetime as dt

from flask import (
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select

from server.extensions import db
from server.models import User
from server.services import ServiceError
from server.web import auth
from server.web.views import bp, kecamatan_options, kelurahan_options
from sync import progress
from sync.db import write_transaction
from sync.models import Area, Assignment, Round
from sync.models.registry import Anggota, Keluarga
from sync.privacy import mask_name, mask_number

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

KECAMATAN_CODE = r"^\d{2}\.\d{2}\.\d{2}$"
KELURAHAN_CODE = r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$"
RT_RW = r"^\d{3}$"
FAMILIES_SHOWN = 300

ROUND_STATES = {"open": "Berjalan", "closed": "Ditutup"}
ASSIGNMENT_STATUSES = {"pending": "Belum dikunjungi", "visited": "Dikunjungi",
                       "returned": "Dikembalikan", "done": "Selesai",
                       "closed": "Berakhir (putaran ditutup)"}

SKIP_REASONS = {"not_found": "tidak ditemukan", "outside_your_areas": "di luar wilayah Anda",
                "outside_enumerator_areas": "di luar wilayah enumerator",
                "open_in_another_round": "masih terbuka di putaran lain"}


@bp.record_once
def _filters(state) -> None:
    state.app.jinja_env.filters.update(
        round_state=lambda s: ROUND_STATES.get(s, s or "—"),
        assignment_status=lambda s: ASSIGNMENT_STATUSES.get(s, s or "—"))


# --------------------------------------------------------------------------- helpers

def _admin_only() -> None:
    if g.user.role != "admin":
        raise auth.PageRefused(403, "Halaman ini hanya untuk admin.")


def _form(schema: Schema) -> dict:
    """The POSTed form (without the token), blanks dropped; 422 when it does not fit."""
    data = {}
    for key in request.form:
        if key == "csrf_token":
            continue
        values = [v.strip() for v in request.form.getlist(key) if v.strip()]
        if values:
            data[key] = values if isinstance(schema.fields.get(key), fields.List) else values[0]
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ServiceError(422, "invalid form", details={"fields": sorted(exc.messages)}) from exc


def _args(schema: Schema) -> tuple[dict, bool]:
    """Query arguments; invalid ones are dropped (the page still answers) and reported."""
    data = {k: v.strip() for k, v in request.args.items() if v and v.strip()}
    try:
        return schema.load(data), False
    except ValidationError as exc:
        for key in exc.messages:
            data.pop(key, None)
        return schema.load(data), True


def _area_name(code: str | None) -> str | None:
    if not code:
        return None
    return db.session.scalar(select(Area.name).where(Area.code == code)) or code


def _round_or_404(round_id: int) -> Round:
    row = db.session.get(Round, round_id)
    if row is None:
        raise ServiceError(404, "no round")
    return row


# --------------------------------------------------------------------------- rounds

class RoundForm(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Length(min=3, max=200))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class CloseForm(Schema):
    class Meta:
        unknown = EXCLUDE

    confirm = fields.String(required=True, validate=validate.Equal("ya"))


def _rounds_page(error: str | None = None, status: int = 200, form: dict | None = None):
    rounds = db.session.scalars(select(Round).order_by(Round.starts_on.desc(),
                                                       Round.id.desc())).all()
    counts = progress.round_totals(db.session)  # the counters, not a count of every row
    return render_template("pages/rounds.html", user=g.user, rounds=rounds, counts=counts,
                           error=error, form=form or {}), status


@bp.get("/putaran")
@auth.page_login_required
def rounds():
    return _rounds_page()


@bp.post("/putaran")
@auth.page_login_required
def create_round():
    from server.services import assignments as service

    _admin_only()
    try:
        form = _form(RoundForm())
        with write_transaction(db.session):
            row = service.create_round(db.session, g.user, form["name"], form["starts_on"],
                                       form["ends_on"])
            name = row.name
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        db.session.rollback()
        message = {"round_exists": "Sudah ada putaran dengan nama itu.",
                   "invalid_dates": "Tanggal selesai tidak boleh sebelum tanggal mulai."}.get(
            exc.code, "Isi nama (3–200 huruf), tanggal mulai dan tanggal selesai.")
        return _rounds_page(message, exc.status, dict(request.form))
    flash(f"Putaran \u201c{name}\u201d dibuat.")
    return redirect(url_for("pages.rounds"), 303)


@bp.post("/putaran/<int:round_id>/tutup")
@auth.page_login_required
def close_round(round_id: int):
    from server.services import assignments as service

    _admin_only()
    try:
        _form(CloseForm())
    except ServiceError:
        return _rounds_page("Centang \u201cSaya yakin\u201d untuk menutup putaran.", 422)
    try:
        with write_transaction(db.session):
            row, ended = service.close_round(db.session, g.user, round_id)
            name = row.name
    except ServiceError as exc:
        if exc.status != 409:
            raise
        db.session.rollback()
        return _rounds_page("Putaran ini sudah ditutup.", 409)
    flash(f"Putaran \u201c{name}\u201d ditutup; {ended} penugasan terbuka diakhiri.")
    return redirect(url_for("pages.rounds"), 303)


# --------------------------------------------------------------------------- assignments

class AssignArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    putaran = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    kecamatan = fields.String(load_default=None, validate=validate.Regexp(KECAMATAN_CODE))
    kelurahan = fields.String(load_default=None, validate=validate.Regexp(KELURAHAN_CODE))
    rw = fields.String(load_default=None, validate=validate.Regexp(RT_RW))
    rt = fields.String(load_default=None, validate=validate.Regexp(RT_RW))


class AssignAreaForm(AssignArgs):
    putaran = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    kelurahan = fields.String(required=True, validate=validate.Regexp(KELURAHAN_CODE))
    enumerator = fields.String(required=True, validate=validate.Length(min=1, max=64))


class AssignFamiliesForm(AssignArgs):
    putaran = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    kelurahan = fields.String(required=True, validate=validate.Regexp(KELURAHAN_CODE))
    keluarga = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                           required=True, validate=validate.Length(min=1, max=FAMILIES_SHOWN))
    enumerator = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    aksi = fields.String(required=True, validate=validate.OneOf(["tugaskan", "lepas"]))


def _open_rounds() -> list[Round]:
    return db.session.scalars(select(Round).where(Round.state == "open")
                              .order_by(Round.starts_on.desc(), Round.id.desc())).all()


def _enumerators(kelurahan: str) -> list[User]:
    users = db.session.scalars(select(User).where(User.role == "enumerator",
                                                  User.active.is_(True))
                               .order_by(User.username)).all()
    return [u for u in users if u.covers(kelurahan)]


def _load(round_id: int, users: list[User]) -> dict[int, dict[str, int]]:
    """Each enumerator's assignments in the round: assigned (all) and by status.

    Read from the counters kept by the triggers of migration 0013 (a few rows per enumerator),
    not counted from the assignments (300,000 rows for one enumerator in the benchmark).
    """
    counted = progress.enumerator_load(db.session, round_id, [u.id for u in users])
    return {u.id: {"assigned": 0, "pending": 0, "visited": 0, "returned": 0, "done": 0,
                   **counted[u.id]} for u in users}


def _families(round_id: int, kelurahan: str, rw: str | None, rt: str | None):
    """The first families of a kelurahan (RW/RT), masked, with their assignment in the round."""
    stmt = (select(Keluarga.id, Keluarga.no_kk, Keluarga.rt, Keluarga.rw, User.username,
                   Assignment.status)
            .outerjoin(Assignment, (Assignment.household_id == Keluarga.id)
                       & (Assignment.round_id == round_id))
            .outerjoin(User, User.id == Assignment.enumerator_id)
            .where(Keluarga.kode_kelurahan == kelurahan, Keluarga.removed_at.is_(None)))
    if rw:
        stmt = stmt.where(Keluarga.rw == rw)
    if rt:
        stmt = stmt.where(Keluarga.rt == rt)
    rows = db.session.execute(stmt.order_by(Keluarga.rw, Keluarga.rt, Keluarga.id)
                              .limit(FAMILIES_SHOWN + 1)).all()
    ids = [r[0] for r in rows[:FAMILIES_SHOWN]]
    heads: dict[str, tuple[str | None, int | None]] = {}
    if ids:  # the head of family (hubungan 1), else the first member
        for hid, nama, hubungan in db.session.execute(
                select(Anggota.keluarga_id, Anggota.nama, Anggota.hubungan)
                .where(Anggota.keluarga_id.in_(ids))
                .order_by(Anggota.keluarga_id, Anggota.no_urut)):
            if hid not in heads or (hubungan == 1 and heads[hid][1] != 1):
                heads[hid] = (nama, hubungan)
    families = [{"id": hid, "no_kk": mask_number(kk), "rt": frt, "rw": frw,
                 "head": mask_name((heads.get(hid) or (None,))[0]), "enumerator": who,
                 "status": status} for hid, kk, frt, frw, who, status in rows[:FAMILIES_SHOWN]]
    return families, len(rows) > FAMILIES_SHOWN


def _back(form: dict) -> str:
    keep = {k: form.get(k) for k in ("putaran", "kecamatan", "kelurahan", "rw", "rt")
            if form.get(k)}
    return url_for("pages.assignments", **keep)


@bp.get("/penugasan")
@auth.page_login_required
def assignments():
    args, dropped = _args(AssignArgs())
    open_rounds = _open_rounds()
    if args["putaran"]:
        rnd = _round_or_404(args["putaran"])
    else:
        rnd = open_rounds[0] if open_rounds else None
    if args["kelurahan"]:
        if not g.user.covers(args["kelurahan"]):
            raise ServiceError(404, "outside")
        args["kecamatan"] = args["kelurahan"][:8]
    kecamatan_choices = kecamatan_options(g.user)
    if args["kecamatan"] and args["kecamatan"] not in dict(kecamatan_choices):
        raise ServiceError(404, "outside")
    enumerators, load, families, more = [], {}, [], False
    if rnd is not None and args["kelurahan"]:
        enumerators = _enumerators(args["kelurahan"])
        load = _load(rnd.id, enumerators)
        families, more = _families(rnd.id, args["kelurahan"], args["rw"], args["rt"])
    elif rnd is not None and args["kecamatan"]:
        enumerators = [u for u in db.session.scalars(
            select(User).where(User.role == "enumerator", User.active.is_(True))
            .order_by(User.username)) if any(a == args["kecamatan"] or
                                             a.startswith(args["kecamatan"] + ".")
                                             or args["kecamatan"].startswith(a + ".")
                                             for a in u.areas)]
        load = _load(rnd.id, enumerators)
    return render_template(
        "pages/assignments.html", user=g.user, args=args, dropped=dropped, rnd=rnd,
        open_rounds=open_rounds, kecamatan_options=kecamatan_choices,
        kelurahan_options=kelurahan_options(g.user, args["kecamatan"]),
        kelurahan_name=_area_name(args["kelurahan"]), enumerators=enumerators, load=load,
        families=families, more=more, limit=FAMILIES_SHOWN)


def _result_message(result) -> str:
    text = (f"Ditugaskan {result.assigned}, dipindahkan {result.moved}, "
            f"tidak berubah {result.unchanged}")
    if result.skipped:
        reasons: dict[str, int] = {}
        for skip in result.skipped:
            reasons[skip["reason"]] = reasons.get(skip["reason"], 0) + 1
        text += ", dilewati " + ", ".join(f"{n} ({SKIP_REASONS.get(r, r)})"
                                          for r, n in sorted(reasons.items()))
    return text + "."


ASSIGN_REFUSALS = {
    "round_closed": "Putaran ini sudah ditutup; pilih putaran yang berjalan.",
    "invalid_enumerator": "Pilih enumerator yang aktif.",
}


@bp.post("/penugasan/wilayah")
@auth.page_login_required
def assign_area():
    from server.services import assignments as service

    form = _form(AssignAreaForm())
    if not g.user.covers(form["kelurahan"]):
        raise ServiceError(403, "outside")
    try:
        with write_transaction(db.session):
            result = service.assign(db.session, g.user, form["putaran"], form["enumerator"],
                                    kelurahan=form["kelurahan"], rt=form["rt"], rw=form["rw"])
    except ServiceError as exc:
        if exc.code not in ASSIGN_REFUSALS:
            raise
        flash(ASSIGN_REFUSALS[exc.code])
        return redirect(_back(form), 303)
    flash(f"Penugasan ke {form['enumerator']}: " + _result_message(result))
    return redirect(_back(form), 303)


@bp.post("/penugasan/keluarga")
@auth.page_login_required
def assign_families():
    from server.services import assignments as service

    form = _form(AssignFamiliesForm())
    ids = sorted(set(form["keluarga"]))
    if form["aksi"] == "tugaskan":
        if not form["enumerator"]:
            flash("Pilih enumerator untuk keluarga yang dicentang.")
            return redirect(_back(form), 303)
        try:
            with write_transaction(db.session):
                result = service.assign(db.session, g.user, form["putaran"],
                                        form["enumerator"], household_ids=ids)
        except ServiceError as exc:
            if exc.code not in ASSIGN_REFUSALS:
                raise
            flash(ASSIGN_REFUSALS[exc.code])
            return redirect(_back(form), 303)
        flash(f"Penugasan ke {form['enumerator']}: " + _result_message(result))
        return redirect(_back(form), 303)
    done, missing = 0, 0
    try:
        with write_transaction(db.session):
            for household_id in ids:
                try:
                    service.unassign(db.session, g.user, form["putaran"], household_id)
                    done += 1
                except ServiceError as exc:
                    if exc.status != 404:
                        raise
                    missing += 1
    except ServiceError as exc:
        if exc.code not in ASSIGN_REFUSALS:
            raise
        flash(ASSIGN_REFUSALS[exc.code])
        return redirect(_back(form), 303)
    flash(f"Dilepas {done} keluarga" + (f"; {missing} tidak punya penugasan di putaran ini"
                                        if missing else "") + ".")
    return redirect(_back(form), 303)


# --------------------------------------------------------------------------- exports

class ExportArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    sejak = fields.Date(load_default=None)
    kecamatan = fields.String(load_default=None, validate=validate.Regexp(KECAMATAN_CODE))
    kelurahan = fields.String(load_default=None, validate=validate.Regexp(KELURAHAN_CODE))
    putaran = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


def _export_args() -> dict:
    """The filters of a download; an invalid one is a 422 page (a file must match its link)."""
    data = {k: v.strip() for k, v in request.args.items() if v and v.strip()}
    try:
        args = ExportArgs().load(data)
    except ValidationError as exc:
        raise ServiceError(422, "invalid filter", details={"fields": sorted(exc.messages)}) \
            from exc
    if args["kelurahan"]:
        args["kecamatan"] = None  # the kelurahan says it all
    return args


def _csv(chunks, name: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/ekspor")
@auth.page_login_required
def exports():
    args, dropped = _args(ExportArgs())
    rounds = db.session.scalars(select(Round).order_by(Round.starts_on.desc(),
                                                       Round.id.desc())).all()
    return render_template("pages/exports.html", user=g.user, args=args, dropped=dropped,
                           rounds=rounds, kecamatan_options=kecamatan_options(g.user),
                           kelurahan_options=kelurahan_options(g.user, args["kecamatan"]))


@bp.get("/ekspor/changes.csv")
@auth.page_login_required
def export_changes():
    from server.services import exports as service

    args = _export_args()
    since = (dt.datetime.combine(args["sejak"], dt.time(), WIB).astimezone(dt.UTC)
             if args["sejak"] else None)
    chunks = service.changes_csv(db.session, g.user, since=since,
                                 kecamatan=args["kecamatan"], kelurahan=args["kelurahan"])
    return _csv(chunks, "changes.csv")


@bp.get("/ekspor/outcomes.csv")
@auth.page_login_required
def export_outcomes():
    from server.services import exports as service

    args = _export_args()
    chunks = service.outcomes_csv(db.session, g.user, kecamatan=args["kecamatan"],
                                  kelurahan=args["kelurahan"], round_id=args["putaran"])
    return _csv(chunks, "outcomes.csv")


# --------------------------------------------------------------------------- escalations

class EscalatedArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    setelah = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


@bp.get("/eskalasi")
@auth.page_login_required
def escalated():
    from server.services.progress import escalated as service

    _admin_only()
    args, _ = _args(EscalatedArgs())
    from server.services.conflicts import mask_path

    items, last = service(db.session, g.user, after=args["setelah"], limit=50)
    for item in items:  # a path may name a member by NIK: masked like the values
        item["field"] = mask_path(item["field"])
    names = dict(db.session.execute(select(Area.code, Area.name).where(
        Area.code.in_({i["kelurahan"] for i in items} | {i["kecamatan"] for i in items}))).all()
                 ) if items else {}
    return render_template("pages/escalated.html", user=g.user, items=items, last=last,
                           first=args["setelah"] is None, names=names)


# --------------------------------------------------------------------------- find a family

class SearchForm(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(required=True, validate=validate.Length(min=1, max=200))


@bp.get("/cari")
@auth.page_login_required
def search():
    return render_template("pages/search.html", user=g.user, searched=False)


@bp.post("/cari")
@auth.page_login_required
def search_results():
    """A POST, answered with the results (not a redirect): the query never reaches a URL, so a
    NIK stays out of a shared phone's history; the page echoes it masked only."""
    from server.services.search import find_families

    try:
        form = _form(SearchForm())
        how, items, more = find_families(db.session, g.user, form["q"])
    except ServiceError as exc:
        if exc.status != 422:
            raise
        return render_template("pages/search.html", user=g.user, searched=False,
                               error="Ketik 16 angka (No. KK atau NIK), ID keluarga, atau "
                                     "paling sedikit 3 huruf nama."), 422
    query = " ".join(form["q"].split())
    shown = mask_number(query) if how == "number" else mask_name(query)
    names = dict(db.session.execute(select(Area.code, Area.name).where(
        Area.code.in_({i["kode_kelurahan"] for i in items}))).all()) if items else {}
    return render_template("pages/search.html", user=g.user, searched=True, items=items,
                           more=more, shown=shown, how=how, names=names)


# --------------------------------------------------------------------------- a lost phone

class RevokeForm(Schema):
    class Meta:
        unknown = EXCLUDE

    device = fields.String(required=True, validate=validate.Length(min=1, max=128))


class PasswordForm(Schema):
    class Meta:
        unknown = EXCLUDE

    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    password2 = fields.String(required=True, validate=validate.Length(min=1, max=256))


@bp.get("/petugas")
@auth.page_login_required
def team():
    from server.services import devices as service

    users = service.team(db.session, g.user)
    return render_template("pages/team.html", user=g.user, users=users,
                           counts=service.live_device_counts(db.session, [u.id for u in users]))


def _member_page(username: str, error: str | None = None, status: int = 200):
    from server.services import devices as service

    member = service.get_member(db.session, g.user, username)
    return render_template("pages/member.html", user=g.user, member=member,
                           devices=service.devices(db.session, member), error=error), status


@bp.get("/petugas/<username>")
@auth.page_login_required
def member(username: str):
    return _member_page(username)


@bp.post("/petugas/<username>/cabut")
@auth.page_login_required
def revoke_device(username: str):
    from server.services import devices as service

    form = _form(RevokeForm())
    with write_transaction(db.session):
        n = service.revoke_device(db.session, g.user, username, form["device"])
    flash(f"Perangkat {form['device']} dicabut ({n} token). Ponsel itu harus masuk lagi.")
    return redirect(url_for("pages.member", username=username), 303)


@bp.post("/petugas/<username>/sandi")
@auth.page_login_required
def reset_password(username: str):
    from server.services import devices as service

    service.get_member(db.session, g.user, username)  # 404 before reading the form
    try:
        form = _form(PasswordForm())
    except ServiceError:
        return _member_page(username, "Isi kata sandi baru dua kali.", 422)
    if form["password"] != form["password2"]:
        return _member_page(username, "Kedua kata sandi tidak sama.", 422)
    try:
        with write_transaction(db.session):
            n = service.reset_password(db.session, g.user, username, form["password"])
    except ServiceError as exc:
        if exc.status != 422:
            raise
        return _member_page(username, "Kata sandi paling sedikit 8 karakter.", 422)
    flash(f"Kata sandi {username} diganti; {n} token di semua perangkatnya dicabut. "
          "Sampaikan kata sandi baru secara langsung, bukan lewat pesan.")
    return redirect(url_for("pages.member", username=username), 303)


# --------------------------------------------------------------------------- quality

class QualityArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    putaran = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


@bp.get("/mutu")
@auth.page_login_required
def quality():
    from server.services.quality import enumerator_quality

    args, dropped = _args(QualityArgs())
    if args["putaran"]:
        _round_or_404(args["putaran"])
    rows = enumerator_quality(db.session, g.user, round_id=args["putaran"])
    rounds = db.session.scalars(select(Round).order_by(Round.starts_on.desc(),
                                                       Round.id.desc())).all()
    return render_template("pages/quality.html", user=g.user, rows=rows, rounds=rounds,
                           chosen=args["putaran"], dropped=dropped)
