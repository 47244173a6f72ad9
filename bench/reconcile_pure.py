"""Benchmark: the pure part of reconciliation alone (``three_way`` and ``run_rules``), per visit.

    .venv/bin/python -m bench.reconcile_pure [--db bench/out/reconcile_100000_10000_3.db]
        [--visits 2000] [--repeat 5] [--save-reference F | --check F]

Setup (untimed): a copy of a database ``bench.reconcile --cache`` built; one worker batch
after another is run through the real worker (``sync.reconcile.worker.process_visits``) with
``three_way`` and ``run_rules`` wrapped, so that their inputs (the records, answers, rule
contexts with the batch's lookups) are captured exactly as the worker gives them. Timed: both
functions over the captured inputs, ``--repeat`` times; the best pass is printed as
microseconds a visit. ``--save-reference`` writes every output (canonical JSON) to a file;
``--check`` compares the outputs with such a file, so a faster version can be shown to decide
exactly as the one before it.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = ROOT / "bench" / "out" / "reconcile_100000_10000_3.db"


def capture(db: Path, visits: int, batch: int = 200) -> list[tuple]:
    """Run the worker over ``visits`` visits of a copy of ``db``; return the pure calls' inputs
    as (three_way args, rules context, config)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    import server.models  # noqa: F401
    from bench.reconcile import sqlite_copy
    from sync.db import ENGINE_OPTIONS, configure_engine
    from sync.queue import claim
    from sync.reconcile import worker

    work = Path(tempfile.mkdtemp(prefix="pure-"))
    copy = work / "pure.db"
    sqlite_copy(db, copy)
    engine = create_engine(f"sqlite:///{copy}", **ENGINE_OPTIONS)
    configure_engine(engine)
    calls: list[list] = []
    real_three_way, real_run_rules = worker.three_way, worker.run_rules

    def three_way(*args):
        calls.append([args, None])
        return real_three_way(*args)

    def run_rules(ctx, config):
        calls[-1][1] = (ctx, config)
        return real_run_rules(ctx, config)

    worker.three_way, worker.run_rules = three_way, run_rules
    session = Session(engine)
    try:
        done = 0
        while done < visits:
            uuids = claim(session, "pure", limit=min(batch, visits - done))
            if not uuids:
                break
            worker.process_visits(session, uuids)
            done += len(uuids)
    finally:
        worker.three_way, worker.run_rules = real_three_way, real_run_rules
        session.close()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return [(args, *rest) for args, rest in calls if rest is not None]


def run(calls: list[tuple]) -> list:
    from sync.reconcile.compare import three_way
    from sync.reconcile.rules import run_rules

    out = []
    for args, ctx, config in calls:
        cmp = three_way(*args)
        ctx.proposed_changes = cmp.changed_fields
        out.append((cmp, cmp.drafts(config), run_rules(ctx, config)))
    return out


def canonical(results: list) -> list[str]:
    rows = []
    for cmp, drafts, rules in results:
        rows.append(json.dumps({
            "outcomes": [[o.path, o.field, o.outcome, o.severity, o.base_value,
                          o.current_value, o.visit_value, o.auto_accept] for o in cmp.outcomes],
            "changes": cmp.changes_to_apply, "skipped": list(cmp.skipped),
            "proposed": cmp.proposed_changes, "changed": cmp.changed_fields,
            "drafts": drafts, "rules": rules}, sort_keys=True, default=str, ensure_ascii=False))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--save-reference", type=Path)
    parser.add_argument("--check", type=Path)
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} is missing: build it with python -m bench.reconcile --cache "
                     "--build-only --households 100000 --visits 10000")
    calls = capture(args.db, args.visits)
    # The captured inputs are long-lived (a worker's are gone after their batch): keep full
    # collections from walking them in the timed passes.
    gc.freeze()
    print(f"captured {len(calls):,} visits from {args.db.name}", file=sys.stderr)
    results = run(calls)
    rows = canonical(results)
    if args.save_reference:
        args.save_reference.write_text("\n".join(rows) + "\n", encoding="utf-8")
        print(f"reference written to {args.save_reference}")
    ok = True
    if args.check:
        ref = args.check.read_text(encoding="utf-8").splitlines()
        diff = [i for i, (a, b) in enumerate(zip(ref, rows, strict=False)) if a != b]
        ok = not diff and len(ref) == len(rows)
        print(f"outputs {'identical to' if ok else 'DIFFER from'} the reference "
              f"({len(diff)} of {len(rows)} differ)")
        for i in diff[:3]:
            print(f"  visit {i}:\n    ref {ref[i][:600]}\n    new {rows[i][:600]}")
    best = {"three_way": float("inf"), "rules": float("inf")}
    from sync.reconcile.compare import three_way
    from sync.reconcile.rules import run_rules
    clock = time.perf_counter
    for _ in range(args.repeat):
        # one visit at a time, its results dropped after it, as in the worker
        tw = ru = 0.0
        for args_, ctx, config in calls:
            t0 = clock()
            cmp = three_way(*args_)
            t1 = clock()
            ctx.proposed_changes = cmp.changed_fields
            cmp.drafts(config)
            run_rules(ctx, config)
            t2 = clock()
            tw += t1 - t0
            ru += t2 - t1
        best["three_way"] = min(best["three_way"], tw)
        best["rules"] = min(best["rules"], ru)
    n = len(calls)
    tw, ru = (best[k] / n * 1e6 for k in ("three_way", "rules"))
    print(f"{n:,} visits, best of {args.repeat}: three_way {tw:.0f} µs, drafts + rules "
          f"{ru:.0f} µs, together {tw + ru:.0f} µs a visit ({1e6 / (tw + ru):,.0f} visits/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
