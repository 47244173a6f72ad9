"""``flask --app server reconcile run [--once]``: the reconciliation worker."""

import logging
import time

import click
from flask.cli import AppGroup

log = logging.getLogger("tapak.reconcile")

cli = AppGroup("reconcile", help="Reconcile queued visits with the verified record.")


@cli.command("run")
@click.option("--once", is_flag=True, help="Empty the queue once, then stop.")
@click.option("--batch", default=500, show_default=True,
              help="Visits reconciled per transaction (the worker's BATCH).")
@click.option("--idle", default=2.0, show_default=True,
              help="Seconds to wait when the queue is empty (without --once).")
def run_command(once: bool, batch: int, idle: float):
    """Claim queued visits and reconcile them; several workers may run side by side."""
    from flask import current_app

    from server.extensions import db
    from sync.db import database_unreachable
    from sync.privacy import exception_summary
    from sync.reconcile.config import from_settings
    from sync.reconcile.worker import drain, worker_name

    name, config = worker_name(), from_settings(current_app.config)
    outage = 0  # consecutive drains the database did not answer
    while True:
        started = time.monotonic()
        try:
            n = drain(db.session, worker=name, limit=batch, config=config)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            # PostgreSQL restarting or out of reach: wait (1 s, doubling to 30 s) and go on,
            # rather than exit and leave the queue to a supervisor process.
            db.session.remove()
            delay = min(30.0, 2.0 ** outage)
            outage += 1
            log.warning("database unreachable, retrying",
                        extra={"worker": name, "retry_in_s": delay, **exception_summary(exc)})
            time.sleep(delay)
            continue
        if outage:
            log.info("database reachable again", extra={"worker": name, "after": outage})
            outage = 0
        db.session.remove()
        if n:
            click.echo(f"reconciled {n} visits in {time.monotonic() - started:.1f} s")
        if once:
            return
        time.sleep(idle)


@cli.command("status")
def status_command():
    """Visits by status."""
    from sqlalchemy import func, select

    from server.extensions import db
    from sync.models import Visit

    for status, n in db.session.execute(select(Visit.status, func.count())
                                        .group_by(Visit.status).order_by(Visit.status)):
        click.echo(f"{status}: {n}")
