"""``flask --app server scheduler run`` and ``flask --app server photos cleanup``."""

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("scheduler", help="The job scheduler (run it in a process of its own).")


@cli.command("run")
def run_command():
    """Run the scheduled jobs until stopped."""
    from server.jobs import build_scheduler

    scheduler = build_scheduler(current_app._get_current_object())
    for job in scheduler.get_jobs():
        click.echo(f"job {job.id}: {job.name} ({job.trigger})")
    scheduler.start()


@cli.command("jobs")
def jobs_command():
    """List the scheduled jobs."""
    from server.jobs import build_scheduler

    for job in build_scheduler(current_app._get_current_object()).get_jobs():
        click.echo(f"{job.id}: {job.name} ({job.trigger})")
