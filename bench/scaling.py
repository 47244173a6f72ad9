"""Benchmark: each cost of Tapak against the registry's size, on PostgreSQL (issue 19).

    .venv/bin/python -m bench.scaling [--sizes 100000,1000000,3000000]
        [--steps import,pull,pages,reconcile] [--again] [--plot-only]

For each size, from a template database built once by ``bench.dataset.ensure_template``
(``tapak_bench_100k``, ``tapak_bench_1m``, ``tapak_bench_3m``: the families as the importer
writes them, 1,000 enumerators, or one per 1,000 families below 1,000,000, with 300 families
each in one round, 20 supervisors) and copied for each run (``CREATE DATABASE ... TEMPLATE``):

* ``import``: a generated extract of that size (``bench.registry_import``'s, cached) imported
  by the real importer into a fresh migrated database, in a child process; then a changed
  extract (one family in ten has moved: new address and RT) imported over it. The floor, in the
  same run: the very rows of the first import, prepared in advance as COPY text, sent with a
  bare ``COPY`` per table in the importer's batches into another fresh migrated database.
* ``pull``: an enumerator's first full pull (300 families, every page) and an empty delta pull,
  server time through Flask's test client (``bench.pull_feed.measure``).
* ``pages``: open conflicts (one for five families) and 30,000 processed visits of assigned
  families, spread over the round's 52 weeks, are added (``bench.dataset``; the monitoring
  counters drained once), then the queue (API and page), the
  dashboard and the monitoring view (page and API), server time (``bench.review_queue``).
* ``reconcile``: 20,000 queued visits of unassigned families (``bench.reconcile.queue_visits``)
  drained by 1 worker process, then 20,000 more by 2 worker processes on the same queue.

Results go to ``bench/out/scaling.json`` after each step; a step already there is skipped
(``--again`` runs it again), so an interrupted matrix resumes. The plot of every cost against
the size is written to ``docs/scaling.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
RESULTS = OUT / "scaling.json"
PLOT = ROOT / "docs" / "scaling.png"
STEPS = ("import", "pull", "pages", "reconcile")
RECONCILE_VISITS = 20_000
PAGE_VISITS = 30_000  # processed visits behind the pages, the same at every size
PER_ENUMERATOR = 300


def log(msg: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def label(size: int) -> str:
    return f"{size // 1_000_000}m" if size % 1_000_000 == 0 else f"{size // 1000}k"


def run_db(size: int) -> str:
    """The run's copy of the template (one name a size: two runs may go side by side)."""
    return f"scaling_run_{label(size)}"


def template_name(size: int) -> str:
    return f"tapak_bench_{label(size)}"


def enumerators_for(size: int) -> int:
    return min(1000, size // 1000)


def load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}


def save(size: int, step: str, value: dict) -> dict:
    """Store one step's result, merged into the file as it is now (two runs of this script,
    on different sizes or steps, may write it in turn); return the whole."""
    OUT.mkdir(exist_ok=True)
    results = load()
    results["runs"].setdefault(str(size), {})[step] = value
    tmp = RESULTS.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(RESULTS)
    return results


