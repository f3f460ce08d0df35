"""Benchmark: monthly panel build time and narrative rendering throughput, on one core.

    .venv/bin/python bench/narrate.py           # 1.5M and 10M transactions; 10k/100k/1M customers
    .venv/bin/python bench/narrate.py --quick   # 200k transactions; 10k customers

Targets (DESIGN/issue 2): a 10M-transaction panel in <= 10 s; >= 10,000 narratives/s.
The data are random (numpy, seeded), shaped like a shop log: customers with a first
purchase month and a per-customer purchase rate, amounts log-normal in won.
"""

from __future__ import annotations

import os

# one core: keep numpy's and pyarrow's thread pools from using the second one
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ARROW_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from narrator.narrative import render_narratives  # noqa: E402
from narrator.panel import MonthlyPanel, build_panel, month_ordinal  # noqa: E402

SEED = 20240101
START = pd.Period("2022-01", freq="M")
N_MONTHS = 24


class Stopwatch:
    """Wall and CPU seconds of a block. CPU time is the figure to compare on a shared
    machine: the code is single-threaded, so CPU time is what one free core would take."""

    def __enter__(self) -> "Stopwatch":
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def __str__(self) -> str:
        return f"{self.wall:7.2f} s wall {self.cpu:7.2f} s CPU"


def random_transactions(n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n_rows`` transactions of ``n_rows // 10`` customers over 24 months (ids as strings)."""
    n_customers = max(n_rows // 10, 1)
    ids = np.array([f"C{i:08d}" for i in range(n_customers)], dtype=object)
    customer = rng.integers(0, n_customers, n_rows)
    start = np.datetime64("2022-01-01", "s").astype(np.int64)
    seconds = rng.integers(0, N_MONTHS * 30 * 86_400, n_rows)
    return pd.DataFrame({
        "customer_id": pd.array(ids[customer], dtype="str"),
        "ts": (start + seconds).astype("datetime64[s]").astype("datetime64[ns]"),
        "amount": np.round(rng.lognormal(10.3, 0.8, n_rows), -1),
    })


def random_panel(n_customers: int, rng: np.random.Generator) -> MonthlyPanel:
    """A panel drawn directly: first purchase month, then purchases at a per-customer rate."""
    first = rng.integers(0, N_MONTHS - 1, n_customers).astype(np.int32)
    rate = rng.beta(0.6, 2.5, n_customers)
    months = np.arange(N_MONTHS)
    buys = (rng.random((n_customers, N_MONTHS)) < rate[:, None]) & (months[None, :] > first[:, None])
    buys[np.arange(n_customers), first] = True
    orders = np.where(buys, rng.poisson(0.4, (n_customers, N_MONTHS)) + 1, 0).astype(np.int32)
    spend = np.where(buys, np.round(rng.lognormal(10.3, 0.8, (n_customers, N_MONTHS)) * orders, -1), 0.0)
    return MonthlyPanel(
        customer_ids=np.array([f"C{i:08d}" for i in range(n_customers)], dtype=object),
        start=month_ordinal(START),
        spend=spend,
        orders=orders,
        first_idx=first,
        currency="KRW",
    )


def bench_panel(n_rows: int, rng: np.random.Generator) -> None:
    transactions = random_transactions(n_rows, rng)
    with Stopwatch() as clock:
        panel = build_panel(transactions, "KRW")
    print(f"build_panel  {n_rows:>12,} transactions  {len(panel.customer_ids):>10,} customers  {clock}")


def bench_narratives(n_customers: int, rng: np.random.Generator) -> None:
    panel = random_panel(n_customers, rng)
    batch = panel.histories(START + N_MONTHS, history_months=12)
    with Stopwatch() as clock:
        texts = render_narratives(batch)
    mean_chars = sum(map(len, texts)) / len(texts)
    print(f"narratives   {len(texts):>12,} customers  {clock}  {len(texts) / clock.cpu:>9,.0f} /s of CPU  "
          f"(mean {mean_chars:.0f} characters)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (seconds)")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    for n_rows in [200_000] if args.quick else [1_500_000, 10_000_000]:
        bench_panel(n_rows, rng)
    for n_customers in [10_000] if args.quick else [10_000, 100_000, 1_000_000]:
        bench_narratives(n_customers, rng)


if __name__ == "__main__":
    main()
