"""Benchmark: the chunked panel build at scale, beside a plain DuckDB group-by (issue 13).

    .venv/bin/python bench/scale.py                              # 1M and 3M customers
    .venv/bin/python bench/scale.py --customers 10000000         # ~100M transactions
    .venv/bin/python bench/scale.py --customers 1000000 --lines 1,2  # same customers, 2x rows
    .venv/bin/python bench/scale.py --steps panel,duckdb,batch --model DIR  # also time `batch`
    .venv/bin/python bench/scale.py --customers 1000000 --repeat 3  # the fastest of 3 runs per step
    .venv/bin/python bench/scale.py --customers 1000000 --steps panel,panel-dask,duckdb,duckdb-full
    .venv/bin/python bench/scale.py --steps batch,batch-dask --model DIR  # a 2-worker LocalCluster's overhead

Shops come from :func:`forecaster.synthetic.write_parquet` (chunks of 100,000 customers),
cached under ``bench/.scale-cache/`` (git-ignored). ``--lines 2`` writes every order as two
line items (half the amount each, a ``line`` column): the same panel and purchase days
from twice the rows, which shows whether memory follows the rows or the customers.

Every measurement runs in a fresh process (``os.wait4``: wall seconds from outside,
including interpreter start and imports, and the child's peak RSS, ``ru_maxrss``):

* ``panel``: ``forecaster.datasets.load_dataset(FOLDER, chunk_rows=...)`` and its complete
  panel (coverage judged) -- the chunked reader, what every verb does first;
* ``duckdb``: ``SELECT customer_id, month, sum(amount), count(*) ... GROUP BY`` over the same
  Parquet files, the result fetched as an Arrow table (DuckDB's own threads: all cores);
* ``batch``: ``forecaster batch --data FOLDER --model DIR`` (a model from ``forecaster
  train``): data read in chunks is scored one spill file of customers at a time
  (:mod:`forecaster.batch_partitioned`); needs ``--model``;
* ``batch-whole``: the batch that holds the whole panel (``TrainedModel.write_predictions``
  on the loaded data, :mod:`forecaster.batch_stream`), what ``batch`` did before;
* ``duckdb-full``: DuckDB doing the work the panel build does beyond the group-by: the
  exact duplicate rows dropped (a ``GROUP BY`` of every column), net spend floored at 0 and distinct
  orders with a positive amount per customer-month, and the purchase-day log (customer x
  day sums), all fetched as Arrow tables -- the like-for-like comparison (it still skips the
  date, id and amount checks the reader makes);
* ``panel-dask``, ``batch-dask``: the same on a ``LocalCluster`` (``--dask local:N``,
  ``--workers N``, default 2): the panel through :func:`forecaster.dask_engine.load_dataset`,
  the batch through ``forecaster batch --dask``. Their peak RSS is the largest sum over the
  process tree (client, nanny and worker processes), sampled every 0.2 s with psutil;
  ``vs single`` is the wall time over the single-process step's.

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".scale-cache"
SEED = 0


def shop(customers: int, lines: int) -> Path:
    """The cached Parquet folder of a shop (written on first use)."""
    folder = CACHE / f"shop-{customers}-{SEED}-x{lines}"
    done = folder / "_done"
    if not done.exists():
        from forecaster.synthetic import write_parquet
        started = time.perf_counter()
        rows = write_parquet(customers, SEED, folder, lines_per_order=lines)
        done.write_text(str(rows))
        print(f"  wrote {folder.name}: {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


def child_panel(folder: str, chunk_rows: int) -> None:
    from forecaster.datasets import load_dataset
    dataset = load_dataset(folder, chunk_rows=chunk_rows)
    panel = dataset.panel
    print(json.dumps({"rows": dataset.transaction_count(), "customers": len(panel.customer_ids),
                      "months": panel.n_months}))


def child_batch_whole(folder: str, model: str, out: str, chunk_rows: int) -> None:
    import forecaster as fc
    counts = fc.TrainedModel.load(model).write_predictions(fc.load_dataset(folder, chunk_rows=chunk_rows), out,
                                                           force=True)
    print(json.dumps({"rows": sum(counts.values())}))


def child_duckdb_full(folder: str) -> None:
    import duckdb
    con = duckdb.connect()
    con.sql(f"CREATE TEMP TABLE kept AS SELECT customer_id, ts, amount, order_id "
            f"FROM read_parquet('{folder}/*.parquet') GROUP BY ALL")
    # orders with a positive amount per cell through a group-by per order: 5.3 s in-process on
    # the 1M shop against 6.6 s for count(DISTINCT order_id) FILTER (WHERE amount > 0)
    panel = con.sql("""
        WITH per_order AS (
            SELECT customer_id, date_trunc('month', ts) AS month, order_id, sum(amount) AS spend,
                   max(CAST(amount > 0 AS INTEGER)) AS positive, count(*) AS n
            FROM kept GROUP BY ALL)
        SELECT customer_id, month, greatest(sum(spend), 0) AS spend, sum(positive) AS orders, sum(n) AS n
        FROM per_order GROUP BY ALL""").fetch_arrow_table()
    days = con.sql("""
        SELECT customer_id, CAST(ts AS DATE) AS day, sum(amount) AS amount
        FROM kept WHERE amount >= 0 GROUP BY ALL""").fetch_arrow_table()
    print(json.dumps({"cells": panel.num_rows, "days": days.num_rows}))


def child_panel_dask(folder: str, workers: int) -> None:
    from forecaster.dask_engine import connect, load_dataset
    with connect(f"local:{workers}") as client:
        panel = load_dataset(client, folder).panel
    print(json.dumps({"customers": len(panel.customer_ids), "months": panel.n_months}))


def child_duckdb(folder: str) -> None:
    import duckdb
    result = duckdb.sql(f"""
        SELECT customer_id, date_trunc('month', ts) AS month, sum(amount) AS spend, count(*) AS n
        FROM read_parquet('{folder}/*.parquet') GROUP BY ALL""").fetch_arrow_table()
    print(json.dumps({"cells": result.num_rows}))


def tree_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """The largest RSS summed over ``pid`` and its descendants, sampled until ``stop``."""
    import psutil
    try:
        root = psutil.Process(pid)
        while not stop.wait(0.2):
            total = 0
            for proc in [root, *root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
    except psutil.Error:
        pass


def measure(argv: list[str], tree: bool = False) -> dict:
    """Wall seconds and peak RSS (GB) of one fresh process running ``argv`` (and the
    1-minute load average before and after it: the machine may be shared); ``tree``: the
    peak is the process tree's sampled sum (Dask's worker processes), not the child's own."""
    before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=tree_peak, args=(process.pid, stop, peak), daemon=True)
    if tree:
        sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    rss_gb = max(peak[0] / 2**30, usage.ru_maxrss / 2**20) if tree else usage.ru_maxrss / 2**20
    loads = {"load": f"{before:.1f}-{os.getloadavg()[0]:.1f}"}
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        return {"wall": wall, "rss_gb": rss_gb, "error": err.strip().splitlines()[-1:], **loads}
    last = out.strip().splitlines()[-1:] if out.strip() else []
    info = json.loads(last[0]) if last and last[0].startswith("{") else {}
    return {"wall": wall, "rss_gb": rss_gb, **info, **loads}


