"""Two supervisors deciding the same thing at once: one wins, the other gets 409."""

import threading

from sqlalchemy import func, select

from sync.models.review import ReviewDecision
from tests.review.test_conflicts import scenario


def race(app, requests):
    """Send the requests from threads released together; return their status codes."""
    barrier = threading.Barrier(len(requests))
    codes = [None] * len(requests)

    def run(i, path, headers, payload):
        client = app.test_client()
        barrier.wait()
        codes[i] = client.post(path, headers=headers, json=payload).status_code

    threads = [threading.Thread(target=run, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(codes)


def test_concurrent_resolves_of_one_conflict(rv, app, db):
    _visit, ids = scenario(rv)
    db.commit()
    path = f"/api/v1/conflicts/{ids[0]}/resolve"
    codes = race(app, [(path, rv.headers["spv"], {"decision": "accept_visit"}),
                       (path, rv.headers["admin"], {"decision": "keep_registry"})])
    assert codes == [200, 409]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(ReviewDecision)) == 1


def test_concurrent_reviews_of_one_visit(rv, app, db):
    visit, ids = scenario(rv)
    db.commit()
    path = f"/api/v1/visits/{visit['uuid']}/review"
    codes = race(app, [(path, rv.headers["spv"], {"decision": "return", "note": "a"}),
                       (path, rv.headers["admin"], {"decision": "reject", "note": "b"})])
    assert codes == [200, 409]
    db.expire_all()
    visit_rows = db.scalars(select(ReviewDecision.action).where(
        ReviewDecision.conflict_id.is_(None))).all()
    assert len(visit_rows) == 1
