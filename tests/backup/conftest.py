"""The push suite's field (form, supervisor, two enumerators with a family each, real JPEGs),
and an instance with some of everything on it: reconciled, decided and waiting visits."""

import pytest

from tests.push.conftest import field as _push_field

push_field = _push_field  # the push suite's fixture, under another name


@pytest.fixture
def loaded(push_field, client, db):
    """Three visits stored with their photos and reconciled (one then rejected by the
    supervisor), and one waiting for a photo never sent; returns the field with ``shas``."""
    from sync.reconcile.worker import drain

    f = push_field
    f.shas = []
    uuids = []
    for who, household in (("ani", "KLG-A1"), ("budi", "KLG-A2"), ("ani", "KLG-A1")):
        visit, images = f.visit(household)
        for data in images.values():
            assert f.upload(data, who=who).status_code in (200, 201)
        f.shas += [p["sha256"] for p in visit["photos"]]
        result = f.push([visit], who=who).get_json()["results"][0]
        assert result["status"] == "accepted", result
        uuids.append(visit["uuid"])
    drain(db, worker="test")
    decided = client.post(f"/api/v1/visits/{uuids[0]}/review", headers=f.headers["spv"],
                          json={"decision": "reject", "note": "foto buram"})
    assert decided.status_code == 200, decided.get_json()
    waiting, _images = f.visit("KLG-A2")
    result = f.push([waiting], who="budi").get_json()["results"][0]
    assert result["status"] == "waiting_photos", result
    f.awaited = [p["sha256"] for p in waiting["photos"]]
    f.uuids = uuids
    return f