def fastest(runs: list[dict]) -> dict:
    """The run with the least wall time, with the highest peak RSS of all runs."""
    best = min(runs, key=lambda r: r["wall"])
    return {**best, "rss_gb": max(r["rss_gb"] for r in runs)}


def step_argv(step: str, folder: Path, args: argparse.Namespace, out: Path) -> list[str]:
    me = [sys.executable, __file__]
    if step == "panel":
        return me + ["--child", "panel", str(folder), "--chunk-rows", str(args.chunk_rows)]
    if step == "panel-dask":
        return me + ["--child", "panel-dask", str(folder), "--workers", str(args.workers)]
    if step in ("duckdb", "duckdb-full"):
        return me + ["--child", step, str(folder)]
    if step == "batch-whole":
        return me + ["--child", step, str(folder), str(args.model), str(out / f"{step}.parquet"),
                     "--chunk-rows", str(args.chunk_rows)]
    forecaster = str(Path(sys.executable).with_name("forecaster"))
    batch = [forecaster, "batch", "--data", str(folder), "--model", str(args.model), "--out",
             str(out / f"{step}.parquet"), "--force"]
    if step == "batch":
        return batch + ["--chunk-rows", str(args.chunk_rows)]
    if step == "batch-dask":
        return batch + ["--dask", f"local:{args.workers}"]
    raise SystemExit(f"unknown step {step}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="1000000,3000000")
    parser.add_argument("--lines", default="1", help="line items per order, e.g. 1,2")
    parser.add_argument("--steps", default="panel,duckdb")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--model", type=Path, help="artifact folder for the batch step")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; the fastest is shown (shared machine)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers of the *-dask steps")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder, *more = args.child
        children = {"panel": lambda: child_panel(folder, args.chunk_rows), "duckdb": lambda: child_duckdb(folder),
                    "duckdb-full": lambda: child_duckdb_full(folder),
                    "batch-whole": lambda: child_batch_whole(folder, *more, args.chunk_rows),
                    "panel-dask": lambda: child_panel_dask(folder, args.workers)}
        children[kind]()
        return
    steps = args.steps.split(",")
    if any(step.startswith("batch") for step in steps) and args.model is None:
        raise SystemExit("--steps batch needs --model DIR (a folder from forecaster train)")
    print("| customers | rows | step | wall s | peak RSS GB | vs duckdb | vs single | load before-after |\n"
          "| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for customers in map(int, args.customers.split(",")):
        for lines in map(int, args.lines.split(",")):
            folder = shop(customers, lines)
            rows = int((folder / "_done").read_text())
            with tempfile.TemporaryDirectory() as out:
                results = {step: fastest([measure(step_argv(step, folder, args, Path(out)), step.endswith("-dask"))
                                          for _ in range(args.repeat)]) for step in steps}
            base = results.get("duckdb", {}).get("wall")
            for step, r in results.items():
                ratio = f"{r['wall'] / base:.2f}x" if base and step in ("panel", "panel-dask", "duckdb-full") else ""
                single = results.get(step.removesuffix("-dask"), {}).get("wall") if step.endswith("-dask") else None
                overhead = f"{r['wall'] / single:.2f}x" if single else ""
                note = f" ({r['error']})" if "error" in r else ""
                print(f"| {customers:,} | {rows:,} | {step}{note} | {r['wall']:.1f} | {r['rss_gb']:.2f} | {ratio} "
                      f"| {overhead} | {r['load']} |", flush=True)


if __name__ == "__main__":
    main()
