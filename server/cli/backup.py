"""``flask --app server backup run``: the nightly SQLite backup, run once by hand."""

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("backup", help="Online backups of a SQLite database.")


@cli.command("run")
def run_command():
    """Write instance/backups/tapak-YYYYMMDD.db and prune copies older than BACKUP_KEEP_DAYS."""
    from server.jobs import backup

    result = backup(current_app._get_current_object())
    if "skipped" in result:
        click.echo("PostgreSQL: nothing done, back it up with pg_dump")
        return
    click.echo(f"backup {result['path']} ({result['bytes']} bytes); "
               f"pruned {len(result['pruned'])}")
