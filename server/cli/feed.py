"""``flask --app server feed compact|reset``: maintenance of the pull feed."""

import datetime as dt

import click
from flask.cli import AppGroup

from server.extensions import db
from sync import feed
from sync.db import write_transaction

cli = AppGroup("feed", help="The per-enumerator change feed.")


@cli.command("compact")
@click.option("--days", type=int, default=30, show_default=True,
              help="Purge delete entries older than this; older cursors then get 410.")
def compact_command(days):
    """Purge old tombstones; phones with older cursors start again."""
    with write_transaction(db.session):
        n = feed.compact(db.session, dt.timedelta(days=days))
    click.echo(f"purged {n} delete entries")


@cli.command("reset")
@click.confirmation_option(prompt="Every phone will download its work again. Continue?")
def reset_command():
    """Start a new epoch: every cursor gets 410 (use after restoring a backup)."""
    with write_transaction(db.session):
        epoch = feed.reset(db.session)
    click.echo(f"feed epoch is now {epoch}")
