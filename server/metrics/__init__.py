"""Prometheus metrics at ``/metrics`` (docs/operations.md lists them and the alerts on them).

Two kinds of figures. What a web worker sees itself (requests, latency, visits pushed, photos
stored) is counted in the worker with ``prometheus_client``; under gunicorn every worker writes
its counts into ``PROMETHEUS_MULTIPROC_DIR`` and the worker that answers a scrape sums them
all (the multiprocess mode; deploy/gunicorn.conf.py clears the folder at start and marks dead
workers). What other processes own (the queue, the reconciliation lag, the latest import, the
scheduler's job runs) is read from the database at scrape time, so every worker answers the
same and nothing is lost when a worker or the scheduler restarts.

The endpoint is not for the public: it answers a bearer ``METRICS_TOKEN``, or a client in
``METRICS_ALLOW`` (loopback by default) that did not come through the reverse proxy.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import os
import shutil
import time
from functools import lru_cache

from flask import Flask, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from server.errors import error_body
from server.metrics.jobs import JobRun, record_job_runs  # noqa: F401 (the model, the hook)
from sync.db import utcnow

log = logging.getLogger("tapak.metrics")

# Seconds: a pull is tens of milliseconds, a push of 100 visits or a photo on 3G many seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Visit statuses that are work still to do (or to look at); the decided ones only grow, and the
# progress pages count them.
QUEUE_STATUSES = ("waiting_photos", "queued", "processing", "held", "failed", "needs_review")
LAG_WINDOW = dt.timedelta(minutes=5)
LAG_SAMPLE = 5_000  # a cap, not a sample size: the window keeps it small on any given day
IMPORT_COUNTS = ("read", "inserted", "updated", "unchanged", "rejected", "removed", "members",
                 "flagged")

disable_created_metrics()  # no *_created series: half the lines, and Prometheus ignores them
# Created once per process, registered in no global registry: a scrape builds its own (below).
REQUESTS = Counter("tapak_http_requests", "HTTP requests answered, by URL rule and status.",
                   ["method", "route", "status"], registry=None)
LATENCY = Histogram("tapak_http_request_duration_seconds",
                    "Time from the request's start to its response, by URL rule.",
                    ["method", "route"], buckets=LATENCY_BUCKETS, registry=None)
PUSHED = Counter("tapak_push_visits", "Visits received in JSON push batches, by result "
                 "(accepted and waiting_photos are stored).", ["result"], registry=None)
PHOTOS = Counter("tapak_photos_stored", "Photos stored (new uploads, not repeats).",
                 registry=None)
PHOTO_BYTES = Counter("tapak_photo_stored_bytes", "Bytes of the photos stored.", registry=None)
IN_PROCESS = (REQUESTS, LATENCY, PUSHED, PHOTOS, PHOTO_BYTES)


def multiprocess() -> bool:
    """Whether prometheus_client chose its multiprocess values (at import, from the env)."""
    return values.ValueClass is not values.MutexValue


def init_app(app: Flask) -> None:
    """Count every request and serve ``/metrics`` (outside the OpenAPI document: not JSON)."""
    if multiprocess():
        os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    app.before_request(_start)
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _count(response):
    started = g.pop("metrics_started", None)
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    REQUESTS.labels(request.method, rule, str(response.status_code)).inc()
    if started is not None:
        LATENCY.labels(request.method, rule).observe(time.perf_counter() - started)
    return response


def count_push(statuses) -> None:
    """A JSON push's visits by result, counted by the push service that has them."""
    for status in statuses:
        PUSHED.labels(status).inc()


def count_photo_stored(size_bytes: int) -> None:
    """A photo stored for the first time (not a repeat upload), and its bytes."""
    PHOTOS.inc()
    PHOTO_BYTES.inc(size_bytes)


# --- who may scrape -----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _networks(allow: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(n, strict=False) for n in allow)


def _allowed_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in net for net in _networks(tuple(current_app.config["METRICS_ALLOW"])))


