"""A published form, two enumerators with a family each (complete records whose registered
points lie inside their kelurahan), real JPEGs, and helpers that deliver visits and run the
reconciliation worker."""

import json

import pytest
from shapely.geometry import shape

from sync.areas import KELURAHAN_GEOJSON
from tests.push.conftest import field, jpeg, sha  # noqa: F401, F811  (fixtures, helpers)
from tests.reconcile.conftest import family


def _inside(code: str) -> tuple[float, float]:
    with open(KELURAHAN_GEOJSON) as fh:
        for feat in json.load(fh)["features"]:
            if code in json.dumps(feat["properties"]):
                p = shape(feat["geometry"]).representative_point()
                return round(p.y, 6), round(p.x, 6)
    raise LookupError(code)


def _renumber(rec: dict, digit: str) -> dict:
    """Other NIKs and KK number (same people otherwise), so families do not share them."""
    rec["no_kk"] = rec["no_kk"][:-1] + digit
    for m in rec["anggota"]:
        m["nik"] = m["nik"][:-2] + digit + m["nik"][-1]
    return rec


def worker_families() -> list[dict]:
    """The worker tests' three families: two kelurahan of 31.73.01, one of 31.72.01, each
    located inside its kelurahan and with NIKs of its own."""
    rows = []
    for hid, code, digit in (("KLG-A1", "31.73.01.1001", "5"), ("KLG-A2", "31.73.01.1002", "6"),
                             ("KLG-B1", "31.72.01.1001", "7")):
        lat, lon = _inside(code)
        rows.append(_renumber(family(id_keluarga=hid, kode_kelurahan=code, lat=lat, lon=lon),
                              digit))
    return rows


def write_extract(path, rows: list[dict]):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def extract(tmp_path):
    return write_extract(tmp_path / "extract.jsonl", worker_families())


@pytest.fixture
def reconcile(db):
    from sync.reconcile.worker import drain

    def run(**kw):
        return drain(db, worker="test", **kw)

    return run


@pytest.fixture
def deliver(field):  # noqa: F811
    """Push visits and upload their photos, as a phone would; return the push results."""

    def go(*pairs, who="ani"):
        response = field.push([v for v, _ in pairs], who=who)
        assert response.status_code == 200, response.get_json()
        for _, images in pairs:
            for data in images.values():
                assert field.upload(data, who=who).status_code in (200, 201)
        return response.get_json()["results"]

    return go


@pytest.fixture
def located(field, db):  # noqa: F811
    """A visit at the family's registered point (the fixture visit's point is elsewhere)."""
    from sync.models.registry import Keluarga

    def make(household_id="KLG-A1", **kw):
        v, images = field.visit(household_id, **kw)
        k = db.get(Keluarga, household_id)
        v["location"] = {"lat": k.lat, "lon": k.lon, "accuracy_m": 8}
        v["answers"]["lokasi"] = dict(v["location"])
        v["trunk_version"] = v["base_version"]  # each visit starts its own offline chain
        return v, images

    return make
