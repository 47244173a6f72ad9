"""The review pages: login, queue, conflict, visit, household history and progress dashboard.

Views stay thin, as in the API: parse the query or form with a marshmallow schema, call the
same service function the API calls, render a template. Every POST carries the CSRF token
(checked app-wide by Flask-WTF before the view runs) and answers with a redirect (303), so a
reload never decides twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_, select
from werkzeug.exceptions import HTTPException

from server.extensions import db, limiter
from server.models import User
from server.services import ServiceError
from server.web import auth
from server.web.labels import DECISIONS, KINDS, REVIEW_DECISIONS, WIB, register_filters
from server.web.values import Change, FormLabels, members_by_nik
from sync.areas import PRIORITY_KECAMATAN
from sync.models import (
    Area,
    Assignment,
    Conflict,
    FormVersion,
    Round,
    VerifiedRecord,
    Visit,
)

bp = Blueprint("pages", __name__, url_prefix="/review")

KECAMATAN_CODE = r"^\d{2}\.\d{2}\.\d{2}$"
KELURAHAN_CODE = r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$"


@bp.record_once
def _setup(state) -> None:
    register_filters(state.app)


# --------------------------------------------------------------------------- errors and headers

MESSAGES = {
    400: "Permintaan tidak dapat dipahami.",
    403: "Anda tidak berwenang melakukan ini.",
    404: "Tidak ditemukan, atau di luar wilayah Anda.",
    405: "Cara ini tidak diizinkan di alamat ini.",
    409: "Sudah diputuskan orang lain lebih dulu. Muat ulang halaman untuk melihat keadaan "
         "terbaru.",
    413: "Kiriman terlalu besar.",
    422: "Ada isian yang tidak valid.",
    429: "Terlalu banyak percobaan. Tunggu sebentar, lalu coba lagi.",
    500: "Terjadi kesalahan di server; sudah dicatat.",
}


def _error_page(status: int, message: str | None = None):
    return render_template("pages/error.html", status=status,
                           message=message or MESSAGES.get(status, MESSAGES[500]),
                           user=g.get("user")), status


@bp.errorhandler(auth.PageRefused)
def _refused(error: auth.PageRefused):
    return _error_page(error.status, error.message)


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError):
    # Service messages are English and may name values; people get the Indonesian sentence.
    return _error_page(error.status)


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError):
    return _error_page(400, "Sesi formulir sudah kedaluwarsa atau tidak sah. Muat ulang "
                            "halaman, lalu coba lagi.")


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return _error_page(error.code or 500)


@bp.after_request
def _headers(response):
    # The security headers (CSP and the rest) are app-wide: server.security.
    if response.mimetype == "text/html":
        # Pages carry names and NIKs: never kept by a shared phone's cache or a proxy.
        response.headers["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- login

class LoginForm(Schema):
    class Meta:
        unknown = EXCLUDE

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    next = fields.String(load_default=None)


def _login_key() -> str:
    """Per address and username, like the API's login."""
    return f"{get_remote_address()}|{request.form.get('username', '')[:64]}"


@bp.route("/masuk", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], key_func=_login_key,
               methods=["POST"])
def login():
    nxt = auth.safe_next(request.values.get("next"))
    if request.method == "GET":
        user = auth.session_user()
        if user is not None and user.role in auth.PAGE_ROLES:
            return redirect(nxt or auth.landing(user))
        return render_template("pages/login.html", next=nxt, username="")
    try:
        form = LoginForm().load(request.form)
    except ValidationError:
        return render_template("pages/login.html", next=nxt, username="",
                               error="Isi nama pengguna dan kata sandi."), 422
    user = auth.check_credentials(form["username"], form["password"])
    if user is None:
        return render_template("pages/login.html", next=nxt, username=form["username"],
                               error="Nama pengguna atau kata sandi salah."), 401
    if user.role not in auth.PAGE_ROLES:
        return render_template("pages/login.html", next=nxt, username=form["username"],
                               error=auth.ENUMERATOR_REFUSED), 403
    auth.start_session(user)
    return redirect(nxt or auth.landing(user), 303)


