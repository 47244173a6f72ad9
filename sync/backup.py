"""Backups that restore: a database snapshot first, then the photos it names, with a manifest.

A backup folder holds, per day, ``tapak-YYYYMMDD.db`` (SQLite, sqlite3's online backup API:
a consistent copy page by page while the app keeps writing) or ``tapak-YYYYMMDD.dump``
(PostgreSQL, ``pg_dump -Fc``), and ``tapak-YYYYMMDD.manifest.json`` beside it: the SHA-256 and
size of every photo the snapshot names. A run later in the same day replaces that day's
snapshot, so an hourly cron keeps the recovery point at an hour and the folder at one snapshot
a day. Each file is written beside its final name and renamed: a snapshot that exists is whole.

Photos go into ``photos/`` in the same folder, one content-addressed store shared by every
snapshot: a photo never changes under its hash, so a photo already there is not copied again
(the backup is incremental), and each one copied is hashed on the way. The database goes
first: every photo a snapshot names was stored before the snapshot, so it is there to copy.

``restore`` puts a SQLite snapshot and its photos into an instance, checks every photo against
the manifest, and starts a new feed epoch so every phone pulls again and sends back what the
snapshot lacks (docs/deploy.md, "Backup and restore").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from sync import feed
from sync.db import configure_engine, write_transaction
from sync.models.feed import FeedState
from sync.models.visit import Photo
from sync.photos import LocalPhotoStorage, PhotoStorage

NAME = re.compile(r"^tapak-(\d{8})\.(db|dump|manifest\.json)$")
PHOTOS = "photos"
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


def _day(now: dt.datetime | dt.date | None) -> dt.date:
    if now is None:
        return dt.datetime.now(dt.UTC).date()
    return now.date() if isinstance(now, dt.datetime) else now


def _replace_atomically(partial: Path, target: Path) -> None:
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)


# --------------------------------------------------------------------------- snapshots


def _snapshot_paths(directory: Path, today: dt.date, suffix: str) -> tuple[Path, Path]:
    """(the day's snapshot, the name it is written under until complete), the folder made."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"tapak-{today:%Y%m%d}.{suffix}"
    partial = target.with_suffix(f".{suffix}.partial")
    partial.unlink(missing_ok=True)
    return target, partial


def backup_sqlite(database: str | Path, directory: str | Path, keep_days: int,
                  today: dt.date | None = None, photos: PhotoStorage | None = None) -> dict:
    """Copy ``database`` into ``directory/tapak-YYYYMMDD.db``, then (with ``photos``, the live
    store) the photos it names, and prune snapshots older than ``keep_days``."""
    today, directory = _day(today), Path(directory)
    target, partial = _snapshot_paths(directory, today, "db")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=4096)
        finally:
            copy.close()
    finally:
        source.close()
    _replace_atomically(partial, target)
    result = {"path": str(target), "bytes": target.stat().st_size}
    if photos is not None:
        snapshot = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            named = [r[0] for r in snapshot.execute("SELECT sha256 FROM photos ORDER BY sha256")]
        finally:
            snapshot.close()
        result["photos"] = copy_photos(named, photos, directory, target.name, "sqlite")
    result["pruned"] = prune(directory, keep_days, today)
    return result


