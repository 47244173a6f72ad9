"""``flask --app server photos cleanup``: what the scheduler runs nightly, on demand."""

import click
from flask import current_app
from flask.cli import AppGroup

from server.extensions import db

cli = AppGroup("photos", help="Stored photos.")


@cli.command("cleanup")
@click.option("--grace-days", type=float, default=None,
              help="Default: PHOTO_GRACE_DAYS.")
def cleanup_command(grace_days):
    """Remove photos no visit references after the grace period."""
    from server.services.photos import cleanup

    days = current_app.config["PHOTO_GRACE_DAYS"] if grace_days is None else grace_days
    result = cleanup(db.session, days * 86400)
    click.echo(f"removed {result['removed']} photo(s), {result['temp_files']} temp file(s)")
