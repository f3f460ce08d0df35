"""Paired comparison of one arm between two evaluate runs on the same rows (issue 11).

    .venv/bin/python bench/compare_runs.py OLD/predictions.parquet NEW/predictions.parquet [--arm xgb_base]

Both runs must score the same (customer, anchor) rows with the same bucket scheme, e.g.
``forecaster evaluate --out old`` on one commit and ``--out new`` on another. Prints, per
test anchor and pooled, ``new - old`` for RPS, log loss and PR-AUC with the customer-level
paired-bootstrap 95% interval (``models.bootstrap``, the report's own method: a drawn
customer brings all of their rows) and the smallest difference the rows could detect.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from models import bootstrap

METRICS = {"rps": bootstrap.RPS, "log_loss": bootstrap.LOG_LOSS, "pr_auc": bootstrap.PR_AUC}


def _arm_rows(path: str, arm: str) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame[frame["arm"] == arm].sort_values(["anchor", "customer_id"], ignore_index=True)


def _inputs(rows: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    y = rows["label_bucket"].to_numpy()
    if metric == "pr_auc":
        return rows["purchase_prob"].to_numpy(), (y > 0).astype(float)
    return rows[sorted(c for c in rows.columns if c.startswith("p_b"))].to_numpy(), y


def compare(old: pd.DataFrame, new: pd.DataFrame, n_resamples: int, seed: int) -> dict[str, dict]:
    if not (old[["anchor", "customer_id", "label_bucket"]].equals(new[["anchor", "customer_id", "label_bucket"]])):
        raise SystemExit("the two runs do not score the same rows with the same labels")
    jobs = {m: (fn, _inputs(old, m), _inputs(new, m)) for m, fn in METRICS.items()}
    return bootstrap.paired_bootstrap_set(jobs, old["customer_id"].to_numpy(), n_resamples, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--arm", default="xgb_base")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    old, new = _arm_rows(args.old, args.arm), _arm_rows(args.new, args.arm)
    print(f"{args.arm}: new - old, customer-level paired bootstrap ({args.bootstrap} draws), 95% interval")
    print(f"{'anchor':<8} {'metric':<9} {'old':>10} {'new':>10} {'diff':>11} {'lo':>11} {'hi':>11} {'mde':>10}")
    for anchor in [*sorted(old["anchor"].unique()), "pooled"]:
        keep = np.ones(len(old), bool) if anchor == "pooled" else (old["anchor"] == anchor).to_numpy()
        out = compare(old[keep].reset_index(drop=True), new[keep].reset_index(drop=True), args.bootstrap, args.seed)
        for metric, r in out.items():
            print(f"{anchor:<8} {metric:<9} {r['a']:>10.6f} {r['b']:>10.6f} {r['diff']:>+11.7f} {r['lo']:>+11.7f} "
                  f"{r['hi']:>+11.7f} {r['mde']:>10.7f}")


if __name__ == "__main__":
    main()
