"""``flask --app server forms publish|close|list|example|import-xlsform``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from server.extensions import db
from sync import forms as form_store
from sync.db import write_transaction

cli = AppGroup("forms", help="Form definitions.")

FORMS_DIR = Path(__file__).resolve().parents[2] / "forms"


def _definition_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.json") if not p.name.startswith("_"))
    return [path]


def publish_path(path: Path) -> list[str]:
    """Publish every definition at ``path``; return one line a form. Stops at the first refusal."""
    lines = []
    for file in _definition_files(path):
        definition = json.loads(file.read_text(encoding="utf-8"))
        with write_transaction(db.session):
            row, created = form_store.publish_form(db.session, definition)
            state = "published" if created else "already published, unchanged"
            lines.append(f"{row.form_id} v{row.version} {state} (hash {row.hash[:12]})")
    return lines


@cli.command("publish")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def publish_command(path: Path):
    """Publish a form definition file, or every definition under a folder."""
    try:
        for line in publish_path(path):
            click.echo(line)
    except form_store.FormPublishError as exc:
        for problem in exc.errors:
            click.echo(f"  {problem['path']}: {problem['message']}", err=True)
        raise click.ClickException(exc.message) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None


@cli.command("close")
@click.argument("form_id")
@click.option("--version", type=int, default=None, help="Only this version.")
def close_command(form_id: str, version: int | None):
    """Close a form (or one version): pushes for it are refused from now on."""
    with write_transaction(db.session):
        closed = form_store.close_form(db.session, form_id, version)
        names = [f"v{row.version}" for row in closed]
    if not names:
        raise click.ClickException(f"no open version of {form_id} to close")
    click.echo(f"closed {form_id} {', '.join(names)}")


@cli.command("list")
@click.option("--all", "include_closed", is_flag=True, help="Include closed versions.")
def list_command(include_closed: bool):
    """Published forms with their version, hash and state."""
    for row in form_store.published_forms(db.session, include_closed=include_closed):
        state = "open" if row.is_open else "closed"
        click.echo(f"{row.form_id:<28} v{row.version:<4} {state:<7} {row.hash[:12]}  {row.title}")


@cli.command("example")
@click.argument("form_id")
@click.option("--version", type=int, default=None, help="Default: the newest open version.")
@click.option("--household", "household_id", default=None,
              help="Prefill from this family's verified record (default: a synthetic family).")
def example_command(form_id: str, version: int | None, household_id: str | None):
    """Print one complete, valid visit of FORM_ID in the push format of the contract."""
    from server.services.forms import example_visit

    try:
        visit = example_visit(db.session, form_id, version, household_id)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(visit, indent=2, ensure_ascii=False))


@cli.command("import-xlsform")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Publish the definition (as `forms publish` does).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the JSON definition (default: beside FILE, .json).")
def import_xlsform_command(file: Path, publish: bool, out: Path | None):
    """Convert an XLSForm (.xlsx) to a Tapak form definition; write it, or publish it.

    Every problem is listed with its sheet and row; nothing is written or published then.
    """
    from forms.xlsform import XLSFormError, count_questions, describe, load_xlsform

    try:
        definition, warnings = load_xlsform(file)
    except XLSFormError as exc:
        for problem in exc.errors:
            click.echo(f"  {describe(problem)}", err=True)
        raise click.ClickException(
            f"{file}: {len(exc.errors)} problem(s); nothing converted") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    for warning in warnings:
        click.echo(f"  warning: {describe(warning)}", err=True)
    n = count_questions(definition["fields"])
    click.echo(f"{definition['form_id']} v{definition['version']}: {n['questions']} questions, "
               f"{n['notes']} notes, {n['groups']} groups, {n['repeats']} repeats, "
               f"{len(definition.get('choices') or {})} choice lists")
    if out is not None or not publish:
        target = out or file.with_suffix(".json")
        text = json.dumps(definition, indent=2, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {target}")
    if publish:
        try:
            with write_transaction(db.session):
                row, created = form_store.publish_form(db.session, definition)
                state = "published" if created else "already published, unchanged"
                click.echo(f"{row.form_id} v{row.version} {state} (hash {row.hash[:12]})")
        except form_store.FormPublishError as exc:
            for problem in exc.errors:
                click.echo(f"  {problem['path']}: {problem['message']}", err=True)
            raise click.ClickException(exc.message) from None
