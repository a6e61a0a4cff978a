"""Load test of the DuckLake catalog alone: N writer processes committing hour-long analyses.

    python -m bench.catalog [--writers 1 4 16 64] [--commits 64] [--json FILE]

A private PostgreSQL (Debian's, tools/pgtmp.py) and a DuckLake in a temp dir. Each writer is a
process of its own that commits analyses shaped like one hour of audio (14,400 windows, 120
transcript segments with their tokens, events, 60 minutes of density) through the same
`write_analysis` the pipeline uses — the serializing write lock included — and times each
commit. Printed per N: commits/s, the conflicts retried, p50/p99 commit latency, and how many
GPU workers that rate serves at a given speed per worker.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
HOUR_MIN = 60
GPU_X_REALTIME = 2000.0     # issue 16's GPU target per worker: one hour of audio every 1.8 s


def writer(index: int, config, commits: int, ready, start, out) -> None:
    """Commit `commits` distinct hour-long analyses; report each commit's seconds and the conflicts."""
    from bench.reports import fake_analysis
    from laughtrack.store import open_store, sql
    conflicts = [0]
    real = sql.SqlStore._write_once

    def counted(self, *args):
        try:
            return real(self, *args)
        except Exception as exc:
            import duckdb
            if isinstance(exc, duckdb.TransactionException):
                conflicts[0] += 1
            raise
    sql.SqlStore._write_once = counted
    try:
        store = open_store(config)
        rng = np.random.default_rng(index)
        analyses = [fake_analysis(index * 100_000 + k, HOUR_MIN, rng) for k in range(commits)]
        store.done_analyses(["warm-up"])      # attached before the clock starts
        ready.put(index)
        start.wait()
        latencies = []
        for rows in analyses:
            t0 = time.perf_counter()
            if not store.write_analysis(rows):
                raise RuntimeError(f"writer {index}: analysis {rows.job.analysis_id} was already there")
            latencies.append(time.perf_counter() - t0)
        out.put({"latencies": latencies, "conflicts": conflicts[0]})
    except BaseException as exc:  # noqa: BLE001 — the parent reports it
        import traceback
        out.put({"error": "".join(traceback.format_exception(exc))})


def run(config, writers: int, commits: int) -> dict:
    ctx = mp.get_context("spawn")
    ready, start, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    per = max(1, commits // writers)
    procs = [ctx.Process(target=writer, args=(i, config, per, ready, start, out)) for i in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:                         # every writer has built its rows and attached the lake
        ready.get(timeout=1800)
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=3600) for _ in procs]
    wall = time.perf_counter() - t0
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"{len(errors)} writer(s) failed; the first:\n{errors[0]}")
    for p in procs:
        p.join()
    lat = np.array([x for r in results for x in r["latencies"]])
    rate = len(lat) / wall
    return {"writers": writers, "commits": len(lat), "wall_s": round(wall, 1), "commits_per_s": round(rate, 2),
            "conflicts_retried": sum(r["conflicts"] for r in results),
            "p50_s": round(float(np.percentile(lat, 50)), 2), "p99_s": round(float(np.percentile(lat, 99)), 2),
            "gpu_workers_served": int(rate * 3600 / GPU_X_REALTIME)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--commits", type=int, default=64, help="commits per N (split over the writers)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from pgtmp import create_database, temporary_postgres

    from laughtrack.store import StoreConfig, open_store
    rows = []
    with temporary_postgres() as conninfo, tempfile.TemporaryDirectory() as tmp:
        for n in args.writers:
            db = create_database(conninfo, f"load{n}")
            config = StoreConfig(f"ducklake:postgres:{db}", f"{tmp}/lake{n}", f"{tmp}/cache")
            open_store(config).migrate()
            rows.append(run(config, n, max(args.commits, n)))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| writers | commits | wall s | commits/s | conflicts retried | p50 commit s | p99 commit s | "
          f"GPU workers served at {GPU_X_REALTIME:.0f}x |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['writers']} | {r['commits']} | {r['wall_s']} | {r['commits_per_s']} | {r['conflicts_retried']} | "
              f"{r['p50_s']} | {r['p99_s']} | {r['gpu_workers_served']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
