"""gunicorn's settings for Tapak: ``gunicorn -c deploy/gunicorn.conf.py 'server:create_app()'``.

Prometheus' multiprocess mode (``/metrics``, server/metrics): every worker writes its counts
into ``PROMETHEUS_MULTIPROC_DIR`` and the worker answering a scrape sums the files. The folder
is emptied when gunicorn starts (a file left by an earlier run's pid would be counted again, or
reopened by a new worker that gets the same pid), and a worker that exits is marked dead.
Set the folder for the web server only (deploy/systemd/tapak-web.service), on a tmpfs.
"""

import glob
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
# Synchronous workers (as `make serve`); the proxy buffers bodies, so a slow phone holds none.
worker_class = "sync"
timeout = 120  # an import-sized export or a 100-visit push on a loaded server; the proxy waits 130
graceful_timeout = 30
# Tapak logs one JSON line per request itself (server/logging.py); gunicorn's own errors go to
# stderr, which the journal keeps.
accesslog = None
errorlog = "-"


def on_starting(server):
    """Empty the metrics folder before any worker starts."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        for path in glob.glob(os.path.join(folder, "*.db")):
            os.remove(path)


def child_exit(server, worker):
    """A worker is gone (restarted, killed): its live gauges go; its counters stay summed."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
