"""``flask --app server users create|list|revoke``."""

import click
from flask.cli import AppGroup

from server.extensions import db
from server.models import ROLES
from server.services import ServiceError
from server.services import users as user_service
from sync.db import write_transaction

cli = AppGroup("users", help="Users and their tokens.")


@cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--area", "areas", multiple=True, help="Kemendagri code; repeat for several.")
@click.option("--name", "full_name", default=None, help="Full name, shown on review pages.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for when absent.",
)
def create_command(username, role, areas, full_name, password):
    """Create a user with a role and the areas they may act in."""
    try:
        with write_transaction(db.session):
            user = user_service.create_user(
                db.session, username, role, password, areas=areas, full_name=full_name
            )
            click.echo(
                f"created {user.username} ({user.role}) areas: {', '.join(user.areas) or '-'}"
            )
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None


@cli.command("list")
def list_command():
    """List users with role, areas and whether they are active."""
    users = user_service.visible_users(db.session, _AdminView())
    for user in users:
        state = "" if user.active else " (inactive)"
        click.echo(f"{user.username:<24} {user.role:<11} {', '.join(user.areas) or '-'}{state}")


@cli.command("revoke")
@click.argument("username")
@click.option("--device", "device_id", default=None, help="Only this device's tokens.")
def revoke_command(username, device_id):
    """Revoke every token of a user, or of one of their devices."""
    try:
        with write_transaction(db.session):
            n = user_service.revoke_tokens(db.session, username=username, device_id=device_id)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"revoked {n} token(s)")


class _AdminView:
    """The CLI runs with an operator's full view."""

    role = "admin"
    id = None
