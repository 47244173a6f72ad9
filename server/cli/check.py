"""``flask --app server check``: is this instance consistent? (after a restore, or any time)"""

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("check")
@with_appcontext
@click.option("--sample", type=int, default=5, show_default=True,
              help="Enumerators whose feed is pulled both ways.")
@click.option("--no-hash", "no_hash", is_flag=True,
              help="Only look for each photo's file; do not read and hash every photo.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Which enumerators are sampled.")
def cli(sample, no_hash, seed):
    """Row counts, counters against a recount, photos (present, SHA-256), the feed, and each
    visit's status; exit 1 on any problem."""
    from server.extensions import db
    from sync import check
    from sync.photos import LocalPhotoStorage

    report = check.run(db.session, LocalPhotoStorage(current_app.config["PHOTO_DIR"]),
                       sample=sample, verify_hash=not no_hash, seed=seed)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise SystemExit(1)
