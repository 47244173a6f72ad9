"""The monitoring page (``/review/pemantauan``) and its CSV, for a pemantau, supervisors and
admins: aggregates only, the same figures as ``GET /api/v1/monitoring`` (small counts
suppressed, rates hidden), a choropleth map of the kelurahan drawn as inline SVG from the
shipped GeoJSON (Kepulauan Seribu in an inset), and the weekly series as an SVG line chart.

No script, no ``style`` attribute: colours are classes in ``monitoring.css`` (``.ch0``...``.ch4``
for the map's classes, ``.chs`` suppressed, ``.chn`` no figure; ``.ln0``...``.ln3`` lines).
Registered on the pages' blueprint (``server.web.views.bp``) before it is registered.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence

from flask import Response, g, render_template, request
from markupsafe import Markup, escape
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import select

from server.extensions import db
from server.services import monitoring as service
from server.services.exports import csv_stream
from server.svg import _num, _rings, _simplified
from server.web import auth
from server.web.views import _load_args, bp, default_round
from sync.areas import PRIORITY_KECAMATAN
from sync.models import Area, Round

KECAMATAN_CODE = r"^\d{2}\.\d{2}\.\d{2}$"
SERIBU = "31.01."  # Kabupaten Kepulauan Seribu: islands far offshore, drawn in an inset
CLASSES = 5        # .ch0 ... .ch4

# Map measures: key -> (label, how to read it from a presented area, is a rate).
MEASURES: dict[str, tuple[str, object, bool]] = {
    "terverifikasi": ("Keluarga terverifikasi", lambda a: a["verified"], False),
    "dikunjungi": ("Keluarga dikunjungi", lambda a: a["visited"], False),
    "dikembalikan": ("Keluarga dikembalikan", lambda a: a["returned"], False),
    "inklusi": ("Salah sasaran inklusi (ditandai) per 1.000 terverifikasi",
                lambda a: a["targeting_errors"]["inclusion_errors"]["flagged_per_1000"], True),
    "eksklusi": ("Salah sasaran eksklusi (ditandai) per 1.000 terverifikasi",
                 lambda a: a["targeting_errors"]["exclusion_errors"]["flagged_per_1000"], True),
    "meninggal": ("Anggota meninggal, bantuan masih diterima (ditandai) per 1.000",
                  lambda a: a["targeting_errors"]["deceased_with_aid"]["flagged_per_1000"], True),
    "pindah": ("Anggota pindah, bantuan masih diterima (ditandai) per 1.000",
               lambda a: a["targeting_errors"]["moved_with_aid"]["flagged_per_1000"], True),
}

ERROR_LABELS = {
    "inclusion_errors": "Inklusi (bantuan di atas ambang desil atau kriteria eksklusi Jakarta)",
    "exclusion_errors": "Eksklusi (desil 1–4 tanpa bantuan)",
    "deceased_with_aid": "Anggota meninggal, bantuan masih diterima",
    "moved_with_aid": "Anggota/keluarga pindah, bantuan masih diterima",
}
PROGRAMME_LABELS = {"pkh": "PKH", "bpnt": "BPNT/Sembako", "pbi_jk": "PBI-JK"}
MEMBER_LABELS = {"died": "Meninggal", "moved": "Pindah", "added": "Ditambahkan"}
WEEKLY_LABELS = {"visited": "Dikunjungi", "verified": "Terverifikasi",
                 "returned": "Dikembalikan", "flagged": "Ditandai salah sasaran"}


class MonitoringArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    kecamatan = fields.String(load_default=None, validate=validate.Regexp(KECAMATAN_CODE))
    putaran = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    ukuran = fields.String(load_default="terverifikasi", validate=validate.OneOf(MEASURES))


# --------------------------------------------------------------------------- the map


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",")
    return f"{value:,}".replace(",", ".")


def class_breaks(values: Sequence[float], classes: int = CLASSES) -> list[float]:
    """Upper bounds of equal-width classes from 0 to the largest value (``classes`` of them)."""
    top = max(values, default=0) or 1
    step = top / classes
    return [step * (i + 1) for i in range(classes)]


def _class_of(value, breaks: list[float]) -> str:
    if value is None:
        return "chn"
    if isinstance(value, str):
        return "chs"
    for i, upper in enumerate(breaks):
        if value <= upper:
            return f"ch{i}"
    return f"ch{len(breaks) - 1}"


def _projector(geoms, x0: float, y0: float, width: float, height: float):
    """A function (lon, lat) -> (x, y) fitting ``geoms`` into the box, equirectangular."""
    minx = min(g_.bounds[0] for g_ in geoms)
    miny = min(g_.bounds[1] for g_ in geoms)
    maxx = max(g_.bounds[2] for g_ in geoms)
    maxy = max(g_.bounds[3] for g_ in geoms)
    kx = math.cos(math.radians((miny + maxy) / 2))
    span_x, span_y = max((maxx - minx) * kx, 1e-6), max(maxy - miny, 1e-6)
    scale = min(width / span_x, height / span_y)
    off_x = x0 + (width - span_x * scale) / 2
    off_y = y0 + (height - span_y * scale) / 2

    def xy(lon: float, lat: float) -> str:
        return f"{_num(off_x + (lon - minx) * kx * scale)} {_num(off_y + (maxy - lat) * scale)}"

    return xy, span_y * scale, span_x * scale


@functools.lru_cache(maxsize=64)
def _outlines(codes: tuple[str, ...], x0: float, y0: float, width: float,
              height: float) -> tuple[dict[str, str], float]:
    """Each kelurahan's outline as SVG path data, fitted into the box, and the height drawn:
    the same for every request over the same areas, so it is computed once."""
    geoms = {code: _simplified(code) for code in codes}
    xy, drawn, _w = _projector(list(geoms.values()), x0, y0, width, height)
    return {code: " ".join("M" + " L".join(xy(lon, lat) for lon, lat in ring) + " Z"
                           for ring in _rings(geom))
            for code, geom in geoms.items()}, drawn


def _paths(items, outlines: Mapping[str, str]) -> list[str]:
    return [f'<path d="{outlines[code]}" class="kel {cls}" fill-rule="evenodd" '
            f'data-code="{escape(code)}"><title>{escape(name)}: {escape(text)}</title></path>'
            for code, name, cls, text in items]


def choropleth(areas: Sequence[Mapping], measure: str) -> Markup:
    """The kelurahan of ``areas`` (presented figures) coloured by ``measure``, an inset for
    Kepulauan Seribu, and the legend (HTML) below."""
    label, read, _is_rate = MEASURES[measure]
    values = [(a, read(a)) for a in areas]
    breaks = class_breaks([v for _a, v in values if isinstance(v, int | float)])
    main, islands = [], []
    for a, v in values:
        if _simplified(a["code"]) is None:
            continue
        item = (a["code"], a["name"], _class_of(v, breaks), _number(v))
        (islands if a["code"].startswith(SERIBU) else main).append(item)
    if not main and not islands:
        return Markup('<p class="muted">Batas wilayah tidak tersedia.</p>')
    width, pad = 320.0, 6.0
    box_w, box_h = (104.0, 120.0) if islands else (0.0, 0.0)
    parts = []
    height = box_h + 2 * pad
    if main:
        # The mainland right of the inset column, so that nothing is drawn over it.
        left = box_w + 2 * pad if islands else pad
        outlines, h = _outlines(tuple(i[0] for i in main), left, pad, width - left - pad, 260)
        height = max(height, h + 2 * pad)
        parts += _paths(main, outlines)
    if islands:
        # Kepulauan Seribu lies far to the north-west: its own framed box, top left.
        inset, _ih = _outlines(tuple(i[0] for i in islands), pad + 4, pad + 18,
                               box_w - 8, box_h - 24)
        parts.insert(0, f'<g class="inset"><rect x="{_num(pad)}" y="{_num(pad)}" '
                        f'width="{_num(box_w)}" height="{_num(box_h)}" class="inset-box"/>'
                        f'<text x="{_num(pad + 5)}" y="{_num(pad + 12)}" class="inset-label">'
                        f'Kep. Seribu (sisipan)</text>'
                        + "".join(_paths(islands, inset)) + "</g>")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {_num(height)}" '
           f'class="choropleth" role="img" aria-labelledby="map-title">'
           f'<title id="map-title">Peta kelurahan: {escape(label)}</title>'
           + "".join(parts) + "</svg>")
    legend = ['<ul class="legend" id="map-legend">']
    low = 0.0
    for i, upper in enumerate(breaks):
        legend.append(f'<li><span class="sw ch{i}"></span>{escape(_number(low))}–'
                      f'{escape(_number(round(upper, 1)))}</li>')
        low = round(upper, 1)
    legend.append('<li><span class="sw chs"></span>&lt; 5 (disembunyikan)</li>')
    legend.append('<li><span class="sw chn"></span>tidak ditampilkan (&lt; 20 terverifikasi) '
                  'atau tanpa data</li></ul>')
    return Markup(svg + "".join(legend))


# --------------------------------------------------------------------------- the line chart


MARKED_WEEKS = 13  # up to a quarter of weeks, each point is a mark with its number


def line_chart(weeks: Sequence[Mapping], keys: Sequence[str] = tuple(WEEKLY_LABELS)) -> Markup:
    """One line per key over the ISO weeks; a suppressed point (``"< 5"``) is drawn as a hollow
    mark on the baseline and breaks the line. Up to ``MARKED_WEEKS`` weeks every point is a
    mark with its number as a tooltip (longer series would weigh more than the page may).
    The legend is HTML."""
    if not weeks:
        return Markup('<p class="muted">Belum ada putaran.</p>')
    width, height, left, right, top, bottom = 320, 160, 30, 8, 8, 22
    values = [w[k] for w in weeks for k in keys if isinstance(w[k], int)]
    ymax = max(values, default=0) or 5
    step = (width - left - right) / max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return left + i * step if len(weeks) > 1 else left + (width - left - right) / 2

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / ymax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'class="linechart" role="img" aria-labelledby="weekly-title">'
             f'<title id="weekly-title">Angka mingguan sejak putaran dimulai</title>',
             f'<line x1="{left}" y1="{_num(y(0))}" x2="{width - right}" y2="{_num(y(0))}" '
             f'class="axis"/>',
             f'<text x="{left - 4}" y="{_num(y(ymax) + 4)}" class="tick" text-anchor="end">'
             f'{escape(_number(ymax))}</text>',
             f'<text x="{left - 4}" y="{_num(y(0) + 4)}" class="tick" text-anchor="end">0</text>']
    label_every = max(1, math.ceil(len(weeks) / 6))
    for i, w in enumerate(weeks):
        if i % label_every == 0:
            parts.append(f'<text x="{_num(x(i))}" y="{height - 6}" class="tick" '
                         f'text-anchor="middle">{escape(w["week"][5:])}</text>')
    for n, key in enumerate(keys):
        run: list[str] = []
        segments: list[list[str]] = [run]
        marks = []
        for i, w in enumerate(weeks):
            v = w[key]
            if isinstance(v, int):
                run.append(f"{_num(x(i))},{_num(y(v))}")
                if len(weeks) > MARKED_WEEKS:
                    continue  # a long series: the line alone; the table has the numbers
                marks.append(f'<circle cx="{_num(x(i))}" cy="{_num(y(v))}" r="2.5" '
                             f'class="pt ln{n}"><title>{escape(WEEKLY_LABELS[key])} '
                             f'{escape(w["week"])}: {v}</title></circle>')
            else:
                run = []
                segments.append(run)
                marks.append(f'<circle cx="{_num(x(i))}" cy="{_num(y(0))}" r="2.5" '
                             f'class="pt sup ln{n}"><title>{escape(WEEKLY_LABELS[key])} '
                             f'{escape(w["week"])}: &lt; 5</title></circle>')
        for seg in segments:
            if len(seg) > 1:
                parts.append(f'<polyline points="{" ".join(seg)}" class="line ln{n}"/>')
        parts.extend(marks)
    parts.append("</svg>")
    legend = ['<ul class="legend" id="weekly-legend">']
    for n, key in enumerate(keys):
        legend.append(f'<li><span class="sw ln{n}"></span>{escape(WEEKLY_LABELS[key])}</li>')
    legend.append('<li><span class="sw sup-sw"></span>titik kosong: &lt; 5</li></ul>')
    return Markup("".join(parts) + "".join(legend))


# --------------------------------------------------------------------------- the views


def _round_id(args) -> int | None:
    if args["putaran"]:
        return args["putaran"]
    rnd = default_round()
    return rnd.id if rnd else None


def _table(args, round_id: int | None) -> dict:
    """The table's figures: the priority kecamatan, or one kecamatan's kelurahan."""
    if args["kecamatan"]:
        return service.monitoring(db.session, g.user, "kelurahan", args["kecamatan"], round_id)
    return service.monitoring(db.session, g.user, "kecamatan", None, round_id, priority=True)


@bp.get("/pemantauan")
@auth.page_login_required(roles=auth.MONITOR_ROLES)
def monitoring():
    args, _ = _load_args(MonitoringArgs(), request.args)
    if args["ukuran"] is None:
        args["ukuran"] = "terverifikasi"
    round_id = _round_id(args)
    data = _table(args, round_id)
    map_kecamatan = [args["kecamatan"]] if args["kecamatan"] else [a["code"] for a in data["areas"]]
    mapped = service.present(service.raw_kelurahan_of(db.session, g.user, map_kecamatan,
                                                      round_id))
    parent_name = None
    if args["kecamatan"]:
        parent_name = db.session.scalar(select(Area.name).where(Area.code == args["kecamatan"]))
    rounds = db.session.execute(select(Round.id, Round.name, Round.starts_on, Round.ends_on)
                                .order_by(Round.starts_on.desc(), Round.id.desc())).all()
    return render_template(
        "pages/monitoring.html", user=g.user, data=data, mapped=mapped,
        map_svg=choropleth(mapped["areas"], args["ukuran"]),
        measure=args["ukuran"], measures={k: v[0] for k, v in MEASURES.items()},
        measure_value=MEASURES[args["ukuran"]][1],
        weekly_svg=line_chart(data["totals"]["weekly"]), kecamatan=args["kecamatan"],
        parent_name=parent_name, rounds=rounds, chosen_round=args["putaran"],
        error_labels=ERROR_LABELS, programme_labels=PROGRAMME_LABELS,
        member_labels=MEMBER_LABELS, weekly_labels=WEEKLY_LABELS, num=_number,
        priority=PRIORITY_KECAMATAN)


@bp.get("/pemantauan.csv")
@auth.page_login_required(roles=auth.MONITOR_ROLES)
def monitoring_csv():
    args, _ = _load_args(MonitoringArgs(), request.args)
    data = _table(args, _round_id(args))
    stamp = dt.date.today().isoformat()
    response = Response(csv_stream(list(service.CSV_COLUMNS), service.csv_rows(data)),
                        mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="pemantauan-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
