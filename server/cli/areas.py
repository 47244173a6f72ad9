"""``flask --app server areas load``: load Jakarta's areas from data/wilayah_dki.csv."""

import click
from flask.cli import AppGroup

from server.extensions import db
from sync.areas import load_areas
from sync.db import write_transaction

cli = AppGroup("areas", help="Administrative areas.")


@cli.command("load")
def load_command():
    """Insert or update the province, kota, kecamatan and kelurahan of DKI Jakarta."""
    with write_transaction(db.session):
        counts = load_areas(db.session)
    click.echo(f"areas: {counts['inserted']} inserted, {counts['updated']} updated, "
               f"{counts['total']} in all")