@bp.post("/keluar")
def logout():
    auth.end_session()
    flash("Anda sudah keluar.")
    return redirect(url_for("pages.login"), 303)


@bp.get("/")
@auth.page_login_required(roles=auth.PAGE_ROLES)
def home():
    return redirect(auth.landing(g.user))


# --------------------------------------------------------------------------- areas

def _names(codes) -> dict[str, str]:
    codes = sorted({c for c in codes if c})
    if not codes:
        return {}
    return dict(db.session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all())


def kecamatan_options(user: User) -> list[tuple[str, str]]:
    """The kecamatan a user may filter by: all for admins; for others those they hold, or hold
    a kelurahan of (Jakarta has 44: a short list)."""
    rows = db.session.execute(select(Area.code, Area.name).where(Area.level == "kecamatan")
                              .order_by(Area.code)).all()
    return [(c, n) for c, n in rows
            if user.covers(c) or any(a.startswith(c + ".") for a in user.areas)]


def kelurahan_options(user: User, kecamatan: str | None) -> list[tuple[str, str]]:
    if not kecamatan:
        return []
    stmt = (select(Area.code, Area.name)
            .where(Area.level == "kelurahan", Area.parent_code == kecamatan).order_by(Area.code))
    return [(c, n) for c, n in db.session.execute(stmt) if user.covers(c)]


# --------------------------------------------------------------------------- values in words

def form_labels(pairs) -> dict[tuple[str, int], FormLabels]:
    """``FormLabels`` of each (form_id, version), built once per app: a published version
    never changes. Only versions not yet cached are read, in one query."""
    cache = current_app.extensions.setdefault("tapak.form_labels", {})
    wanted = {(f, v) for f, v in pairs if f and v is not None}
    missing = wanted - cache.keys()
    if missing:
        rows = db.session.execute(select(FormVersion.form_id, FormVersion.version,
                                         FormVersion.definition).where(
            or_(*(and_(FormVersion.form_id == f, FormVersion.version == v)
                  for f, v in sorted(missing))))).all()
        for f, v, definition in rows:
            cache[(f, v)] = FormLabels(definition)
    return {k: cache[k] for k in wanted if k in cache}


def _default_labels() -> FormLabels:
    """The newest published form, for a conflict with no visit (one query a request)."""
    if "default_labels" not in g:
        row = db.session.execute(select(FormVersion.form_id, FormVersion.version)
                                 .order_by(FormVersion.published_at.desc(),
                                           FormVersion.id.desc()).limit(1)).first()
        g.default_labels = (form_labels([tuple(row)]).get(tuple(row)) if row else None) \
            or FormLabels(None)
    return g.default_labels


def _records(household_ids) -> dict[str, dict]:
    """Members by NIK of each family's verified record, in one query."""
    ids = sorted({h for h in household_ids if h})
    if not ids:
        return {}
    rows = db.session.execute(select(VerifiedRecord.household_id, VerifiedRecord.doc)
                              .where(VerifiedRecord.household_id.in_(ids))).all()
    return {h: members_by_nik(doc) for h, doc in rows}


