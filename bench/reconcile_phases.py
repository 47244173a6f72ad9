"""Where the reconciliation worker's time goes: wall time per step, in µs a visit, no profiler.

    .venv/bin/python -m bench.reconcile_phases [--db bench/out/reconcile_1000000_100000_3.db]
        [--visits 10000] [--batch 500] [--cache-mb N] [--mmap-mb N]

Setup (untimed): a copy of a file ``bench.reconcile --cache`` built (``sqlite_copy``: the
models' indexes as they are now), the worker's phash index built. Timed: ``run_once``
batch after batch over ``--visits`` visits, inside ``background_checkpoints`` and
``reading_ahead`` as ``drain`` runs them, with the worker's steps (``_load``, ``three_way``,
``run_rules``, ``_write_visits``...), its lookups (by statement), the commits and the garbage
collector's passes timed by wrapping them. Steps nest (``_reconcile`` holds ``three_way``
and ``run_rules``; ``_load`` holds ``_photo_sites``...), so the lines do not add up to the
total. cProfile would weigh Python
calls several times heavier than SQLite's C; this does not. The figures swing by up to ±25%
from run to run on a shared virtual machine: compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "bench" / "out" / "reconcile_1000000_100000_3.db"
STEPS = ("_read_visits", "_load", "_photo_sites", "_previous_visits", "_reconcile", "three_way",
         "run_rules", "_store_conflicts", "_write_staged", "_write_records", "_write_visits",
         "_insert_conflicts", "_write_finish", "_release_successors", "next_in_queue")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--visits", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--cache-mb", type=int, help="SQLITE_CACHE_MB (default: the worker's)")
    parser.add_argument("--mmap-mb", type=int, help="SQLITE_MMAP_MB (default: the worker's)")
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} is missing: build it with python -m bench.reconcile --cache "
                     "--build-only")

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401
    from bench.reconcile import sqlite_copy
    from sync import feed
    from sync.db import ENGINE_OPTIONS, background_checkpoints, configure_engine
    from sync.reconcile import near_copies, prefetch, worker

    spent: Counter = Counter()

    def timed(module, name: str, label: str) -> None:
        real = getattr(module, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                spent[label] += time.perf_counter() - t
        setattr(module, name, wrapper)

    for name in STEPS:
        timed(worker, name, name)
    timed(feed, "emit", "feed.emit")
    timed(near_copies.PhashIndex, "others_of", "PhashIndex.others_of")
    timed(near_copies.PhashIndex, "refresh", "PhashIndex.refresh")
    names = {id(v): k for k, v in vars(worker).items() if k.isupper() or k[1:].isupper()}

    def by_statement(name: str) -> None:
        """Time ``worker.<name>(session, statement, ids)`` under the statement's name."""
        real = getattr(worker, name)

        def wrapper(session, stmt, ids):
            t = time.perf_counter()
            try:
                return real(session, stmt, ids)
            finally:
                spent["  lookup " + names.get(id(stmt), "?")] += time.perf_counter() - t
        setattr(worker, name, wrapper)

    by_statement("_rows")
    by_statement("_raw_rows")  # the driver SQL lookups (NIK and KK holders, shared photos)

    work = Path(tempfile.mkdtemp(prefix="phases-", dir=ROOT / "bench" / "out"))
    try:
        url = sqlite_copy(args.db, work / "phases.db")
        engine = create_engine(url, **ENGINE_OPTIONS)
        configure_engine(engine, **{k: v for k, v in (("cache_mb", args.cache_mb),
                                                      ("mmap_mb", args.mmap_mb)) if v})

        started: dict = {}

        def gc_pass(phase, info):
            if phase == "start":
                started["t"] = time.perf_counter()
            else:
                spent[f"gc generation {info['generation']}"] += time.perf_counter() - started["t"]

        session = Session(engine)
        near_copies.index_for(session)  # built before the clock starts
        session.commit()
        real_commit = Session.commit

        def commit(self):
            t = time.perf_counter()
            try:
                return real_commit(self)
            finally:
                spent["commit"] += time.perf_counter() - t
        Session.commit = commit
        gc.callbacks.append(gc_pass)
        spent.clear()  # the index build above is not the worker's batches
        done, t0 = 0, time.perf_counter()
        with background_checkpoints(engine), prefetch.reading_ahead(session, worker._read_ahead):
            while done < args.visits:
                got = worker.run_once(session, "phases", args.batch)
                if not got:
                    break
                done += len(got)
        wall = time.perf_counter() - t0
        gc.callbacks.remove(gc_pass)
        Session.commit = real_commit
        session.close()
        engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{done:,} visits in {wall:.2f} s: {done / wall:,.0f} visits/s, "
          f"{wall / done * 1e6:.0f} µs a visit (batches of {args.batch})")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:32s} {seconds / done * 1e6:7.0f} µs a visit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