def context() -> dict:
    """What else the machine was doing: the load average over the last minute."""
    return {"loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def stats(values: list[float]) -> dict:
    from bench.pull_feed import percentile

    return {"median": round(statistics.median(values), 2),
            "p95": round(percentile(values, 95), 2), "n": len(values)}


# --------------------------------------------------------------------------- steps


def step_import(size: int, order: tuple[str, ...] = ("floor", "import")) -> dict:
    """The floor and the import (with the re-import of the changed extract), in ``order``;
    what is measured is saved as it comes (``import_partial``), so a run cut short keeps it."""
    from bench.registry_import import changed_extract, ensure_extract

    extract, gen_s = ensure_extract(size, 1)
    changed, n_changed = changed_extract(extract)
    log(f"  extract {extract} ({extract.stat().st_size / 1e9:.2f} GB), {n_changed:,} changed")
    out: dict = {"extract_gb": round(extract.stat().st_size / 1e9, 2),
                 "generate_s": gen_s, "changed_families": n_changed}
    for part in order:
        (_floor if part == "floor" else _import)(size, extract, changed, out)
        save(size, "import_partial", out)
    out["import_x_floor"] = round(out["import_s"] / out["floor_s"], 2)
    verdict = "met" if out["import_x_floor"] <= 3 else "MISSED"
    log(f"  import / floor = {out['import_x_floor']:.2f}x (target <= 3x: {verdict})")
    return out


def _floor(size: int, extract: Path, changed: Path, out: dict) -> None:
    """The floor: the first import's rows prepared first, then only the COPYs timed."""
    from bench import dataset
    from bench.registry_import import pg_floor, prepare_copy

    url = _fresh(f"scaling_floor_{label(size)}")
    dataset.dispose(dataset.prepare(url))
    import_id = _imports_row(url)
    prepared_dir = OUT / f"floor_{size}"
    t0 = time.perf_counter()
    prepared = prepare_copy(extract, prepared_dir, import_id)
    out["floor_prepare_s"] = round(time.perf_counter() - t0, 1)
    log(f"  floor rows prepared ({prepared['bytes'] / 1e9:.2f} GB) in "
        f"{out['floor_prepare_s']:.0f} s")
    os.sync()
    out["floor"] = {**pg_floor(url, prepared_dir, prepared), **context()}
    out["floor_s"] = out["floor"]["seconds"]
    log(f"  floor: bare COPY {out['floor_s']:.0f} s")
    shutil.rmtree(prepared_dir, ignore_errors=True)
    dataset.drop_database(f"scaling_floor_{label(size)}")


def _import(size: int, extract: Path, changed: Path, out: dict) -> None:
    """The import and the re-import of the changed extract, each in a child process."""
    from bench import dataset
    from bench.registry_import import run_import

    url = _fresh(f"scaling_import_{label(size)}")
    dataset.dispose(dataset.prepare(url))
    os.sync()
    first = run_import(url, extract)
    out["import"] = {**first, **context()}
    out["import_s"] = first["summary"]["seconds"]
    log(f"  import {out['import_s']:.0f} s")
    save(size, "import_partial", out)
    os.sync()
    again = run_import(url, changed)
    out["reimport_changed"] = {**again, **context()}
    out["reimport_s"] = again["summary"]["seconds"]
    log(f"  re-import of the changed extract {out['reimport_s']:.0f} s "
        f"({again['summary']['updated']:,} updated)")
    dataset.drop_database(f"scaling_import_{label(size)}")


def _fresh(name: str) -> str:
    from sqlalchemy import text

    from bench import dataset

    dataset.drop_database(name)
    engine = dataset._admin()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return dataset.server_url(name)


def _imports_row(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        imp = conn.execute(text(
            "INSERT INTO imports (label, source_path, format, status, started_at, partial, "
            "n_read, n_inserted, n_updated, n_unchanged, n_rejected, n_removed, n_members, "
            "n_flagged) VALUES ('floor', 'floor', 'jsonl', 'done', now(), false, 0, 0, 0, 0, "
            "0, 0, 0, 0) RETURNING id")).scalar_one()
    engine.dispose()
    return imp


def _run_copy(size: int) -> tuple[str, object]:
    """A fresh copy of the size's template (built if missing), migrated; (url, app)."""
    from bench import dataset

    template = template_name(size)
    t0 = time.perf_counter()
    dataset.ensure_template(template, size, enumerators=enumerators_for(size),
                            per_enumerator=PER_ENUMERATOR, supervisors=20)
    log(f"  template {template} ready ({time.perf_counter() - t0:.0f} s)")
    t0 = time.perf_counter()
    url = dataset.copy_database(template, run_db(size))
    log(f"  copied to {run_db(size)} in {time.perf_counter() - t0:.0f} s")
    app = dataset.make_app(url)
    dataset.upgrade(app)
    return url, app


def step_pull(size: int, app, sample: int) -> dict:
    from bench import dataset, pull_feed

    names = [dataset.ENUMERATOR.format(e) for e in range(enumerators_for(size))]
    result = pull_feed.measure(app, sample, names, PER_ENUMERATOR)
    return {"first_pull_ms": {"median": round(result["full_median_ms"], 1),
                              "p95": round(result["full_p95_ms"], 1)},
            "empty_pull_ms": {"median": round(result["empty_median_ms"], 2),
                              "p95": round(result["empty_p95_ms"], 2)},
            "bytes_per_family_gzip": round(result["bytes_per_family_gzip"]),
            **context()}


def _pull_on_template(size: int, sample: int) -> dict:
    """The pull step on the template database itself: a pull only reads, apart from the API
    tokens issued for it, which are deleted afterwards (the template had none)."""
    from sqlalchemy import create_engine, text

    from bench import dataset

    url = dataset.server_url(template_name(size))
    engine = create_engine(url)
    with engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM api_tokens")).scalar():
            raise SystemExit("the template holds API tokens: not measuring on it")
    app = dataset.make_app(url)
    try:
        out = step_pull(size, app, sample)
    finally:
        dataset.dispose(app)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM api_tokens"))
        engine.dispose()
    out["on_template"] = True
    return out


def step_pages(size: int, url: str, app, sample: int) -> dict:
    from sqlalchemy import create_engine

    from bench import dataset, review_queue
    from sync.db import configure_engine

    engine = create_engine(url)
    configure_engine(engine)
    round_id = 1
    built = dataset.build_conflicts(engine, round_id, size // 5)
    built.update(dataset.build_visits(engine, round_id, limit=PAGE_VISITS))
    dataset.analyze(engine)
    engine.dispose()
    kelurahan = review_queue.kelurahan_of(app)
    api = review_queue.measure(app, kelurahan, sample)
    pages = review_queue.measure_pages(app, kelurahan, max(20, sample // 4))
    times = pages["times"]
    return {"setup": built,
            "queue_api_ms": stats(api["queue"]),
            "dashboard_kecamatan_ms": stats(api["kecamatan"]),
            "dashboard_kelurahan_ms": stats(api["kelurahan"]),
            "queue_page_ms": stats(times["queue"]),
            "conflict_page_ms": stats(times["conflict"]),
            "monitoring_page_ms": stats(times["monitoring"]),
            "monitoring_api_ms": stats(times["monitoring_api"]),
            "weights_kb": {k: round(v / 1000, 1) for k, v in pages["weight"].items()},
            **context()}


def step_reconcile(size: int, url: str, visits: int) -> dict:
    from bench import reconcile

    out: dict = {"visits_per_run": visits}
    total = 0
    for workers, prefix, seed in ((1, "ra-", 31), (2, "rb-", 32)):
        t0 = time.perf_counter()
        built = reconcile.queue_visits(url, visits, seed, prefix=prefix)
        log(f"  {visits:,} visits queued in {time.perf_counter() - t0:.0f} s")
        runs = _run_workers(url, workers, prefix)
        total += visits
        seconds = max(r["ended"] for r in runs) - min(r["started"] for r in runs)
        out[f"workers_{workers}"] = {
            "seconds": round(seconds, 1), "visits_per_s": round(visits / seconds),
            "per_worker": [r["processed"] for r in runs],
            "cpu_s": [round(r.get("cpu", 0), 1) for r in runs], "kinds": built["kinds"],
            **context()}
        log(f"  {workers} worker(s): {visits / seconds:,.0f} visits/s")
    out.update(_check(url, total))
    return out


def _check(url: str, total: int) -> dict:
    """The drained visits (claimed by this step's workers): each processed once."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        status = dict(conn.execute(text(
            "SELECT status, count(*) FROM visits WHERE claimed_by LIKE 'r_-w%' "
            "GROUP BY status")).all())
        attempts = dict(conn.execute(text(
            "SELECT attempts, count(*) FROM visits WHERE claimed_by LIKE 'r_-w%' "
            "GROUP BY attempts")).all())
        queued = conn.execute(text(
            "SELECT count(*) FROM visits WHERE status = 'queued'")).scalar()
    engine.dispose()
    done = status.get("verified", 0) + status.get("needs_review", 0)
    return {"exactly_once": done == total and attempts == {1: total} and queued == 0,
            "status": status}


def _run_workers(url: str, workers: int, prefix: str) -> list[dict]:
    from bench.reconcile import run_workers

    return run_workers(url, workers, 500, 0, prefix=prefix)


# --------------------------------------------------------------------------- plot

SERIES = (
    # (panel, name, path in the step's result, unit)
    ("import", "import", ("import", "import_s"), "s"),
    ("import", "re-import, changed extract", ("import", "reimport_s"), "s"),
    ("import", "floor: bare COPY", ("import", "floor_s"), "s"),
    ("pull", "first pull (300 families)", ("pull", "first_pull_ms", "median"), "ms"),
    ("pull", "empty pull", ("pull", "empty_pull_ms", "median"), "ms"),
    ("pages", "queue page", ("pages", "queue_page_ms", "median"), "ms"),
    ("pages", "queue API", ("pages", "queue_api_ms", "median"), "ms"),
    ("pages", "dashboard (kecamatan)", ("pages", "dashboard_kecamatan_ms", "median"), "ms"),
    ("pages", "monitoring view", ("pages", "monitoring_page_ms", "median"), "ms"),
    ("pages", "monitoring API", ("pages", "monitoring_api_ms", "median"), "ms"),
    ("reconcile", "1 worker", ("reconcile", "workers_1", "visits_per_s"), "visits/s"),
    ("reconcile", "2 workers", ("reconcile", "workers_2", "visits_per_s"), "visits/s"),
)
TITLES = {"import": "Import (seconds)", "pull": "Pull, server time (ms, median)",
          "pages": "Supervisor pages, server time (ms, median)",
          "reconcile": "Reconciliation (visits/s, higher is better)"}


def _get(run: dict, path: tuple):
    value = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def plot(results: dict, path: Path = PLOT) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {int(k): {**v, "import": v.get("import") or v.get("import_partial") or {}}
            for k, v in results["runs"].items()}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, panel in zip(axes.flat, TITLES, strict=True):
        for _panel, name, keys, _unit in (s for s in SERIES if s[0] == panel):
            points = sorted((size, _get(run, keys)) for size, run in runs.items()
                            if _get(run, keys) is not None)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xscale("log")
        if panel == "import":
            ax.set_yscale("log")
        ax.set_xlabel("families")
        ax.set_title(TITLES[panel], fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Tapak on PostgreSQL 15 against the registry's size (2 shared cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


ROWS = (
    # (label, path, format)
    ("Import (s)", ("import", "import_s"), "{:,.0f}"),
    ("Import, families a second", ("import", "import_rate"), "{:,.0f}"),
    ("Floor: bare COPY of the same rows (s)", ("import", "floor_s"), "{:,.0f}"),
    ("Import ÷ floor (target ≤ 3×)", ("import", "import_x_floor"), "{:.2f}×"),
    ("Re-import, changed extract (s)", ("import", "reimport_s"), "{:,.0f}"),
    ("Import peak memory (MB, RssAnon)", ("import", "import", "peak_mb"), "{:,.0f}"),
    ("First pull, 300 families (ms, median)", ("pull", "first_pull_ms", "median"), "{:.0f}"),
    ("First pull (ms, p95)", ("pull", "first_pull_ms", "p95"), "{:.0f}"),
    ("Empty pull (ms, median)", ("pull", "empty_pull_ms", "median"), "{:.1f}"),
    ("Queue API, 50 rows of a kelurahan (ms, median)", ("pages", "queue_api_ms", "median"),
     "{:.0f}"),
    ("Queue page /review/antrean (ms, median)", ("pages", "queue_page_ms", "median"), "{:.0f}"),
    ("Dashboard, level=kecamatan (ms, median)", ("pages", "dashboard_kecamatan_ms", "median"),
     "{:.0f}"),
    ("Monitoring view /review/pemantauan (ms, median)", ("pages", "monitoring_page_ms",
                                                         "median"), "{:.0f}"),
    ("Monitoring API, level=kecamatan (ms, median)", ("pages", "monitoring_api_ms", "median"),
     "{:.0f}"),
    ("Monitoring drain of the visited families (s)", ("pages", "setup", "drain_s"), "{:,.0f}"),
    ("Reconciliation, 1 worker (visits/s)", ("reconcile", "workers_1", "visits_per_s"),
     "{:,.0f}"),
    ("Reconciliation, 1 worker: worker CPU a visit (ms)", ("reconcile", "workers_1",
                                                           "cpu_ms_per_visit"), "{:.2f}"),
    ("Reconciliation, 2 workers (visits/s)", ("reconcile", "workers_2", "visits_per_s"),
     "{:,.0f}"),
    ("Reconciliation, 2 workers: worker CPU a visit (ms)", ("reconcile", "workers_2",
                                                            "cpu_ms_per_visit"), "{:.2f}"),
    ("Load average at the pull step (1 min, 2 cores)", ("pull", "loadavg_1m"), "{:.1f}"),
)


def _derived(run: dict) -> dict:
    """Figures computed from the stored ones (rates, CPU per visit)."""
    run = {**run, "import": dict(run.get("import") or run.get("import_partial") or {})}
    imp = run["import"]
    if "import_s" in imp and "import" in imp:
        imp["import_rate"] = imp["import"]["summary"]["read"] / imp["import_s"]
    if "import_s" in imp and "floor_s" in imp:
        imp["import_x_floor"] = imp["import_s"] / imp["floor_s"]
    rec = run.get("reconcile") or {}
    for key in ("workers_1", "workers_2"):
        if key in rec:
            rec[key] = {**rec[key], "cpu_ms_per_visit":
                        sum(rec[key]["cpu_s"]) * 1000 / rec["visits_per_run"]}
    return run


def table(results: dict) -> str:
    """The measurements as a Markdown table, one column a size."""
    runs = {int(k): _derived(v) for k, v in results["runs"].items()}
    sizes = sorted(runs)
    lines = ["| Measure | " + " | ".join(f"{s:,}" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for name, keys, fmt in ROWS:
        cells = []
        for size in sizes:
            value = _get(runs[size], keys)
            cells.append("–" if value is None else fmt.format(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--again", action="store_true", help="run steps already measured")
    parser.add_argument("--sample", type=int, default=30, help="enumerators pulled; pages x")
    parser.add_argument("--visits", type=int, default=RECONCILE_VISITS)
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--table", action="store_true", help="print the Markdown table")
    parser.add_argument("--pull-on-template", action="store_true",
                        help="measure the pull on the template itself (no copy: for a disk "
                             "without room for one); its tokens are deleted afterwards")
    parser.add_argument("--import-first", action="store_true",
                        help="the import before its floor (a run cut short keeps the import)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    results = load()
    if args.plot_only:
        plot(results)
        return 0
    if args.table:
        print(table(results))
        return 0
    steps = [s for s in args.steps.split(",") if s]
    for size in (int(s) for s in args.sizes.split(",")):
        run = results["runs"].setdefault(str(size), {})
        todo = [s for s in steps if args.again or s not in run]
        log(f"{size:,} families: {', '.join(todo) or 'nothing to do'}")
        if "import" in todo:
            order = ("import", "floor") if args.import_first else ("floor", "import")
            run["import"] = step_import(size, order)
            results = save(size, "import", run["import"])
        live = [s for s in todo if s != "import"]
        if not live:
            continue
        if args.pull_on_template:
            if live != ["pull"]:
                parser.error("--pull-on-template is for the pull step alone")
            run["pull"] = _pull_on_template(size, args.sample)
            results = save(size, "pull", run["pull"])
            continue
        url, app = _run_copy(size)
        try:
            if "pull" in live:
                run["pull"] = step_pull(size, app, args.sample)
                log(f"  pull: {run['pull']['first_pull_ms']}, {run['pull']['empty_pull_ms']}")
                results = save(size, "pull", run["pull"])
            if "pages" in live:
                run["pages"] = step_pages(size, url, app, args.sample * 4)
                log(f"  pages: queue {run['pages']['queue_page_ms']}, monitoring "
                    f"{run['pages']['monitoring_page_ms']}")
                results = save(size, "pages", run["pages"])
            if "reconcile" in live:
                run["reconcile"] = step_reconcile(size, url, args.visits)
                results = save(size, "reconcile", run["reconcile"])
        finally:
            from bench import dataset

            dataset.dispose(app)
            dataset.drop_database(run_db(size))
        plot(load())
    plot(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