def pg_dump_path() -> str | None:
    """The pg_dump binary, or None when it is not installed."""
    return shutil.which("pg_dump")


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as pg_dump and pg_restore take it (no ``+psycopg`` driver part)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def backup_postgres(url: str, directory: str | Path, keep_days: int,
                    photos: PhotoStorage | None = None,
                    today: dt.date | None = None) -> dict:
    """``pg_dump -Fc`` into ``directory/tapak-YYYYMMDD.dump``, then the photos it names.

    The photos are read from the database after the dump has finished: a superset of the
    dump's (photos are removed only long after no visit names them), so none is left out.
    """
    binary = pg_dump_path()
    if binary is None:
        raise BackupError("pg_dump is not installed: install postgresql-client (the same major "
                          "version as the server) or run pg_dump -Fc on the database server")
    today, directory = _day(today), Path(directory)
    target, partial = _snapshot_paths(directory, today, "dump")
    done = subprocess.run([binary, "--format=custom", "--no-owner", f"--file={partial}",
                           f"--dbname={libpq_url(url)}"], capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    _replace_atomically(partial, target)
    result = {"path": str(target), "bytes": target.stat().st_size}
    if photos is not None:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                named = list(conn.scalars(select(Photo.sha256).order_by(Photo.sha256)))
        finally:
            engine.dispose()
        result["photos"] = copy_photos(named, photos, directory, target.name, "postgresql")
    result["pruned"] = prune(directory, keep_days, today)
    return result


def run(url: str, directory: str | Path, keep_days: int, photos: PhotoStorage | None,
        today: dt.date | None = None) -> dict:
    """The backup of an instance, whichever its database: ``backup run`` and the scheduler."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise BackupError("an in-memory SQLite database cannot be backed up")
        return backup_sqlite(parsed.database, directory, keep_days, today, photos)
    return backup_postgres(url, directory, keep_days, photos, today)


# --------------------------------------------------------------------------- photos


def _copy_verified(src, store: PhotoStorage, sha: str) -> tuple[int, str]:
    """Stream ``src`` into ``store`` under ``sha`` if its bytes hash to it: (size, actual).

    No fsync per file (with one, 2,000 photos of 150 KB took 20 s to back up instead of 6): the
    caller calls ``os.sync()`` once, before it writes the manifest or moves on.
    """
    digest, size = hashlib.sha256(), 0
    fd, tmp_name = tempfile.mkstemp(dir=store.temp_dir, prefix=".copy-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual == sha:
            dest = store.path(sha)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        return size, actual
    finally:
        tmp.unlink(missing_ok=True)


def _copy_thumb(source: PhotoStorage, target: PhotoStorage, sha: str) -> None:
    """The thumbnail too (stored before its original, so normally there is one)."""
    try:
        data = source.path(sha, "thumb").read_bytes()
    except FileNotFoundError:
        return
    dest = target.path(sha, "thumb")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.temp_dir, prefix=".thumb-", suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, dest)


def file_sha256(path: Path) -> tuple[int, str]:
    """(size, SHA-256) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def copy_photos(shas: list[str], live: PhotoStorage, directory: str | Path, snapshot: str,
                database: str) -> dict:
    """Copy the named photos that the backup store lacks, and write the snapshot's manifest.

    A photo the live store lacks, or whose bytes no longer hash to its name, is listed in the
    manifest (``missing``, ``corrupt``) rather than copied: ``flask --app server check``
    reports the same on the live instance.
    """
    directory = Path(directory)
    store = LocalPhotoStorage(directory / PHOTOS)
    manifest: dict[str, int] = {}
    missing, corrupt = [], []
    copied = already = copied_bytes = 0
    for sha in shas:
        if store.exists(sha):
            manifest[sha] = store.path(sha).stat().st_size
            already += 1
            continue
        try:
            with live.open(sha) as src:
                size, actual = _copy_verified(src, store, sha)
        except FileNotFoundError:
            missing.append(sha)
            continue
        if actual != sha:
            corrupt.append(sha)
            continue
        manifest[sha] = size
        copied += 1
        copied_bytes += size
        _copy_thumb(live, store, sha)
    if copied:
        os.sync()  # every copy on disk before the manifest that vouches for it
    doc = {"format": 1, "snapshot": snapshot, "database": database,
           "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "photos": manifest, "missing": missing, "corrupt": corrupt}
    path = directory / (snapshot.rsplit(".", 1)[0] + ".manifest.json")
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(doc, indent=0, sort_keys=True))
    _replace_atomically(partial, path)
    return {"manifest": str(path), "named": len(shas), "copied": copied, "already": already,
            "copied_bytes": copied_bytes, "missing": missing, "corrupt": corrupt}


def manifest_of(snapshot: str | Path) -> dict:
    """The manifest written beside a snapshot (``.db``, ``.dump`` or the manifest itself)."""
    snapshot = Path(snapshot)
    stem = snapshot.name.split(".", 1)[0]
    path = snapshot.with_name(stem + ".manifest.json")
    if not path.is_file():
        raise BackupError(f"no manifest {path.name} beside the snapshot: the backup did not "
                          "finish, or it was made without photos")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- pruning


def prune(directory: Path, keep_days: int, today: dt.date) -> list[str]:
    """Remove snapshots and manifests dated ``keep_days`` days or more before ``today``, then
    the backed-up photos no manifest left names."""
    oldest = today - dt.timedelta(days=keep_days - 1)
    removed = []
    for path in sorted(directory.iterdir()):
        match = NAME.match(path.name)
        if match and dt.datetime.strptime(match.group(1), "%Y%m%d").date() < oldest:
            path.unlink()
            removed.append(path.name)
    store_root = directory / PHOTOS
    manifests = sorted(directory.glob("tapak-*.manifest.json"))
    if removed and store_root.is_dir() and manifests:
        wanted: set[str] = set()
        for path in manifests:
            wanted.update(json.loads(path.read_text()).get("photos", {}))
        store = LocalPhotoStorage(store_root)
        for sha in list(store.iter_hashes()):
            if sha not in wanted:
                store.delete(sha)
    return removed


# --------------------------------------------------------------------------- restore


def restore_photos(snapshot: str | Path, target: PhotoStorage) -> dict:
    """Copy the manifest's photos from the backup store into ``target``, each checked against
    its SHA-256 and size; a photo already in ``target`` with the right bytes stays."""
    snapshot = Path(snapshot)
    manifest = manifest_of(snapshot)
    store = LocalPhotoStorage(snapshot.parent / PHOTOS)
    restored = kept = 0
    missing, corrupt = list(manifest.get("missing", [])), []
    for sha, size in sorted(manifest["photos"].items()):
        if target.exists(sha):
            if file_sha256(target.path(sha)) == (size, sha):
                kept += 1
                continue
            target.delete(sha)
        try:
            with store.open(sha) as src:
                got_size, actual = _copy_verified(src, target, sha)
        except FileNotFoundError:
            missing.append(sha)
            continue
        if actual != sha or got_size != size:
            target.delete(sha)
            corrupt.append(sha)
            continue
        restored += 1
        _copy_thumb(store, target, sha)
    if restored:
        os.sync()
    return {"photos": len(manifest["photos"]), "restored": restored, "kept": kept,
            "missing": missing, "corrupt": corrupt}


def restore_sqlite_file(snapshot: str | Path, database: str | Path) -> int:
    """Put a SQLite snapshot in place of ``database`` (no server may be running on it).

    The old file's ``-wal`` and ``-shm`` go first: SQLite would replay an old WAL into the
    restored file. The copy is made beside the target and renamed. Returns its size.
    """
    snapshot, database = Path(snapshot), Path(database)
    source = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    try:
        if source.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"{snapshot.name} fails SQLite's integrity check")
        database.parent.mkdir(parents=True, exist_ok=True)
        partial = database.with_name(database.name + ".restoring")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    _replace_atomically(partial, database)
    return database.stat().st_size


