"""EmpiricalForecaster throughput on one core: customers per second for the vectorised
feature path and for full ForecastRecords (with Korean rationales).

    .venv/bin/python bench/empirical.py [--customers 100000]
"""

from __future__ import annotations

import argparse
import time

from forecaster import pipeline
from forecaster.datasets import load_dataset
from models.empirical import EmpiricalForecaster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    panel = load_dataset(f"synthetic:{args.customers}").panel
    anchor = panel.last_month + 1
    scheme = pipeline.fit_scheme(panel, anchor)
    cut = panel.before(anchor)
    batch = panel.histories(anchor)
    start = time.process_time()
    forecaster = EmpiricalForecaster(scheme).fit(cut)
    fit_s = time.process_time() - start
    start = time.process_time()
    forecaster.forecast_features(batch)
    features_s = time.process_time() - start
    start = time.process_time()
    forecaster.forecast_many(batch)
    records_s = time.process_time() - start
    n = len(batch)
    print(f"customers: {n:,} (synthetic, anchor {anchor})")
    print(f"fit (population rates): {fit_s:.3f} s CPU")
    print(f"feature path: {n / features_s:,.0f} customers/s")
    print(f"records with rationale: {n / records_s:,.0f} customers/s")


if __name__ == "__main__":
    main()
