"""``flask --app server scheduler run`` and ``flask --app server photos cleanup``."""

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("scheduler", help="The job scheduler (run it in a process of its own).")


@cli.command("run")
def run_command():
    """Run the scheduled jobs until stopped, while this process holds the leader lock.

    Several machines may run it: one leads, the others wait and take over (docs/deploy.md).
    """
    from server.jobs import build_scheduler, run_scheduler

    app = current_app._get_current_object()
    scheduler = build_scheduler(app)
    for job in scheduler.get_jobs():
        click.echo(f"job {job.id}: {job.name} ({job.trigger})")
    run_scheduler(app, scheduler)


@cli.command("jobs")
def jobs_command():
    """List the scheduled jobs."""
    from server.jobs import build_scheduler

    for job in build_scheduler(current_app._get_current_object()).get_jobs():
        click.echo(f"{job.id}: {job.name} ({job.trigger})")