def describe_conflicts(items: list[dict], *, masked: bool) -> dict[int, Change | None]:
    """Each conflict's field and values in words, by id, with a constant number of queries:
    one for the fields (unmasked: the member they name) and the visits' form versions, one
    for the records of families whose conflicts name a member, and one per form version not
    yet cached."""
    ids = [i["id"] for i in items]
    if not ids:
        return {}
    rows = db.session.execute(
        select(Conflict.id, Conflict.field, Visit.form_id, Visit.form_version)
        .outerjoin(Visit, Visit.uuid == Conflict.visit_uuid).where(Conflict.id.in_(ids))).all()
    info = {r[0]: r for r in rows}
    labels = form_labels([(r[2], r[3]) for r in rows])
    members = _records([i["household_id"] for i in items
                        if (info.get(i["id"]) and (info[i["id"]][1] or "").startswith("anggota["))])
    out: dict[int, Change | None] = {}
    for item in items:
        _id, field, form_id, version = info.get(item["id"], (item["id"], None, None, None))
        if not field:
            out[item["id"]] = None
            continue
        form = labels.get((form_id, version)) or _default_labels()
        change = form.change(
            field, item.get("registry_value"), item.get("base_value"), item.get("visit_value"),
            masked=masked, members=members.get(item["household_id"]),
            shown_path=item.get("field"))
        if item.get("resolution_value") is not None:
            change = dataclasses.replace(change, resolution=form.change(
                field, item["resolution_value"], None, None, masked=masked,
                members=members.get(item["household_id"])).registry)
        out[item["id"]] = change
    return out


# --------------------------------------------------------------------------- the queue

class QueueArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(load_default="open",
                           validate=validate.OneOf(["open", "resolved", "dismissed", "all"]))
    kind = fields.String(load_default=None, validate=validate.Regexp(r"^[a-z_]{1,40}$"))
    kecamatan = fields.String(load_default=None, validate=validate.Regexp(KECAMATAN_CODE))
    kelurahan = fields.String(load_default=None, validate=validate.Regexp(KELURAHAN_CODE))
    household = fields.String(load_default=None, validate=validate.Length(max=64))
    sort = fields.String(load_default="newest",
                         validate=validate.OneOf(["newest", "oldest", "severity"]))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


def _load_args(schema: Schema, values) -> tuple[dict, bool]:
    """Parse query arguments; drop the invalid ones (a page still answers) and say so."""
    data = {k: v.strip() for k, v in values.items() if v and v.strip()}
    try:
        return schema.load(data), False
    except ValidationError as exc:
        for key in exc.messages:
            data.pop(key, None)
        return schema.load(data), True


@bp.get("/antrean")
@auth.page_login_required
def queue():
    from server.services import conflicts

    args, dropped = _load_args(QueueArgs(), request.args)
    if args["kelurahan"] and not args["kecamatan"]:
        args["kecamatan"] = args["kelurahan"][:8]
    if args["kelurahan"] and not args["kelurahan"].startswith(args["kecamatan"] + "."):
        args["kelurahan"] = None
    result = conflicts.list_conflicts(
        db.session, g.user, status=None if args["status"] == "all" else args["status"],
        kind=args["kind"], kecamatan=args["kecamatan"], kelurahan=args["kelurahan"],
        household_id=args["household"], sort=args["sort"], limit=50, cursor=args["cursor"])
    defaults = {"status": "open", "sort": "newest"}
    filters = {k: v for k, v in args.items() if v and k != "cursor" and defaults.get(k) != v}
    session["queue_qs"] = filters
    items = result["items"]
    counts = result.get("counts") or {}
    kinds = sorted(set(KINDS) | set(counts))
    names = _names([i.get("kelurahan") for i in items])
    return render_template(
        "pages/queue.html", user=g.user, items=items, counts=counts, kinds=kinds,
        total=sum(counts.values()), args=args, filters=filters, dropped=dropped,
        next_cursor=result.get("next_cursor"), names=names,
        kecamatan_options=kecamatan_options(g.user),
        kelurahan_options=kelurahan_options(g.user, args["kecamatan"]),
        described=describe_conflicts(items, masked=True))


def _back_to_queue() -> str:
    return url_for("pages.queue", **(session.get("queue_qs") or {}))


@bp.post("/antrean/putuskan")
@auth.page_login_required
def bulk_decide():
    """The queue's bulk form: conflicts of one kind, accepted or kept with one note
    (``review.bulk_resolve``, each id on its own); a flash says what happened to each."""
    from server.web.evidence_bulk import decide_bulk

    for message in decide_bulk(db.session, g.user, request.form):
        flash(message)
    return redirect(_back_to_queue(), 303)


# --------------------------------------------------------------------------- a conflict

