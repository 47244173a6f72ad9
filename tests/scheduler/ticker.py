"""A scheduler process for the leader tests: the app's own scheduler and ``run_scheduler`` (what
``flask --app server scheduler run`` runs), plus a ``tick`` job every 0.2 s that appends
"<pid> <time>" to the file named by argv[1]. Settings come from the environment."""

from __future__ import annotations

import os
import sys
import time


def tick(path: str) -> None:
    with open(path, "a") as fh:
        fh.write(f"{os.getpid()} {time.time():.3f}\n")


def main(path: str) -> None:
    from server import create_app
    from server.jobs import build_scheduler, run_scheduler

    app = create_app()
    scheduler = build_scheduler(app)
    scheduler.add_job(tick, "interval", seconds=0.2, args=[path], id="tick", name="tick")
    run_scheduler(app, scheduler)


if __name__ == "__main__":
    main(sys.argv[1])
