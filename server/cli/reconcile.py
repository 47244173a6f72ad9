"""``flask --app server reconcile run [--once]``: the reconciliation worker."""

import time

import click
from flask.cli import AppGroup

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
    from sync.reconcile.config import from_settings
    from sync.reconcile.worker import drain, worker_name

    name, config = worker_name(), from_settings(current_app.config)
    while True:
        started = time.monotonic()
        n = drain(db.session, worker=name, limit=batch, config=config)
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