class DecisionForm(Schema):
    class Meta:
        unknown = EXCLUDE

    decision = fields.String(required=True, validate=validate.OneOf(list(DECISIONS)))
    value = fields.String(load_default=None, validate=validate.Length(max=2000))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


class NoteForm(Schema):
    class Meta:
        unknown = EXCLUDE

    note = fields.String(load_default=None, validate=validate.Length(max=2000))


def _form(schema: Schema) -> dict:
    data = {k: v for k, v in request.form.items() if k != "csrf_token"}
    for key in ("note", "value"):
        if key in data and not data[key].strip():
            data.pop(key)
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ServiceError(422, "invalid form", details={"fields": sorted(exc.messages)}) from exc


def _user_names(ids) -> dict[int, str]:
    ids = sorted({i for i in ids if isinstance(i, int)})
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


@bp.get("/konflik/<int:conflict_id>")
@auth.page_login_required
def conflict(conflict_id: int):
    from server.services import conflicts

    detail = conflicts.conflict_detail(db.session, g.user, conflict_id)
    return _render_conflict(detail)


def _render_conflict(detail: dict, error: str | None = None, status: int = 200):
    names = _names([detail.get("kelurahan"), detail.get("kecamatan")])
    described = describe_conflicts([detail], masked=False).get(detail["id"])
    from server.web import evidence  # what the kind rests on, as this user may see it

    ev = evidence.build(db.session, g.user, detail, _default_labels())
    return render_template("pages/conflict.html", user=g.user, c=detail, d=described,
                           names=names, back=_back_to_queue(), error=error,
                           decisions=DECISIONS, ev=ev), status


@bp.post("/konflik/<int:conflict_id>/putuskan")
@auth.page_login_required
def decide(conflict_id: int):
    from server.services import conflicts, review

    try:
        form = _form(DecisionForm())
        if form["decision"] == "set_value" and form.get("value") is None:
            raise ServiceError(422, "value required")
        review.resolve_conflict(db.session, g.user, conflict_id, form["decision"],
                                value=form.get("value") if form["decision"] == "set_value"
                                else None, note=form.get("note"))
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        db.session.rollback()
        message = (MESSAGES[409] if exc.status == 409 else
                   "Isi nilai baru untuk \u201cTetapkan nilai\u201d, atau periksa isian.")
        return _render_conflict(conflicts.conflict_detail(db.session, g.user, conflict_id),
                                error=message, status=exc.status)
    flash("Keputusan disimpan: " + DECISIONS[form["decision"]] + ".")
    return redirect(url_for("pages.conflict", conflict_id=conflict_id), 303)


@bp.post("/konflik/<int:conflict_id>/buka")
@auth.page_login_required
def reopen(conflict_id: int):
    from server.services import conflicts, review

    try:
        form = _form(NoteForm())
        review.reopen_conflict(db.session, g.user, conflict_id, note=form.get("note"))
    except ServiceError as exc:
        if exc.status != 409:
            raise
        db.session.rollback()
        return _render_conflict(conflicts.conflict_detail(db.session, g.user, conflict_id),
                                error=MESSAGES[409], status=409)
    flash("Konflik dibuka kembali.")
    return redirect(url_for("pages.conflict", conflict_id=conflict_id), 303)


# --------------------------------------------------------------------------- a visit

REVIEW_REFUSALS = {
    "hard_conflicts_open": "Putuskan dulu konflik berat kunjungan ini sebelum menyetujuinya.",
    "no_assignment": "Keluarga ini tidak punya penugasan pada putaran kunjungan; tidak bisa "
                     "dikembalikan.",
    "note_required": "Tulis catatan untuk enumerator sebelum mengembalikan kunjungan.",
    "stale_review": MESSAGES[409],
}


class ReviewForm(Schema):
    class Meta:
        unknown = EXCLUDE

    decision = fields.String(required=True, validate=validate.OneOf(list(REVIEW_DECISIONS)))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


