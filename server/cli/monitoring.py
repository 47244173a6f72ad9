"""``flask --app server monitoring check|drain|rebuild``: the monitoring counters."""

import click
from flask.cli import AppGroup

cli = AppGroup("monitoring", help="Monitoring counters (docs/monitoring.md).")


@cli.command("check")
def check_command():
    """Count what is marked, then recount from the tables; exit 1 when a counter disagrees."""
    from server.extensions import db
    from sync import monitoring
    from sync.db import write_transaction

    with write_transaction(db.session):
        monitoring.drain(db.session)
    diff = monitoring.check(db.session)
    for (round_id, kelurahan, week, metric), (have, want) in diff.items():
        click.echo(f"round {round_id} {kelurahan} {week or 'round'} {metric}: "
                   f"counter {have}, recount {want}")
    if diff:
        raise SystemExit(1)
    click.echo("counters agree with a recount")


@cli.command("drain")
def drain_command():
    """Count again every family a writer marked (the scheduler does this every minute)."""
    from server.extensions import db
    from sync import monitoring
    from sync.db import write_transaction

    with write_transaction(db.session):
        n = monitoring.drain(db.session)
    click.echo(f"{n} families counted again")


@cli.command("rebuild")
def rebuild_command():
    """Throw the counters away and count every (round, family) pair from the tables."""
    from server.extensions import db
    from sync import monitoring
    from sync.db import write_transaction

    with write_transaction(db.session):
        n = monitoring.rebuild(db.session)
    click.echo(f"{n} families counted")
