"""Inline SVG maps of a kelurahan, drawn from the shipped boundaries (no map tiles).

``kelurahan_map_svg`` draws the kelurahan polygon (simplified), the visit's GPS point with its
accuracy circle, and the registered point, in a small viewBox suitable for a 360 px phone.
Longitude and latitude are projected equirectangularly around the map's centre (metres at
Jakarta's scale: a few km, so the distortion is negligible). Pure: the same input gives the same
text; every attribute value is a number or a fixed string, and the title is escaped.
"""

from __future__ import annotations

import functools
import math
from html import escape

from shapely.geometry import MultiPolygon, Polygon

from sync.reconcile.rules import KELURAHAN_GEOJSON, area_index

WIDTH = 320
PAD = 12
M_PER_DEG = 111_320.0
# Douglas-Peucker tolerance in degrees (~5 m): the drawn outline keeps its shape, loses bulk.
SIMPLIFY_DEG = 0.00005


@functools.cache
def _simplified(code: str):
    entry = area_index(KELURAHAN_GEOJSON).get(code)
    if entry is None:
        return None
    geom = entry[0].simplify(SIMPLIFY_DEG, preserve_topology=True)
    return geom if not geom.is_empty else entry[0]


def _rings(geom) -> list:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    out = []
    for poly in polys:
        if isinstance(poly, Polygon):
            out.append(list(poly.exterior.coords))
            out.extend(list(r.coords) for r in poly.interiors)
    return out


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value == value else "0"


def kelurahan_map_svg(code: str, point: tuple[float, float] | None = None,
                      accuracy_m: float | None = None,
                      registered: tuple[float, float] | None = None,
                      line: bool = False) -> str:
    """SVG of kelurahan ``code`` with the visit's ``point`` (lat, lon) and its accuracy circle,
    and the ``registered`` (lat, lon) point; both points are kept in view. ``line``: a dashed
    line between the two points (the distance the conflict page states)."""
    geom = _simplified(code)
    lons: list[float] = []
    lats: list[float] = []
    if geom is not None:
        minx, miny, maxx, maxy = geom.bounds
        lons += [minx, maxx]
        lats += [miny, maxy]
    points = [p for p in (point, registered) if p is not None and None not in p]
    for lat, lon in points:
        lats.append(lat)
        lons.append(lon)
    title = f"Peta kelurahan {code}"
    if not lats:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 40" role="img">'
                f'<title>{escape(title)}</title><text x="8" y="24" font-size="12">'
                f'Batas wilayah tidak tersedia</text></svg>')
    lat0 = (min(lats) + max(lats)) / 2
    kx = math.cos(math.radians(lat0))
    span_x = max((max(lons) - min(lons)) * kx, 1e-5)
    span_y = max(max(lats) - min(lats), 1e-5)
    # Keep a 3:2 (or taller) box; scale so that the larger span fills it.
    inner = WIDTH - 2 * PAD
    scale = inner / max(span_x, span_y * 1.5)
    height = round(span_y * scale + 2 * PAD)
    height = max(height, 120)
    off_x = PAD + (inner - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2
    x0, y1 = min(lons), max(lats)

    def xy(lon: float, lat: float) -> tuple[str, str]:
        return _num(off_x + (lon - x0) * kx * scale), _num(off_y + (y1 - lat) * scale)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" role="img" class="peta-kelurahan">',
             f'<title>{escape(title)}</title>']
    if geom is not None:
        d = []
        for ring in _rings(geom):
            pts = [" ".join(xy(lon, lat)) for lon, lat in ring]
            d.append("M" + " L".join(pts) + " Z")
        parts.append(f'<path d="{" ".join(d)}" fill="#eef3f8" stroke="#35608c" '
                     f'stroke-width="1.5" fill-rule="evenodd" class="batas"/>')
    if line and registered is not None and point is not None and None not in registered \
            and None not in point:
        (ax, ay), (bx, by) = xy(registered[1], registered[0]), xy(point[1], point[0])
        parts.append(f'<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by}" stroke="#5b6577" '
                     f'stroke-width="1.5" stroke-dasharray="4 3" class="jarak"/>')
    if registered is not None and None not in registered:
        x, y = xy(registered[1], registered[0])
        parts.append(f'<rect x="{_num(float(x) - 4)}" y="{_num(float(y) - 4)}" width="8" '
                     f'height="8" fill="#2e7d32" class="titik-terdaftar">'
                     f'<title>Titik terdaftar</title></rect>')
    if point is not None and None not in point:
        x, y = xy(point[1], point[0])
        if accuracy_m:
            radius = max(float(accuracy_m) / M_PER_DEG * scale, 2.0)
            parts.append(f'<circle cx="{x}" cy="{y}" r="{_num(radius)}" fill="#d32f2f" '
                         f'fill-opacity="0.15" stroke="#d32f2f" stroke-width="1" '
                         f'class="akurasi"/>')
        parts.append(f'<circle cx="{x}" cy="{y}" r="4" fill="#d32f2f" class="titik-kunjungan">'
                     f'<title>Titik kunjungan</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