def _render_visit(uuid: str, error: str | None = None, status: int = 200):
    from server.services.media import signed_url
    from server.services.visits import get_visible_visit, visit_detail

    visit = visit_detail(db.session, g.user, uuid)
    row = get_visible_visit(db.session, g.user, uuid)  # the review's note, for the page
    visit.update(review_note=row.review_note, reviewed_at=row.reviewed_at)
    photos = [{"field": p["field"], "thumb_url": signed_url(p["sha256"], "thumb"),
               "url": signed_url(p["sha256"], "full")}
              for p in visit.get("photos") or [] if p["sha256"] not in
              set(visit.get("missing_photos") or [])]
    labels = form_labels([(visit.get("form_id"), visit.get("form_version"))]).get(
        (visit.get("form_id"), visit.get("form_version"))) or _default_labels()
    conflicts = visit.get("conflicts") or []
    return render_template("pages/visit.html", user=g.user, v=visit, photos=photos,
                           conflicts=conflicts, back=_back_to_queue(),
                           described=describe_conflicts(conflicts, masked=False),
                           error=error, decisions=REVIEW_DECISIONS,
                           answers=_flat_answers(visit.get("answers") or {},
                                                 {p["sha256"] for p in visit.get("photos") or []},
                                                 labels)
                           ), status


def _flat_answers(answers: dict, hidden: set, labels: FormLabels
                  ) -> tuple[list[tuple[str, str]], list]:
    """Answers as (question's label, value in words) rows, groups flattened, and the members
    apart, each a card of every answer."""
    rows, members = [], []
    for key, value in answers.items():
        if isinstance(value, str) and value in hidden:
            continue  # a photo's hash: the photo itself is shown
        question = labels.question(key)
        if key == "anggota" and isinstance(value, list):
            members = [labels.member_card(m, every_answer=True) for m in value
                       if isinstance(m, dict)]
        elif isinstance(value, dict) and question is None:  # a group
            rows += [(f"{key}.{k}", v) for k, v in value.items() if not isinstance(v, dict | list)]
        elif not isinstance(value, list) or question is not None:
            rows.append((key, value))
    return [(labels.label(p) or p, labels.value(p, v)) for p, v in rows], members


@bp.get("/kunjungan/<uuid>")
@auth.page_login_required
def visit(uuid: str):
    return _render_visit(uuid)


@bp.post("/kunjungan/<uuid>/tinjau")
@auth.page_login_required
def review_visit(uuid: str):
    from server.services import review

    try:
        form = _form(ReviewForm())
        if form["decision"] == "return" and not form.get("note"):
            raise ServiceError(422, "note required", code="note_required")
        review.review_visit(db.session, g.user, uuid, form["decision"], note=form.get("note"))
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        db.session.rollback()
        return _render_visit(uuid, error=REVIEW_REFUSALS.get(exc.code, MESSAGES[exc.status]),
                             status=exc.status)
    flash("Tinjauan disimpan: " + REVIEW_DECISIONS[form["decision"]] + ".")
    return redirect(url_for("pages.visit", uuid=uuid), 303)


# --------------------------------------------------------------------------- a household

@bp.get("/keluarga/<household_id>")
@auth.page_login_required
def household(household_id: str):
    from server.services import conflicts
    from server.services.households import household_detail

    detail = household_detail(db.session, g.user, household_id)
    history = list(reversed(detail.get("history") or []))
    open_items = conflicts.list_conflicts(db.session, g.user, status=None,
                                          household_id=household_id, limit=50)["items"]
    record = (detail.get("verified") or {}).get("record") or \
        (detail.get("registry") or {}).get("record") or {}
    labels, members = _default_labels(), members_by_nik(record)
    for entry in history:  # each change path, old and new values in words
        entry["worded"] = [labels.change(ch.get("path"), ch.get("old"), None, ch.get("new"),
                                         members=members) for ch in entry.get("changes") or ()
                           if ch.get("path")]
        entry["changed_labels"] = [labels.label(p) or p for p in entry.get("changed_fields") or ()]
    return render_template(
        "pages/household.html", user=g.user, h=detail, history=history, record=record,
        conflicts=open_items, described=describe_conflicts(open_items, masked=True),
        members=[labels.member_name(m) for m in record.get("anggota") or ()],
        actors=_user_names([e.get("actor_id") for e in history]),
        names=_names([detail.get("kode_kelurahan"), (detail.get("kode_kelurahan") or "")[:8]]),
        back=_back_to_queue())


