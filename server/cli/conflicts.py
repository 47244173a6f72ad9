"""``flask --app server conflicts escalate``: the escalation job, run once by hand."""

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("conflicts", help="Conflicts: escalation of those open too long.")


@cli.command("escalate")
def escalate_command():
    """Flag conflicts open longer than ESCALATE_AFTER_DAYS."""
    from server.jobs import escalate_conflicts

    n = escalate_conflicts(current_app._get_current_object())
    click.echo(f"escalated {n} conflict(s) open longer than "
               f"{current_app.config['ESCALATE_AFTER_DAYS']} days")
