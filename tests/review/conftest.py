"""Review fixtures: pushed visits (real photos, through the API) put under review by hand.

``rv.under_review(...)`` does what reconciliation does to a visit with conflicts: stores
Conflict rows, sets the visit ``needs_review`` with its comparison, and the assignment's
review_state; tests that need the real worker use it directly.
"""

import pytest

from sync.db import utcnow
from sync.models.assignment import Assignment
from sync.models.conflict import Conflict
from sync.models.visit import Visit
from tests.push.conftest import field, jpeg, sha  # noqa: F401  (fixtures and helpers)

NIK = "3173014508850003"


@pytest.fixture
def rv(field, make_user, login, db):  # noqa: F811
    make_user("spv-utara", role="supervisor", areas=("31.72.01",))
    make_user("admin", role="admin")
    field.headers["spv-utara"] = login("spv-utara", device_id="laptop-2")
    field.headers["admin"] = login("admin", device_id="laptop-3")

    def pushed(household_id="KLG-A1", who="ani", **changes):
        visit, images = field.visit(household_id, **changes)
        for data in images.values():
            assert field.upload(data, who=who).status_code in (200, 201)
        response = field.push([visit], who=who)
        assert response.status_code == 200, response.get_json()
        return visit

    def under_review(visit_uuid, conflicts, proposed=None, status="needs_review"):
        visit = db.get(Visit, visit_uuid)
        kel = {"KLG-A1": "31.73.01.1001", "KLG-A2": "31.73.01.1002",
               "KLG-B1": "31.72.01.1001"}[visit.household_id]
        ids = []
        for i, spec in enumerate(conflicts):
            c = Conflict(household_id=visit.household_id, visit_uuid=visit_uuid,
                         round_id=visit.round_id, kecamatan=kel[:8], kelurahan=kel,
                         key=f"k{i}", kind=spec.get("kind", "field_mismatch"),
                         severity=spec.get("severity", "soft"), field=spec.get("field"),
                         registry_value=spec.get("registry_value"),
                         visit_value=spec.get("visit_value"),
                         base_value=spec.get("base_value"), message=spec.get("message", "m"),
                         detail=spec.get("detail"), record_version=1, status="open",
                         created_at=utcnow(), updated_at=utcnow())
            db.add(c)
            db.flush()
            ids.append(c.id)
        visit.status = status
        visit.comparison = {"confirmed": [], "proposed": proposed or {}, "concurrent": {},
                            "applied": {}, "skipped": []}
        visit.compared_version = visit.result_version = 1
        a = db.query(Assignment).filter_by(household_id=visit.household_id).one_or_none()
        if a is not None:
            a.review_state = "needs_review" if status == "needs_review" else "verified"
        db.commit()
        return ids

    field.pushed, field.under_review = pushed, under_review
    return field


def body(response):
    return response.get_json()
