"""Benchmark: registry import against a bare sqlite3 ``executemany`` of the same rows.

    .venv/bin/python -m bench.registry_import --households 1000000
    .venv/bin/python -m bench.registry_import --households 100000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/scratch_reg

Steps: generate N families (JSON Lines, cached under bench/out/); import them into a fresh
SQLite file in a child process (the peak of its anonymous memory, sampled, is the import's
peak memory: its resident set also counts the database pages SQLite's memory map touched,
page cache that is not the import's); import the same extract again (nothing changes); then
the floor: the very rows the importer writes for those families, prepared untimed and
inserted with ``sqlite3.executemany`` into the same tables of another fresh file, in the same
batches and transactions, timing only the inserts and commits.
With ``--database-url`` (a scratch database: its tables are dropped) the import and re-import
also run on PostgreSQL. Targets: import <= 5x the floor, re-import <= the import, peak memory
< 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
BATCH = 2000
MEMORY_LIMIT_MB = 300
FLOOR_FACTOR = 5


def _fresh_schema(url: str) -> None:
    """Empty tables of every model, and the areas loaded (the importer needs kelurahan codes)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401  (every table on the metadata)
    from sync.areas import load_areas
    from sync.db import Base, configure_engine

    engine = create_engine(url)
    configure_engine(engine)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        load_areas(session)
        session.commit()
    engine.dispose()


