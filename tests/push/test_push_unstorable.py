"""Values no column can hold are the visit's own error, never a 500 (PostgreSQL above all).

PostgreSQL text refuses NUL, integers beyond the column overflow, and an aware time may have
no UTC equivalent; each failed the whole batch with a 500 before the checks in sync/ingest.py.
"""

import pytest


@pytest.mark.parametrize(("changes", "path", "code"), [
    ({"uuid": "abc\x00def-0000"}, "uuid", "nul_character"),
    ({"household_id": "KLG\x00A1"}, "household_id", "nul_character"),
    ({"form_id": "verifikasi\x00"}, "form_id", "nul_character"),
    ({"x\x00": 1}, "x\x00", "nul_character"),
    ({"form_version": 2**70}, "form_version", "unknown_form"),
    ({"started_at": "9999-12-31T23:59:59-14:00"}, "started_at", "out_of_range"),
])
def test_unstorable_visit_is_rejected_alone(field, changes, path, code):
    good, images = field.visit()
    for data in images.values():
        field.upload(data)
    bad, _ = field.visit(with_photos=False)
    bad.update(changes)
    response = field.push([bad, good])
    assert response.status_code == 200, response.get_data(as_text=True)
    first, second = response.get_json()["results"]
    assert first["status"] == "rejected"
    assert (path, code) in {(e["path"], e["code"]) for e in first["errors"]}
    assert second["status"] == "accepted"


def test_nul_in_an_answer_names_its_path(field):
    visit, _ = field.visit(with_photos=False)
    key = next(k for k, v in visit["answers"].items() if isinstance(v, str))
    visit["answers"][key] += "\x00"
    result = field.push([visit]).get_json()["results"][0]
    assert result["status"] == "rejected"
    assert result["errors"] == [{"path": f"answers.{key}", "code": "nul_character",
                                 "message": "Text must not contain NUL characters."}]


def test_nul_in_batch_id_is_a_bad_batch(field):
    visit, _ = field.visit(with_photos=False)
    response = field.push([visit], batch_id="batch\x00one")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_batch"
