"""Settings, read from the environment with safe defaults.

Every setting is listed in README.md ("Configuration"). Paths default to the Flask instance
folder so that a fresh clone runs with nothing configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value in ("1", "true", "yes", "on")


def _paths(name: str) -> tuple[str, ...]:
    """A comma-separated list of field paths, blanks dropped."""
    return tuple(p.strip() for p in os.environ.get(name, "").split(",") if p.strip())


def normalise_database_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs to psycopg 3, the driver Tapak ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(instance: Path) -> str:
    """Use SECRET_KEY when set; otherwise generate one into the instance folder once."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def from_environment(instance_path: str) -> dict:
    """Build the app's settings from the environment."""
    instance = Path(instance_path)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'tapak.db'}"
    return {
        "DATABASE_URL": normalise_database_url(database_url),
        "SECRET_KEY": _secret_key(instance),
        # Earlier keys, still accepted for review-page sessions while a new SECRET_KEY rolls
        # out (Flask 3.1); docs/deploy.md, "Rotating SECRET_KEY", says what else they do not cover.
        "SECRET_KEY_FALLBACKS": list(_paths("SECRET_KEY_FALLBACKS")),
        "PHOTO_DIR": os.environ.get("PHOTO_DIR") or str(instance / "photos"),
        "MAX_PHOTO_BYTES": _int("MAX_PHOTO_BYTES", 20 * 1024 * 1024),
        "PHOTO_GRACE_DAYS": _int("PHOTO_GRACE_DAYS", 7),
        "MEDIA_URL_TTL": _int("MEDIA_URL_TTL", 900),
        "ESCALATE_AFTER_DAYS": _int("ESCALATE_AFTER_DAYS", 7),
        "BACKUP_DIR": os.environ.get("BACKUP_DIR") or str(instance / "backups"),
        "BACKUP_KEEP_DAYS": _int("BACKUP_KEEP_DAYS", 7),
        # The scheduler: its own reconcile job (off while dedicated ``reconcile run`` workers
        # run), and the leader lock between machines (sync/leader.py, docs/deploy.md).
        "SCHEDULER_RECONCILE": _bool("SCHEDULER_RECONCILE", True),
        "SCHEDULER_LEASE_SECONDS": _int("SCHEDULER_LEASE_SECONDS", 30),
        "SCHEDULER_RENEW_SECONDS": _int("SCHEDULER_RENEW_SECONDS", 10),
        "MAX_CONTENT_LENGTH": _int("MAX_REQUEST_BYTES", 32 * 1024 * 1024),
        "MAX_PUSH_VISITS": _int("MAX_PUSH_VISITS", 100),
        "MAX_PUSH_BYTES": _int("MAX_PUSH_BYTES", 16 * 1024 * 1024),
        "TOKEN_TTL": _int("TOKEN_TTL", 30 * 24 * 3600),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "LOGIN_RATE_LIMIT": os.environ.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Redis down: count in each process's memory rather than answer every login with 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # /metrics: a bearer token, or a client address in these networks (server/metrics.py).
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "METRICS_ALLOW": _paths("METRICS_ALLOW") if os.environ.get("METRICS_ALLOW") is not None
        else ("127.0.0.1/32", "::1/128"),
        "SQLITE_BUSY_TIMEOUT_MS": _int("SQLITE_BUSY_TIMEOUT_MS", 30_000),
        "SQLITE_CACHE_MB": _int("SQLITE_CACHE_MB", 64),
        "SQLITE_MMAP_MB": _int("SQLITE_MMAP_MB", 1024),
        "SQLITE_WAL_AUTOCHECKPOINT": _int("SQLITE_WAL_AUTOCHECKPOINT", 10_000),
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
        # Generic paths whose fills (a field the verified record holds blank, filled by a
        # visit) are still raised as field_mismatch (docs/reconciliation.md); default none.
        "REVIEW_FILLS": _paths("REVIEW_FILLS"),
    }


def for_testing(instance_path: str, database_url: str, photo_dir: str) -> dict:
    """Settings for the test suite: a throw-away database and photo folder, a fixed key."""
    settings = from_environment(instance_path)
    settings.update(
        TESTING=True,
        DATABASE_URL=normalise_database_url(database_url),
        SECRET_KEY="test-secret-key-not-for-production",
        PHOTO_DIR=photo_dir,
        LOG_LEVEL="INFO",
        LOGIN_RATE_LIMIT="5 per minute",
        PASSWORD_HASH_METHOD="pbkdf2:sha256:1000",  # fast; production keeps scrypt
    )
    return settings