def _sqlite_url(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def child_import(url: str, extract: str) -> None:
    """Run one import in this process and print its summary and peak memory as JSON."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401
    from sync.db import configure_engine
    from sync.importer import import_extract

    engine = create_engine(url)
    configure_engine(engine)
    with Session(engine) as session, AnonPeak() as anon:
        summary = import_extract(session, extract, label="bench",
                                 rejects=OUT / "bench.rejects.jsonl")
    print(json.dumps({"summary": summary.as_dict(), "peak_mb": round(anon.peak_kb / 1024, 1),
                      "peak_rss_mb": round(peak_rss_kb() / 1024, 1)}))


class AnonPeak:
    """The peak of this process's anonymous memory (``RssAnon``), sampled every 20 ms.

    The resident set (VmHWM) also counts the database file's pages that SQLite's memory map
    (``SQLITE_MMAP_MB``, 1 GB) has touched: page cache the kernel shares and reclaims, not
    memory the import holds. Linux keeps no peak of ``RssAnon``, so a thread samples it."""

    def __init__(self, every: float = 0.02):
        self.every, self.peak_kb = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        return
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> AnonPeak:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if not self.peak_kb:  # no /proc: the resident set it is
            self.peak_kb = peak_rss_kb()


def peak_rss_kb() -> int:
    """This process's own peak resident set: VmHWM on Linux.

    ``ru_maxrss`` survives ``exec`` on Linux, so a child started by a large parent would report
    the parent's size; VmHWM belongs to the current address space only.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_import(url: str, extract: Path) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.registry_import", "--child-import", url, str(extract)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = round(time.perf_counter() - started, 2)
    return result


def floor(extract: Path, db_path: Path) -> dict:
    """Bare sqlite3 executemany of the importer's rows for a first import, inserts timed only."""
    from sync.importer import NEW_FAMILY_TABLES, add_new_family, identity_rows
    from sync.registry import canonical_json, content_hash, normalize_family

    url = _sqlite_url(db_path)
    _fresh_schema(url)
    conn = sqlite3.connect(db_path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("INSERT INTO imports (id, source_path, format, status, started_at, partial, "
                 "n_read, n_inserted, n_updated, n_unchanged, n_rejected, n_removed, "
                 "n_members, n_flagged) VALUES (1, 'floor', 'jsonl', 'done', "
                 "'2026-01-01 00:00:00.000000', 0, 0, 0, 0, 0, 0, 0, 0, 0)")
    statements = {
        name: f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for name, cols in NEW_FAMILY_TABLES.items()
    }
    now_db = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    today = dt.date.today()
    timed = 0.0
    rows = 0

    def flush(tables):
        nonlocal timed, rows
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for name, sql in statements.items():
            conn.executemany(sql, tables[name])
        conn.execute("COMMIT")
        timed += time.perf_counter() - t0
        rows += sum(len(r) for r in tables.values())

    tables = {name: [] for name in NEW_FAMILY_TABLES}
    families = 0
    with open(extract, "rb") as fh:
        for raw in fh:
            rec = normalize_family(json.loads(raw))
            snapshot = canonical_json(rec)
            members, _flagged, kk_json = identity_rows(rec["id_keluarga"], rec, today)
            add_new_family(tables, rec, snapshot, content_hash(snapshot), members, kk_json, 1,
                           now_db)
            families += 1
            if families % BATCH == 0:
                flush(tables)
                tables = {name: [] for name in NEW_FAMILY_TABLES}
    flush(tables)
    conn.close()
    return {"seconds": round(timed, 2), "rows": rows, "families": families}


def _copy_value(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = str(value)
    if any(c in text for c in "\\\t\n\r"):
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text


def prepare_copy(extract: Path, directory: Path, import_id: int) -> dict:
    """The rows a first import writes for ``extract``, as COPY text, one file a table, with
    the byte offset of each batch of ``BATCH`` families: the PostgreSQL floor's input,
    prepared before anything is timed."""
    from sync.importer import NEW_FAMILY_TABLES, add_new_family, identity_rows
    from sync.registry import canonical_json, content_hash, normalize_family

    directory.mkdir(parents=True, exist_ok=True)
    files = {name: open(directory / f"{name}.copy", "w", encoding="utf-8")  # noqa: SIM115
             for name in NEW_FAMILY_TABLES}
    offsets: dict[str, list[int]] = {name: [0] for name in NEW_FAMILY_TABLES}
    now_db = dt.datetime.now(dt.UTC)
    today = dt.date.today()
    families = 0

    def flush(tables):
        for name, rows in tables.items():
            fh = files[name]
            fh.write("".join("\t".join(map(_copy_value, row)) + "\n" for row in rows))
            offsets[name].append(fh.tell())

    tables = {name: [] for name in NEW_FAMILY_TABLES}
    with open(extract, "rb") as fh:
        for raw in fh:
            rec = normalize_family(json.loads(raw))
            snapshot = canonical_json(rec)
            members, _flagged, kk_json = identity_rows(rec["id_keluarga"], rec, today)
            add_new_family(tables, rec, snapshot, content_hash(snapshot), members, kk_json,
                           import_id, now_db)
            families += 1
            if families % BATCH == 0:
                flush(tables)
                tables = {name: [] for name in NEW_FAMILY_TABLES}
    flush(tables)
    for fh in files.values():
        fh.close()
    return {"families": families, "offsets": offsets,
            "bytes": sum(offsets[name][-1] for name in offsets)}


def pg_floor(url: str, directory: Path, prepared: dict) -> dict:
    """The PostgreSQL floor: the prepared rows sent with a bare ``COPY`` per table, in the
    importer's batches (``BATCH`` families a transaction) and into the same schema; only the
    COPYs and commits are timed."""
    import mmap

    import psycopg
    from sqlalchemy.engine import make_url

    from sync.importer import NEW_FAMILY_TABLES

    u = make_url(url)
    conn = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                           password=u.password, dbname=u.database)
    maps = {}
    handles = []
    for name in NEW_FAMILY_TABLES:
        fh = open(directory / f"{name}.copy", "rb")  # noqa: SIM115
        handles.append(fh)
        size = prepared["offsets"][name][-1]
        maps[name] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    batches = len(prepared["offsets"]["keluarga"]) - 1
    timed = 0.0
    try:
        for b in range(batches):
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                for name, cols in NEW_FAMILY_TABLES.items():
                    lo, hi = prepared["offsets"][name][b], prepared["offsets"][name][b + 1]
                    if hi > lo:
                        with cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as cp:
                            cp.write(maps[name][lo:hi])
            conn.commit()
            timed += time.perf_counter() - t0
    finally:
        conn.close()
        for m in maps.values():
            if isinstance(m, mmap.mmap):
                m.close()
        for fh in handles:
            fh.close()
    return {"seconds": round(timed, 2), "families": prepared["families"],
            "bytes": prepared["bytes"]}


def changed_extract(extract: Path, share: float = 0.1, seed: int = 5) -> tuple[Path, int]:
    """A copy of ``extract`` where ``share`` of the families have moved house (a new address
    and RT): what a monthly DTSEN extract brings. Cached beside the extract."""
    path = extract.with_name("changed.jsonl")
    done = extract.with_name(".changed_complete")
    if done.exists() and path.exists():
        return path, int(done.read_text() or 0)
    rng = random.Random(seed)
    changed = 0
    with open(extract, "rb") as src, open(path, "w", encoding="utf-8") as dst:
        for raw in src:
            if rng.random() < share:
                rec = json.loads(raw)
                rec["alamat"] = f"{rec.get('alamat') or 'Jl.'} (pindah {rng.randint(1, 99)})"
                rec["rt"] = f"{rng.randint(1, 20):03d}"
                dst.write(json.dumps(rec, ensure_ascii=False) + "\n")
                changed += 1
            else:
                dst.write(raw.decode("utf-8"))
    done.write_text(str(changed))
    return path, changed


def ensure_extract(households: int, seed: int) -> tuple[Path, float | None]:
    """The JSON Lines extract for (households, seed), generated once and cached."""
    from sync.generator import generate

    directory = OUT / f"registry_{households}_{seed}"
    extract = directory / "keluarga.jsonl"
    done = directory / ".complete"
    if done.exists() and extract.exists():
        return extract, None
    started = time.perf_counter()
    generate(directory, households, seed, "jsonl")
    done.touch()
    return extract, round(time.perf_counter() - started, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL scratch database to run the import on too (wiped).")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--child-import", nargs=2, metavar=("URL", "EXTRACT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_import:
        child_import(*args.child_import)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    extract, gen_seconds = ensure_extract(args.households, args.seed)
    size_mb = extract.stat().st_size / 1e6
    print(f"extract: {args.households} families, {size_mb:.0f} MB"
          + (f", generated in {gen_seconds} s" if gen_seconds is not None else " (cached)"),
          flush=True)
    results: dict = {"households": args.households, "seed": args.seed, "extract_mb": size_mb,
                     "generate_seconds": gen_seconds}
    rows = []
    ok = True
    if not args.skip_sqlite:
        # The floor first, and the disk flushed before each step, so that no step pays for
        # the write-back of the one before it.
        os.sync()
        base = floor(extract, OUT / "bench_floor.db")
        print(f"sqlite floor: {base['seconds']} s", flush=True)
        url = _sqlite_url(OUT / "bench_import.db")
        _fresh_schema(url)
        os.sync()
        first = run_import(url, extract)
        print(f"sqlite import: {first['summary']['seconds']} s", flush=True)
        os.sync()
        again = run_import(url, extract)
        print(f"sqlite re-import: {again['summary']['seconds']} s", flush=True)
        ratio = first["summary"]["seconds"] / base["seconds"]
        results["sqlite"] = {"import": first, "reimport": again, "floor": base,
                             "ratio": round(ratio, 2)}
        n, members = args.households, first["summary"]["members"]
        rows += [
            ("sqlite floor (executemany)", base["seconds"], n, "-", "-"),
            ("sqlite import", first["summary"]["seconds"], n, first["peak_mb"],
             f"{ratio:.2f}x floor (<= {FLOOR_FACTOR}x)"),
            ("sqlite re-import (unchanged)", again["summary"]["seconds"], n, again["peak_mb"],
             f"{again['summary']['seconds'] / first['summary']['seconds']:.2f}x import (<= 1x)"),
        ]
        ok &= ratio <= FLOOR_FACTOR
        ok &= again["summary"]["seconds"] <= first["summary"]["seconds"]
        ok &= max(first["peak_mb"], again["peak_mb"]) < MEMORY_LIMIT_MB
        results["members"] = members
        results["floor_rows"] = base["rows"]
    if args.database_url:
        _fresh_schema(args.database_url)
        os.sync()
        first = run_import(args.database_url, extract)
        print(f"postgresql import: {first['summary']['seconds']} s", flush=True)
        os.sync()
        again = run_import(args.database_url, extract)
        results["postgresql"] = {"import": first, "reimport": again}
        n = args.households
        rows += [
            ("postgresql import", first["summary"]["seconds"], n, first["peak_mb"], "-"),
            ("postgresql re-import (unchanged)", again["summary"]["seconds"], n,
             again["peak_mb"], f"{again['summary']['seconds'] / first['summary']['seconds']:.2f}x"
             " import (<= 1x)"),
        ]
        ok &= max(first["peak_mb"], again["peak_mb"]) < MEMORY_LIMIT_MB
        ok &= again["summary"]["seconds"] <= first["summary"]["seconds"]

    print()
    print(f"{'step':34} {'seconds':>9} {'families/s':>11} {'peak MB':>8}  target")
    for name, seconds, n, peak, target in rows:
        print(f"{name:34} {seconds:>9.1f} {n / seconds:>11,.0f} {peak!s:>8}  {target}")
    if "members" in results:
        print(f"\n{args.households} families, {results['members']} members, "
              f"{results['floor_rows']} rows per first import; peak memory limit "
              f"{MEMORY_LIMIT_MB} MB")
    print("targets met" if ok else "TARGETS MISSED")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (OUT / f"registry_import_{args.households}_{stamp}.json").write_text(
        json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