def restore_postgres_dump(snapshot: str | Path, url: str) -> None:
    """``pg_restore --clean`` of a dump into the database ``url`` names (it must exist)."""
    binary = shutil.which("pg_restore")
    if binary is None:
        raise BackupError("pg_restore is not installed: install postgresql-client")
    done = subprocess.run([binary, "--clean", "--if-exists", "--no-owner", "--single-transaction",
                           f"--dbname={libpq_url(url)}", str(snapshot)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[-500:]}")


def new_epoch(url: str) -> int:
    """Start a new feed epoch on the restored database (``feed.reset``), past any the lost
    instance may have reached after the snapshot: at least the minutes since 1970, which no
    run of +1 resets reaches, so no phone's cursor can name the new epoch."""
    engine = create_engine(url)
    configure_engine(engine)
    try:
        with Session(engine) as session, write_transaction(session):
            feed.reset(session)
            state = session.get(FeedState, 1)
            state.epoch = max(state.epoch, int(time.time() // 60))
            return state.epoch
    finally:
        engine.dispose()


def restore(snapshot: str | Path, url: str, photos: PhotoStorage) -> dict:
    """Restore a snapshot and its photos into the instance of ``url`` and ``photos``, then
    start a new feed epoch. Raises ``BackupError`` before touching anything when the
    snapshot's kind and the target's database differ."""
    snapshot = Path(snapshot)
    if not snapshot.is_file():
        raise BackupError(f"no snapshot at {snapshot}")
    manifest_of(snapshot)  # a snapshot without its manifest is refused before any change
    backend = make_url(url).get_backend_name()
    if snapshot.suffix == ".db":
        if backend != "sqlite":
            raise BackupError("a SQLite snapshot restores into a SQLite instance only")
        size = restore_sqlite_file(snapshot, make_url(url).database)
    elif snapshot.suffix == ".dump":
        if backend != "postgresql":
            raise BackupError("a pg_dump file restores into a PostgreSQL database only")
        restore_postgres_dump(snapshot, url)
        size = snapshot.stat().st_size
    else:
        raise BackupError(f"{snapshot.name} is neither a .db snapshot nor a .dump")
    result = restore_photos(snapshot, photos)
    result.update(database_bytes=size, epoch=new_epoch(url))
    return result
