"""What a dataset looks like, as `forecaster data` shows it: customers, transactions, months,
the share of customers buying per month and the quantiles of positive monthly spend.

The share of customers buying in a month is given two ways: of the customers acquired by
then (first purchase in or before that month; 100% in the very first month by definition)
and of every customer in the data. The CDNOW README's "33–41% in Jan–Mar 1997" is the
second (of all 23,570); from April 1997 on, every customer is acquired and both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.datasets import Dataset
from narrator.panel import NOT_ACQUIRED, MonthlyPanel

SPEND_QUANTILES = (0.25, 0.50, 0.75, 0.90)


@dataclass(frozen=True)
class DataSummary:
    customers: int
    purchasing_customers: int  # with at least one positive purchase
    transactions: int
    first_day: pd.Timestamp
    last_day: pd.Timestamp
    months: pd.PeriodIndex
    monthly: pd.DataFrame  # month, new, buyers, share_of_acquired, share_of_all
    spend_quantiles: dict[float, float]


def monthly_buying_share(panel: MonthlyPanel) -> pd.DataFrame:
    """Per month: new customers, buyers, and buyers as a share of the customers acquired
    by then and of every customer."""
    acquired = panel.first_idx != NOT_ACQUIRED
    new = np.bincount(panel.first_idx[acquired], minlength=panel.n_months)
    buyers = (panel.orders > 0).sum(axis=0)
    acquired_by_then = np.cumsum(new)
    return pd.DataFrame({
        "month": panel.months,
        "new": new,
        "buyers": buyers,
        "share_of_acquired": buyers / np.maximum(acquired_by_then, 1),
        "share_of_all": buyers / len(panel.customer_ids),
    })


def describe(dataset: Dataset) -> DataSummary:
    panel = dataset.panel
    ts = dataset.transactions["ts"]
    positive = panel.spend[panel.spend > 0]
    values = np.quantile(positive, SPEND_QUANTILES) if positive.size else [np.nan] * len(SPEND_QUANTILES)
    return DataSummary(
        customers=len(panel.customer_ids),
        purchasing_customers=int((panel.first_idx != NOT_ACQUIRED).sum()),
        transactions=len(dataset.transactions),
        first_day=ts.min(),
        last_day=ts.max(),
        months=panel.months,
        monthly=monthly_buying_share(panel),
        spend_quantiles=dict(zip(SPEND_QUANTILES, map(float, values))),
    )
