"""``flask --app server assignments ...``: rounds and assignments from the command line.

The CLI acts with an operator's full view: it may assign any family, but still only to an
enumerator whose areas cover it.
"""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.extensions import db
from server.models import User
from sync import assignments as core
from sync.db import write_transaction
from sync.models.assignment import Round

cli = AppGroup("assignments", help="Rounds and assignments.")


def _everything(_code: str) -> bool:
    return True


def _fail(exc: core.AssignmentError):
    raise click.ClickException(exc.message) from None


@cli.command("round-create")
@click.argument("name")
@click.option("--starts", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--ends", type=click.DateTime(["%Y-%m-%d"]), required=True)
def round_create(name, starts, ends):
    """Create a round (a named verification campaign)."""
    try:
        with write_transaction(db.session):
            row = core.create_round(db.session, name, starts.date(), ends.date())
            click.echo(f"round {row.id}: {row.name} ({row.starts_on} to {row.ends_on})")
    except core.AssignmentError as exc:
        _fail(exc)


@cli.command("rounds")
def rounds_command():
    """List rounds."""
    for row in db.session.scalars(select(Round).order_by(Round.id)):
        click.echo(f"{row.id:>4}  {row.starts_on} .. {row.ends_on}  {row.state:<6}  {row.name}")


@cli.command("round-close")
@click.argument("round_id", type=int)
def round_close(round_id):
    """Close a round: its open assignments end, so the next round can assign the families."""
    try:
        with write_transaction(db.session):
            ended = core.close_round(db.session, round_id)
    except core.AssignmentError as exc:
        _fail(exc)
    click.echo(f"round {round_id} closed; {ended} open assignments ended")


@cli.command("assign")
@click.argument("round_id", type=int)
@click.argument("username")
@click.option("--household", "household_ids", multiple=True, help="Family id; repeat.")
@click.option("--kelurahan", default=None, help="Every family of this kelurahan.")
@click.option("--rt", default=None)
@click.option("--rw", default=None)
def assign_command(round_id, username, household_ids, kelurahan, rt, rw):
    """Assign families to an enumerator, by id or by kelurahan (optionally RT/RW)."""
    if bool(household_ids) == bool(kelurahan):
        raise click.UsageError("give --household ... or --kelurahan")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or user.role != "enumerator":
        raise click.ClickException(f"{username!r} is not an enumerator")
    ids = list(household_ids) or None
    households = core.select_households(db.session, household_ids=ids, kelurahan=kelurahan,
                                        rt=rt, rw=rw)
    try:
        with write_transaction(db.session):
            result = core.assign(db.session, round_id, user.id, households, actor_id=None,
                                 actor_covers=_everything, enumerator_covers=user.covers,
                                 requested_ids=ids)
    except core.AssignmentError as exc:
        _fail(exc)
    click.echo(f"assigned {result.assigned}, moved {result.moved}, "
               f"unchanged {result.unchanged}, skipped {len(result.skipped)}")
    for skip in result.skipped[:20]:
        click.echo(f"  skipped {skip['household_id']}: {skip['reason']}")


@cli.command("unassign")
@click.argument("round_id", type=int)
@click.argument("household_id")
def unassign_command(round_id, household_id):
    """Take a family off its enumerator in a round."""
    try:
        with write_transaction(db.session):
            core.unassign(db.session, round_id, household_id, actor_covers=_everything)
    except core.AssignmentError as exc:
        _fail(exc)
    click.echo(f"unassigned {household_id} in round {round_id}")


def assign_demo(session, today: dt.date | None = None) -> tuple[Round, int]:
    """A running demo round, with each kecamatan's families shared among its enumerators."""
    from sync.models.registry import Keluarga

    today = today or dt.date.today()
    name = "Groundcheck Demo Prioritas"
    row = session.scalar(select(Round).where(Round.name == name))
    if row is None:
        row = core.create_round(session, name, today - dt.timedelta(days=7),
                                today + dt.timedelta(days=83))
    enumerators = session.scalars(select(User).where(User.role == "enumerator")
                                  .order_by(User.username)).all()
    total = 0
    for user in enumerators:
        peers = [u for u in enumerators if u.areas == user.areas]
        share = peers.index(user)
        households = []
        for area in user.areas:
            rows = session.execute(
                select(Keluarga.id, Keluarga.kode_kelurahan)
                .where(Keluarga.kode_kelurahan.like(area + ".%"), Keluarga.removed_at.is_(None))
                .order_by(Keluarga.id)).all()
            households += [r for i, r in enumerate(rows) if i % len(peers) == share]
        result = core.assign(session, row.id, user.id, households, actor_id=None,
                             actor_covers=_everything, enumerator_covers=user.covers)
        total += result.assigned + result.moved
    return row, total
