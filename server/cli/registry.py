"""``flask --app server registry import PATH``: load a DTSEN extract into the registry."""

import json

import click
from flask import current_app
from flask.cli import AppGroup

from server.extensions import db
from sync.importer import ExtractError, import_extract

cli = AppGroup("registry", help="The DTSEN registry: import extracts.")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--label", default=None, help="A name for this import, e.g. 'DTSEN 2025-06'.")
@click.option("--rejects", type=click.Path(dir_okay=False), default=None,
              help="Reject file (JSON Lines); default beside the extract.")
@click.option("--partial", is_flag=True,
              help="The extract covers only some areas: do not mark absent families removed.")
@click.option("--batch-size", type=click.IntRange(1, 20_000), default=2000, show_default=True)
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: on, off under tests).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_command(path, label, rejects, partial, batch_size, progress, as_json):
    """Import a JSON Lines file, or a directory with keluarga.csv and anggota.csv."""
    if progress is None:
        progress = not current_app.testing
    try:
        summary = import_extract(db.session, path, label=label, rejects=rejects,
                                 partial=partial, batch_size=batch_size, progress=progress)
    except ExtractError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
        return
    click.echo(
        f"import {summary.import_id}: read {summary.read}, inserted {summary.inserted}, "
        f"updated {summary.updated}, unchanged {summary.unchanged}, "
        f"rejected {summary.rejected}, removed {summary.removed} "
        f"in {summary.seconds:.1f} s ({summary.members} members written, "
        f"{summary.flagged} families flagged by identity checks)"
    )
    if summary.reject_path:
        click.echo(f"rejects: {summary.reject_path}")
