"""``flask --app server bootstrap``: what ``make run`` does before serving.

It loads the areas and, on an empty database, creates demo users for the ten priority
kecamatan. Their random passwords are written once to ``instance/demo-logins.txt`` (mode 600)
and printed on every run, so there is never a default password in the code.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from server.extensions import db
from server.services import users as user_service
from sync.areas import PRIORITY_KECAMATAN, load_areas
from sync.db import write_transaction
from sync.models import Area

ENUMERATORS_PER_KECAMATAN = 2


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def create_demo_users(session) -> list[tuple[str, str, str]]:
    """An admin, a supervisor per priority kecamatan and two enumerators in each."""
    names = dict(session.execute(select(Area.code, Area.name)
                                 .where(Area.code.in_(PRIORITY_KECAMATAN))).all())
    logins = []

    def add(username, role, areas, full_name):
        password = secrets.token_urlsafe(9)
        user_service.create_user(session, username, role, password, areas=areas,
                                 full_name=full_name)
        logins.append((username, role, password))

    add("admin", "admin", [], "Admin Tapak")
    for code in PRIORITY_KECAMATAN:
        slug = _slug(names[code])
        add(f"spv-{slug}", "supervisor", [code], f"Supervisor {names[code]}")
        for i in range(1, ENUMERATORS_PER_KECAMATAN + 1):
            add(f"enum-{slug}-{i}", "enumerator", [code], f"Enumerator {names[code]} {i}")
    return logins


@click.command("bootstrap")
def cli():
    """Load areas; on an empty database create demo users; print how to log in."""
    with write_transaction(db.session):
        load_areas(db.session)
    logins_file = Path(current_app.instance_path) / "demo-logins.txt"
    if user_service.count_users(db.session) == 0:
        with write_transaction(db.session):
            logins = create_demo_users(db.session)
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Demo logins created by `flask --app server bootstrap`.\n")
            for username, role, password in logins:
                fh.write(f"{username}\t{role}\t{password}\n")
        click.echo(f"created {len(logins)} demo users")
    if logins_file.exists():
        click.echo(f"\nDemo logins ({logins_file}):")
        for line in logins_file.read_text().splitlines():
            if not line.startswith("#"):
                username, role, password = line.split("\t")
                click.echo(f"  {username:<34} {role:<11} {password}")
        click.echo("\nAPI: POST http://127.0.0.1:5000/api/v1/auth/token "
                   '{"username", "password", "device_id"}')
