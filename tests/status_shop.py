"""A small shop with customers of every batch status, for the batch tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_status_shop(path: Path) -> Path:
    """Twenty customers buying January to June 2024, and: an id between them who buys once
    later (C05X), one with only a return (C07R), one with only a zero amount (C11Z), one whose
    only purchase is on July 1st (C15N: the partial last month) and the first id (A00)."""
    rows = [(f"C{c:02d}", f"2024-{m:02d}-{c % 28 + 1:02d}", 10_000.0 + 1_000 * c) for c in range(20)
            for m in range(1, 7)]
    rows += [("C05X", "2024-05-20", 25_000.0), ("C07R", "2024-03-03", -8_000.0), ("C11Z", "2024-04-04", 0.0),
             ("C15N", "2024-07-01 04:00", 12_000.0), ("A00", "2024-06-02", 9_000.0)]
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(path, index=False)
    return path
