"""The scheduler's job runs, recorded in the database (migration 0019) for ``/metrics``.

The scheduler is a process of its own, maybe on another machine, and restarts; a web worker
answering a scrape reads these rows instead (``server.metrics.DatabaseCollector``). One row a
job, counts that only grow: Prometheus' ``increase()`` works on them as on any counter.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import BigInteger, String
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from sync.db import Base, UTCDateTime, utcnow, write_transaction

log = logging.getLogger("tapak.jobs")


class JobRun(Base):
    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The exception's class only: a message may quote a row's personal data.
    last_error: Mapped[str | None] = mapped_column(String(100))


def record_run(session, job_id: str, error: BaseException | None) -> None:
    """Count one run of ``job_id`` (a failure when ``error`` is given), in its own transaction."""
    now = utcnow()
    with write_transaction(session):
        row = session.get(JobRun, job_id)
        if row is None:
            row = JobRun(job_id=job_id, runs=0, failures=0)
            session.add(row)
        row.runs += 1
        row.last_run_at = now
        if error is None:
            row.last_success_at = now
        else:
            row.failures += 1
            row.last_failure_at = now
            row.last_error = type(error).__name__[:100]


def record_job_runs(scheduler, app) -> None:
    """Have ``scheduler`` (APScheduler) record every run of its jobs, failed or not."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    from server.extensions import db
    from server.jobs import SKIPPED

    def listener(event) -> None:
        if getattr(event, "retval", None) == SKIPPED:
            return  # a standby's job that found it no longer leads: not a run
        try:
            with app.app_context():
                record_run(db.session, event.job_id, event.exception)
                db.session.remove()
        except SQLAlchemyError as exc:  # the database may be restarting: lose one count
            log.warning("job run not recorded", extra={"job": event.job_id,
                                                       "error": type(exc).__name__})

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