# --------------------------------------------------------------------------- the dashboard

class DashboardArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    kecamatan = fields.String(load_default=None, validate=validate.Regexp(KECAMATAN_CODE))
    putaran = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31))


def default_round(today: dt.date | None = None) -> Round | None:
    """The round the dashboard opens on: the open round in progress today (Jakarta's date) that
    has assignments, the latest started first; else any open round in progress; else the
    newest.

    A round created for next month, or created today and not yet assigned, is never chosen
    over the one the enumerators are working."""
    today = today or dt.datetime.now(WIB).date()
    running = db.session.scalars(
        select(Round).where(Round.starts_on <= today, Round.ends_on >= today,
                            Round.state == "open")
        .order_by(Round.starts_on.desc(), Round.id.desc())).all()
    for rnd in running:
        if db.session.scalar(select(Assignment.id).where(Assignment.round_id == rnd.id)
                             .limit(1)) is not None:
            return rnd
    if running:
        return running[0]
    return db.session.scalar(select(Round).order_by(Round.id.desc()).limit(1))


@bp.get("/dasbor")
@auth.page_login_required
def dashboard():
    from server.services.progress import progress
    from server.web import charts

    args, _ = _load_args(DashboardArgs(), request.args)
    if args["putaran"]:
        round_id = args["putaran"]
    else:
        rnd = default_round()
        round_id = rnd.id if rnd else None
    if args["kecamatan"]:
        data = progress(db.session, g.user, level="kelurahan", parent=args["kecamatan"],
                        round_id=round_id)
    else:
        data = progress(db.session, g.user, level="kecamatan", priority=True,
                        round_id=round_id)
    areas = data.get("areas") or []
    totals = data.get("totals") or {}
    rows = []
    for a in areas:
        rows.append({
            "area": a,
            "bar": charts.stacked_bar(
                [("Selesai", a.get("done", 0)), ("Dikunjungi", a.get("visited", 0)),
                 ("Dikembalikan", a.get("returned", 0))],
                a.get("assigned", 0), title=f"Kemajuan {a.get('name', a.get('code'))}",
                legend=False),
        })
    percent = charts.bar_chart([(a.get("name") or a["code"], a.get("percent_done") or 0.0)
                                for a in areas], title="Persen selesai per wilayah",
                               max_value=100, suffix="%")
    by_kind = sorted((totals.get("conflicts_open") or {}).items(), key=lambda kv: -kv[1])
    kinds_chart = charts.bar_chart([(KINDS.get(k, k), n) for k, n in by_kind],
                                   title="Konflik terbuka per jenis")
    overall = charts.stacked_bar(
        [("Selesai", totals.get("done", 0)), ("Dikunjungi", totals.get("visited", 0)),
         ("Dikembalikan", totals.get("returned", 0))],
        totals.get("assigned", 0), title="Kemajuan keseluruhan")
    parent_name = _names([args["kecamatan"]]).get(args["kecamatan"]) if args["kecamatan"] else None
    rounds = db.session.execute(select(Round.id, Round.name, Round.starts_on, Round.ends_on)
                                .order_by(Round.starts_on.desc(), Round.id.desc())).all()
    return render_template("pages/dashboard.html", user=g.user, data=data, rows=rows,
                           totals=totals, percent=percent, kinds_chart=kinds_chart,
                           overall=overall, kecamatan=args["kecamatan"],
                           parent_name=parent_name, priority=PRIORITY_KECAMATAN,
                           rounds=rounds, chosen_round=args["putaran"])
