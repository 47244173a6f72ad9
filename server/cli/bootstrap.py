"""``flask --app server bootstrap``: what ``make run`` does before serving.

It loads the areas, publishes the shipped forms, and, on an empty database, creates demo
users for the ten priority kecamatan, generates and imports a demo extract of 5,000 families
(seed 2026) inside their areas, assigns them to the demo enumerators in a running round, and
plays a few days of field work (``sync.simulator``: honest, changed and fabricated visits with
real photos, pushed and reconciled) so that the review queue and the dashboard have something to
show.
The users' random passwords are written once to ``instance/demo-logins.txt`` (mode 600) and
printed on every run, so there is never a default password in the code.
"""

from __future__ import annotations

import logging
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
DEMO_HOUSEHOLDS = 5000
DEMO_SEED = 2026
DEMO_VISITS_PER_KECAMATAN = 30


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def create_demo_users(session) -> list[tuple[str, str, str]]:
    """An admin, a supervisor per priority kecamatan and two enumerators in each, and a
    pemantau of the ten."""
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
    # A monitor of the ten priority kecamatan (aggregates only: docs/monitoring.md).
    add("pemantau-bappeda", "pemantau", list(PRIORITY_KECAMATAN), "Pemantau Bappeda DKI")
    return logins


def load_demo_registry(instance: Path, households: int = DEMO_HOUSEHOLDS) -> str:
    """Generate a demo extract into the instance folder and import it."""
    from sync.generator import generate
    from sync.importer import import_extract

    out = instance / "demo-extract"
    result = generate(out, households, DEMO_SEED, "jsonl")
    summary = import_extract(db.session, result["paths"]["jsonl"], label="demo extract",
                             rejects=out / "rejects.jsonl")
    return (f"demo registry: {summary.inserted} families imported "
            f"({result['anomalies']} planted anomalies listed in {out / 'anomalies.jsonl'})")


def simulate_demo_visits(session, instance: Path, per_kecamatan: int) -> str:
    """A few days of the first enumerator of each priority kecamatan: visits planned by the
    simulator on the families they hold, photos uploaded, pushed, and reconciled."""
    import datetime as dt
    import io
    import json
    import uuid

    from server.models import User
    from server.services.photos import receive
    from sync import forms as form_store
    from sync import simulator
    from sync.ingest import ingest_batch
    from sync.models import Assignment, VerifiedRecord
    from sync.reconcile.config import from_settings
    from sync.reconcile.worker import drain

    first = {}
    for user in session.scalars(select(User).where(User.role == "enumerator")
                                .order_by(User.username)):
        first.setdefault(tuple(user.areas), user)
    records, holder = [], {}
    for user in first.values():
        rows = session.execute(
            select(VerifiedRecord.doc).join(
                Assignment, Assignment.household_id == VerifiedRecord.household_id)
            .where(Assignment.enumerator_id == user.id)
            .order_by(VerifiedRecord.household_id).limit(per_kecamatan)).scalars().all()
        for doc in rows:
            records.append(doc)
            holder[doc["id_keluarga"]] = user
    ids = set(holder)
    answers = instance / "demo-extract" / "anomalies.jsonl"
    anomalies = [a for a in map(json.loads, answers.read_text().splitlines())
                 if a.get("id_keluarga") in ids
                 and a.get("other_id_keluarga") in (None, *ids)]
    form = form_store.compiled_form(form_store.latest_open_version(session,
                                                                   "verifikasi_keluarga"))
    logging.getLogger("tapak.photos").setLevel(logging.WARNING)  # one line a photo: too many
    plan = simulator.plan_visits(form, records, anomalies, seed=DEMO_SEED,
                                 per_enumerator=per_kecamatan, per_day=8,
                                 start=dt.date.today() - dt.timedelta(days=5))
    for day in plan.days():
        todays = [v for v in plan.visits if v.day == day]
        for user in {holder[v.household_id].id: holder[v.household_id]
                     for v in todays}.values():
            mine = [v for v in todays if holder[v.household_id] is user]
            for v in mine:
                for sha, data in v.images.items():
                    receive(session, user, sha, io.BytesIO(data), "image/jpeg", len(data))
            batch = [v.visit for v in mine]
            ingest_batch(session, user_id=user.id, device_id=f"demo-{user.username}",
                         batch_id=str(uuid.uuid4()), raw_body=json.dumps(
                             {"visits": batch}).encode(), visits=batch)
        drain(session, worker="bootstrap", config=from_settings(current_app.config))
    return f"demo field work: {len(plan.visits)} visits pushed and reconciled"


@click.command("bootstrap")
@click.option("--households", type=int, default=DEMO_HOUSEHOLDS, show_default=True,
              help="Demo families to generate on an empty database.")
@click.option("--visits-per-kecamatan", type=int, default=DEMO_VISITS_PER_KECAMATAN,
              show_default=True, help="Demo visits to simulate per kecamatan (0: none).")
def cli(households: int, visits_per_kecamatan: int):
    """Areas and forms; on an empty database demo users, families and assignments."""
    from server.cli.assignments import assign_demo
    from server.cli.forms import FORMS_DIR, publish_path
    from sync.models.registry import Keluarga

    with write_transaction(db.session):
        load_areas(db.session)
    for line in publish_path(FORMS_DIR):
        click.echo(line)
    instance = Path(current_app.instance_path)
    logins_file = instance / "demo-logins.txt"
    if db.session.scalar(select(Keluarga.id).limit(1)) is None and households > 0:
        click.echo(load_demo_registry(instance, households))
    if user_service.count_users(db.session) == 0:
        with write_transaction(db.session):
            logins = create_demo_users(db.session)
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Demo logins created by `flask --app server bootstrap`.\n")
            for username, role, password in logins:
                fh.write(f"{username}\t{role}\t{password}\n")
        click.echo(f"created {len(logins)} demo users")
        with write_transaction(db.session):
            round_, assigned = assign_demo(db.session)
        click.echo(f"round {round_.name!r}: {assigned} families assigned to the demo enumerators")
        if visits_per_kecamatan > 0 and (instance / "demo-extract").exists():
            click.echo(simulate_demo_visits(db.session, instance, visits_per_kecamatan))
    if logins_file.exists():
        click.echo(f"\nDemo logins ({logins_file}):")
        for line in logins_file.read_text().splitlines():
            if not line.startswith("#"):
                username, role, password = line.split("\t")
                click.echo(f"  {username:<34} {role:<11} {password}")
        # make run passes HOST and PORT on to here, so the hint names the address it serves.
        where = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
        click.echo(f"\nAPI: POST http://{where}/api/v1/auth/token "
                   '{"username", "password", "device_id"}')
