"""The scheduler's jobs, run by ``flask --app server scheduler run`` in a process of its own.

Never inside web workers: with several gunicorn workers each would run every job. Each job
opens an application context, so it has the app's settings and database session.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

log = logging.getLogger("tapak.jobs")


def photos_cleanup(app: Flask) -> dict:
    """Remove photos no visit references after the grace period, and stale upload temps."""
    from server.extensions import db
    from server.services.photos import cleanup

    with app.app_context():
        result = cleanup(db.session, app.config["PHOTO_GRACE_DAYS"] * 86400)
        db.session.remove()
    log.info("photos cleanup", extra=result)
    return result


def reconcile(app: Flask) -> int:
    """Reconcile what the queue holds (a separate ``reconcile run`` worker may share it)."""
    from server.extensions import db
    from sync.reconcile.worker import drain

    with app.app_context():
        n = drain(db.session, worker="scheduler", max_seconds=50)
        db.session.remove()
    if n:
        log.info("reconciled", extra={"visits": n})
    return n


def build_scheduler(app: Flask) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True,
                                                               "max_instances": 1})
    scheduler.add_job(photos_cleanup, "cron", hour=19, minute=30, args=[app],
                      id="photos_cleanup", name="remove unreferenced photos (02:30 WIB)")
    scheduler.add_job(reconcile, "interval", seconds=10, args=[app],
                      id="reconcile", name="reconcile queued visits")
    return scheduler