def _refusal():
    """None when the scrape may proceed, else the envelope to answer.

    A request the proxy forwarded (X-Forwarded-For) seems to come from the proxy's loopback
    address; it gets in with the token only.
    """
    token = current_app.config["METRICS_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return _error(401, "unauthorized", "A valid metrics token is required.")
    if not request.headers.get("X-Forwarded-For") and _allowed_address(request.remote_addr):
        return None
    if token:
        return _error(401, "unauthorized", "A valid metrics token is required.")
    return _error(403, "forbidden", "Metrics are served to the allowed networks only.")


def _error(status: int, code: str, message: str):
    response = jsonify(error_body(status, message, code))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_view():
    refusal = _refusal()
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        for metric in IN_PROCESS:
            registry.register(metric)
    registry.register(DatabaseCollector(current_app.config["PHOTO_DIR"]))
    response = current_app.response_class(generate_latest(registry),
                                          content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- figures read at scrape time ----------------------------------------------------------------

def _seconds(moment: dt.datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DatabaseCollector:
    """What other processes own, read when Prometheus asks: a handful of indexed queries."""

    def __init__(self, photo_dir: str) -> None:
        self.photo_dir = photo_dir

    def describe(self):
        return []  # unknown until collected: never collected at registration

    def collect(self):
        yield from self._photo_store()
        from server.extensions import db

        started = time.perf_counter()
        up = 1
        families: list = []
        try:
            if db.session.get_bind().dialect.name == "postgresql":
                # a slow database must not hold gunicorn workers: Prometheus gives up at 10 s
                db.session.execute(text("SET LOCAL statement_timeout = 5000"))
            families = [*self._queue(db.session), *self._import(db.session),
                        *self._jobs(db.session)]
        except SQLAlchemyError as exc:
            up = 0
            log.warning("metrics: database not readable", extra={"error": type(exc).__name__})
        finally:
            db.session.rollback()
        yield from families
        yield GaugeMetricFamily("tapak_database_up", "1 when the scrape could read the database.",
                                value=up)
        yield GaugeMetricFamily("tapak_metrics_database_seconds",
                                "Time the scrape spent reading the database.",
                                value=time.perf_counter() - started)

    def _photo_store(self):
        try:
            usage = shutil.disk_usage(self.photo_dir)
        except OSError:
            return
        yield GaugeMetricFamily("tapak_photo_store_free_bytes",
                                "Free bytes on the photo store's filesystem (for the "
                                "unprivileged user).", value=usage.free)
        yield GaugeMetricFamily("tapak_photo_store_size_bytes",
                                "Size of the photo store's filesystem.", value=usage.total)

    def _queue(self, session):
        from sync.models.visit import PROCESSED_STATUSES, Visit

        counts = dict(session.execute(
            select(Visit.status, func.count()).where(Visit.status.in_(QUEUE_STATUSES))
            .group_by(Visit.status)).all())
        depth = GaugeMetricFamily("tapak_visits", "Visits by status, for the statuses still "
                                  "to be worked on (the queue).", labels=["status"])
        for status in QUEUE_STATUSES:
            depth.add_metric([status], counts.get(status, 0))
        yield depth

        now = utcnow()
        oldest = GaugeMetricFamily(
            "tapak_queue_oldest_age_seconds", "Age of the oldest visit in a status (queued: "
            "since it was queued; waiting_photos, held: since it was received); 0 when none.",
            labels=["status"])
        for status, column in (("queued", Visit.queued_at), ("waiting_photos", Visit.received_at),
                               ("held", Visit.received_at)):
            first = session.scalar(select(func.min(column)).where(Visit.status == status))
            oldest.add_metric([status], (now - first).total_seconds() if first else 0.0)
        yield oldest

        rows = session.execute(
            select(Visit.received_at, Visit.processed_at)
            .where(Visit.status.in_(PROCESSED_STATUSES), Visit.queued_at >= now - LAG_WINDOW)
            .limit(LAG_SAMPLE)).all()
        lags = sorted((done - received).total_seconds() for received, done in rows
                      if received is not None and done is not None)
        lag = GaugeMetricFamily(
            "tapak_reconcile_lag_seconds", "Receipt to decided status, over the visits queued "
            "in the last 5 minutes and decided since (quantiles; absent when none).",
            labels=["quantile"])
        for q in (0.5, 0.95, 1.0):
            if lags:
                lag.add_metric([str(q)], _quantile(lags, q))
        yield lag
        yield GaugeMetricFamily("tapak_reconcile_lag_sample",
                                "Visits the lag quantiles were computed over.", value=len(lags))

    def _import(self, session):
        from sync.models.registry import Import

        imp = session.scalars(select(Import).order_by(Import.id.desc()).limit(1)).first()
        if imp is None:
            return
        yield GaugeMetricFamily("tapak_import_id", "The latest registry import's id.",
                                value=imp.id)
        state = GaugeMetricFamily("tapak_import_status", "The latest import's status (1 for "
                                  "the one it is in).", labels=["status"])
        for status in ("running", "done", "failed"):
            state.add_metric([status], 1 if imp.status == status else 0)
        yield state
        yield GaugeMetricFamily("tapak_import_started_timestamp_seconds",
                                "When the latest import started.", value=_seconds(imp.started_at))
        end = imp.finished_at or utcnow()
        yield GaugeMetricFamily("tapak_import_duration_seconds", "How long the latest import "
                                "ran (so far, while running).",
                                value=(end - imp.started_at).total_seconds())
        rows = GaugeMetricFamily("tapak_import_families", "The latest import's counts (so far, "
                                 "while it runs).", labels=["kind"])
        for kind in IMPORT_COUNTS:
            rows.add_metric([kind], getattr(imp, f"n_{kind}") or 0)
        yield rows

    def _jobs(self, session):
        """The scheduler's job runs, as its listener recorded them (``record_job_runs``)."""
        runs = session.scalars(select(JobRun).order_by(JobRun.job_id)).all()
        total = CounterMetricFamily("tapak_job_runs", "Scheduler job runs, by job.",
                                    labels=["job"])
        failed = CounterMetricFamily("tapak_job_failures", "Scheduler job runs that raised.",
                                     labels=["job"])
        last = GaugeMetricFamily("tapak_job_last_success_timestamp_seconds",
                                 "When a job last ended without an error.", labels=["job"])
        for run in runs:
            total.add_metric([run.job_id], run.runs)
            failed.add_metric([run.job_id], run.failures)
            if run.last_success_at is not None:
                last.add_metric([run.job_id], _seconds(run.last_success_at))
        yield from (total, failed, last)
