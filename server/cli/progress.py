"""``flask --app server progress check``: compare the counters with a full recount."""

import click
from flask.cli import AppGroup

cli = AppGroup("progress", help="Progress counters.")


@cli.command("check")
def check_command():
    """Recount from the source tables; exit 1 when a counter disagrees."""
    from server.extensions import db
    from sync.progress import differences

    diff = differences(db.session)
    for (round_id, kelurahan, metric), (have, want) in sorted(diff.items()):
        click.echo(f"round {round_id} {kelurahan} {metric}: counter {have}, recount {want}")
    if diff:
        raise SystemExit(1)
    click.echo("counters agree with a recount")
