"""``flask --app server backup run|restore``: snapshots with their photos, and putting them back.

The work is in ``sync.backup``; see docs/deploy.md, "Backup and restore".
"""

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("backup", help="Backups of the database and the photos, and restores.")


def _storage(root: str):
    from sync.photos import LocalPhotoStorage

    return LocalPhotoStorage(root)


@cli.command("run")
def run_command():
    """Snapshot the database into BACKUP_DIR (SQLite: online backup API; PostgreSQL: pg_dump
    -Fc), then copy the photos it names that the backup lacks, with a manifest of hashes;
    prune snapshots older than BACKUP_KEEP_DAYS."""
    from server.jobs import backup
    from sync.backup import BackupError

    try:
        result = backup(current_app._get_current_object())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if "skipped" in result:
        click.echo("PostgreSQL: pg_dump is not installed here; back the database up with "
                   "pg_dump -Fc (docs/deploy.md, Backup and restore)")
        return
    photos = result["photos"]
    tool = "pg_dump " if result["path"].endswith(".dump") else ""
    click.echo(f"{tool}snapshot {result['path']} ({result['bytes']} bytes); photos: "
               f"{photos['named']} named, {photos['copied']} copied "
               f"({photos['copied_bytes']} bytes), {photos['already']} already backed up; "
               f"manifest {photos['manifest']}; pruned {len(result['pruned'])}")
    if photos["missing"] or photos["corrupt"]:
        click.echo(f"warning: {len(photos['missing'])} photo(s) missing and "
                   f"{len(photos['corrupt'])} corrupt in PHOTO_DIR were not backed up "
                   "(run flask --app server check)", err=True)
        raise SystemExit(1)


def _target(into: str | None, photo_dir: str | None) -> tuple[str, str]:
    """(database URL, photo folder) of the instance to restore into."""
    from config import normalise_database_url
    from server.extensions import db

    if into is None:
        url = db.engine.url.render_as_string(hide_password=False)
        return url, photo_dir or current_app.config["PHOTO_DIR"]
    if "://" in into:
        if photo_dir is None:
            raise click.UsageError("--into a DATABASE_URL needs --photo-dir")
        return normalise_database_url(into), photo_dir
    instance = Path(into).resolve()
    return f"sqlite:///{instance / 'tapak.db'}", photo_dir or str(instance / "photos")


@cli.command("restore")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False))
@click.option("--into", default=None,
              help="An instance folder (tapak.db and photos/ inside) or a DATABASE_URL; "
                   "default: this instance. Stop its web workers and scheduler first.")
@click.option("--photo-dir", default=None, help="Where the photos go (default: PHOTO_DIR, or "
                                                "photos/ in the --into folder).")
@click.confirmation_option(prompt="The target database is replaced. Continue?")
def restore_command(snapshot, into, photo_dir):
    """Restore a snapshot (tapak-YYYYMMDD.db, or .dump with pg_restore) and its photos, check
    each photo's SHA-256 against the manifest, and start a new feed epoch: every phone pulls
    again and sends back the visits the snapshot lacks."""
    from sync import backup

    url, photos = _target(into, photo_dir)
    try:
        result = backup.restore(snapshot, url, _storage(photos))
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"database restored ({result['database_bytes']} bytes); photos: "
               f"{result['restored']} restored, {result['kept']} already there, "
               f"{len(result['missing'])} missing, {len(result['corrupt'])} corrupt; "
               f"feed epoch is now {result['epoch']}")
    for sha in result["corrupt"]:
        click.echo(f"corrupt in the backup (SHA-256 differs from the manifest): {sha}", err=True)
    for sha in result["missing"]:
        click.echo(f"missing from the backup: {sha}", err=True)
    if result["missing"] or result["corrupt"]:
        raise SystemExit(1)
    click.echo("next: flask --app server check")
