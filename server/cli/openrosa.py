"""``flask --app server openrosa ...``: device keys and Collect's settings QR code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.extensions import db
from server.models import User

cli = AppGroup("openrosa", help="ODK Collect / KoboCollect: device keys and settings QR codes.")


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"No user {username!r}.")
    if user.role != "enumerator":
        raise click.ClickException(f"{username} is a {user.role}: only enumerators get a key.")
    return user


@cli.command("qr")
@click.argument("username")
@click.option("--url", "base_url", default=lambda: os.environ.get("PUBLIC_URL",
                                                                  "http://127.0.0.1:5000"),
              show_default="$PUBLIC_URL or http://127.0.0.1:5000",
              help="The server's address as phones reach it.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG file to write (default: instance/openrosa-<user>.png).")
def qr(username: str, base_url: str, out: Path | None) -> None:
    """Make a new device key for USERNAME (revoking the old one) and write Collect's settings
    QR code as a PNG; print the settings JSON (which holds the key: keep it private)."""
    from flask import current_app

    from server.openrosa import keys
    from server.openrosa import qr as qrcode

    user = _user(username)
    token = keys.new_key(db.session, user)
    settings = qrcode.settings(base_url, token, username)
    out = out or Path(current_app.instance_path) / f"openrosa-{username}.png"
    out.write_bytes(qrcode.png(settings))
    os.chmod(out, 0o600)
    click.echo(json.dumps(settings, indent=2))
    click.echo(f"QR code written to {out}; earlier keys of {username} are revoked.", err=True)


@cli.command("revoke")
@click.argument("username")
def revoke(username: str) -> None:
    """Revoke every device key of USERNAME: Collect then gets 403 until a new QR code."""
    from server.openrosa import keys

    count = keys.revoke_keys(db.session, _user(username))
    click.echo(f"{count} key(s) of {username} revoked.")
