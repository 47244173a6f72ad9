"""The scheduler's jobs, run by ``flask --app server scheduler run`` in a process of its own.

Never inside web workers: with several gunicorn workers each would run every job. Each job
opens an application context, so it has the app's settings and database session. Several
machines may each run the scheduler: :func:`run_scheduler` runs the jobs only while this process
holds the leader lock (``sync.leader``), and each job checks the lock again before it starts.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import signal
import threading

from apscheduler.events import EVENT_SCHEDULER_START
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

SKIPPED = "skipped: not the leader"  # what a job returns that did not run (record_job_runs)

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
    from sync.reconcile.config import from_settings
    from sync.reconcile.worker import drain

    with app.app_context():
        n = drain(db.session, worker="scheduler", config=from_settings(app.config),
                  max_seconds=50)
        db.session.remove()
    if n:
        log.info("reconciled", extra={"visits": n})
    return n


def escalate_conflicts(app: Flask) -> int:
    """Flag conflicts open longer than ESCALATE_AFTER_DAYS (listed at /progress/escalated)."""
    from server.extensions import db
    from sync.db import write_transaction
    from sync.progress import escalate

    with app.app_context():
        with write_transaction(db.session):
            n = escalate(db.session, dt.timedelta(days=app.config["ESCALATE_AFTER_DAYS"]))
        db.session.remove()
    log.info("conflicts escalated", extra={"escalated": n})
    return n


def backup(app: Flask) -> dict:
    """The backup ``backup run`` makes, whichever the database (``sync.backup.run``): the
    snapshot (SQLite's backup API, or ``pg_dump -Fc``), then the photos it names; pruned to
    BACKUP_KEEP_DAYS. On PostgreSQL without ``pg_dump`` here it is skipped (``skipped``)."""
    from server.extensions import db
    from server.services.photos import storage
    from sync import backup as backups

    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
        postgres = db.engine.dialect.name == "postgresql"
        photos = storage()
    try:
        result = backups.run(url, app.config["BACKUP_DIR"], app.config["BACKUP_KEEP_DAYS"],
                             photos)
    except backups.BackupError:
        if postgres and backups.pg_dump_path() is None:
            log.warning("backup skipped: pg_dump is not installed here")
            return {"skipped": "no pg_dump"}
        raise
    log.info("backup written", extra={"bytes": result["bytes"], "pruned": len(result["pruned"])})
    return result


def monitoring_drain(app: Flask) -> int:
    """Count again the families writers marked and left (imports, bulk tools): the worker and
    the review service count their own, a read counts at most a few thousand."""
    from server.extensions import db
    from sync import monitoring
    from sync.db import write_transaction

    with app.app_context():
        with write_transaction(db.session):
            n = monitoring.drain(db.session)
        db.session.remove()
    if n:
        log.info("monitoring counted", extra={"families": n})
    return n


def _progress_jobs(scheduler: BlockingScheduler, app: Flask) -> None:
    """The escalation and backup jobs (issue 8)."""
    scheduler.add_job(escalate_conflicts, "cron", minute=5, args=[app],
                      id="escalate_conflicts", name="escalate conflicts open too long (hourly)")
    scheduler.add_job(backup, "cron", hour=20, minute=0, args=[app],
                      id="backup", name="SQLite online backup (03:00 WIB)")
    scheduler.add_job(monitoring_drain, "interval", minutes=1, args=[app],
                      id="monitoring_drain", name="count marked families for monitoring")


def build_scheduler(app: Flask) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True,
                                                               "max_instances": 1})
    scheduler.add_job(photos_cleanup, "cron", hour=19, minute=30, args=[app],
                      id="photos_cleanup", name="remove unreferenced photos (02:30 WIB)")
    if app.config["SCHEDULER_RECONCILE"]:  # off while dedicated ``reconcile run`` workers run
        scheduler.add_job(reconcile, "interval", seconds=10, args=[app],
                          id="reconcile", name="reconcile queued visits")
    _progress_jobs(scheduler, app)
    from server.metrics import record_job_runs

    record_job_runs(scheduler, app)  # each run and failure into job_runs, read by /metrics
    return scheduler


def _led(func, lock, job_id: str):
    """``func`` run only if this process still holds the leader lock when the job starts: a
    process that lost it (a standby took over, PostgreSQL restarted) never starts a job."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        if not lock.confirm():
            log.info("job skipped: not the leader", extra={"job": job_id})
            return SKIPPED
        return func(*args, **kwargs)

    return run


class _Stop(Exception):
    """SIGTERM, raised in the main thread to leave the scheduler's loop."""


def _raise_stop(_signum, _frame):
    raise _Stop


def run_scheduler(app: Flask, scheduler: BlockingScheduler | None = None) -> None:
    """Run ``scheduler``'s jobs while this process leads, until SIGINT or SIGTERM.

    The scheduler starts paused; a thread polls the leader lock every SCHEDULER_RENEW_SECONDS
    and resumes it on taking the lock, pauses it on losing it. On stopping, the jobs in flight
    finish (the lock still renewed) before it is released, so a standby never runs one beside
    them. A job in flight when the lock is lost otherwise (the database unreachable for most of
    a lease) runs to its end: the reconcile job claims its visits, so it may meet another.
    """
    from server.extensions import db
    from sync.leader import follow, leader_lock

    scheduler = scheduler or build_scheduler(app)
    with app.app_context():
        engine = db.engine
    lock = leader_lock(engine, lease_seconds=app.config["SCHEDULER_LEASE_SECONDS"],
                       renew_seconds=app.config["SCHEDULER_RENEW_SECONDS"])
    for job in scheduler.get_jobs():
        job.modify(func=_led(job.func, lock, job.id))

    def pause() -> None:
        if scheduler.state != STATE_STOPPED:
            scheduler.pause()

    def resume() -> None:
        if scheduler.state != STATE_STOPPED:
            scheduler.resume()

    stop = threading.Event()
    started = threading.Event()
    poller = threading.Thread(target=lambda: started.wait() and follow(lock, resume, pause, stop),
                              name="leader-lock", daemon=True)
    scheduler.add_listener(lambda _event: started.set(), EVENT_SCHEDULER_START)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    log.info("scheduler waiting for the leader lock", extra={
        "lock": lock.name, "kind": lock.kind, "holder": lock.holder,
        "lease_s": lock.lease_seconds, "renew_s": lock.renew_seconds})
    poller.start()
    try:
        scheduler.start(paused=True)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started.set()
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True)  # the jobs in flight finish, the lock still renewed
        stop.set()
        poller.join()
        lock.release()
        signal.signal(signal.SIGTERM, previous)
