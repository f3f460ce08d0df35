"""Day-level purchase timing features, from purchase days before the anchor only.

The monthly panel knows whether a customer bought in a month, not when: a customer who
bought on the 30th and one who bought on the 1st look the same, and so do a weekly and a
monthly shopper who each bought in every month. These features read the purchase days.

A purchase day is a day with at least one row of non-negative amount, same-day rows
summed (:func:`models.rfm.purchase_days`, the BTYD models' definition). "Today" is the
first day of the anchor month; only days strictly before it are read, so nothing dated in
the anchor month or later reaches a feature (tests/test_leakage.py).

* ``days_since_last_purchase``: today - the last purchase day (1 = the day before);
* ``last_gap_days``: days between the last two purchase days (NaN with one purchase day);
* ``gap_mean_days``, ``gap_cv``: mean and coefficient of variation (std / mean, ddof 0)
  of the days between consecutive purchase days (NaN with fewer than 1 and 2 gaps);
* ``overdue_ratio``: ``days_since_last_purchase / gap_mean_days``: past 1 the customer
  is later than usual (Schmittlein & Peterson 1994's regular buyers; NaN without a gap);
* ``purchase_days_last{k}d``: purchase days among the last k days;
* ``spend_last{k}d``: spend of the purchase days among the last k days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.rfm import purchase_days

RECENT_DAY_WINDOWS = (14, 30, 90, 180, 365)
DAYS_BLOCK_CUSTOMERS = 200_000  # customers grouped at once by PurchaseDays.by_block
SPEND_DAY_WINDOWS = (30, 90)

TIMING_LABELS: dict[str, str] = {
    "days_since_last_purchase": "마지막 구매 후 지난 일수",
    "last_gap_days": "마지막 두 구매일 사이 간격(일)",
    "gap_mean_days": "구매일 사이 평균 간격(일)",
    "gap_cv": "구매일 간격의 변동계수",
    "overdue_ratio": "평소 구매 간격 대비 지난 일수의 비율",
    **{f"purchase_days_last{k}d": f"최근 {k}일 중 구매한 날의 수" for k in RECENT_DAY_WINDOWS},
    **{f"spend_last{k}d": f"최근 {k}일 지출액" for k in SPEND_DAY_WINDOWS},
}


def timing_feature_names() -> list[str]:
    return list(TIMING_LABELS)


@dataclass(frozen=True)
class PurchaseDays:
    """Every purchase day of a transaction log, built once and cut at each anchor.

    ``code`` indexes ``customer_ids`` (sorted); rows are sorted by (code, day); ``day`` is
    whole days since the epoch.
    """

    customer_ids: pd.Index
    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray

    @classmethod
    def from_transactions(cls, transactions: pd.DataFrame) -> "PurchaseDays":
        """``transactions``: ``customer_id``, ``ts``, ``amount`` (negative = a return)."""
        daily = purchase_days(transactions)
        ids = pd.Index(np.unique(daily["customer_id"].to_numpy()))
        return cls(ids, ids.get_indexer(daily["customer_id"].to_numpy()), daily["day"].to_numpy(np.int64),
                   daily["amount"].to_numpy(np.float64))

    @classmethod
    def by_block(cls, transactions: pd.DataFrame, block: int = DAYS_BLOCK_CUSTOMERS) -> "PurchaseDays":
        """:meth:`from_transactions`, the same arrays, made ``block`` customers at a time:
        only a block's rows are turned into Python strings and grouped at once (on 10.6M rows
        the whole log at once was the batch's peak memory)."""
        codes, uniques = pd.factorize(transactions["customer_id"], sort=True)
        if len(uniques) <= block:
            return cls.from_transactions(transactions)
        order = np.argsort(codes, kind="stable")  # a customer's rows keep their order: the same day sums
        edges = np.searchsorted(codes[order], np.arange(0, len(uniques) + block, block))
        parts = [cls.from_transactions(transactions.iloc[order[lo:hi]])
                 for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
        offsets = np.cumsum([0] + [len(p.customer_ids) for p in parts[:-1]])
        return cls(pd.Index(np.concatenate([p.customer_ids.to_numpy() for p in parts])),
                   np.concatenate([p.code + offset for p, offset in zip(parts, offsets)]),
                   np.concatenate([p.day for p in parts]), np.concatenate([p.amount for p in parts]))

    @classmethod
    def from_coded_log(cls, log: pd.DataFrame, rows: np.ndarray, customer_ids: np.ndarray) -> "PurchaseDays":
        """A purchase-day log already summed by (customer, day) (``ts`` the day, ``amount``
        its purchases) whose rows' customers are given as positions ``rows`` in the sorted
        ``customer_ids``: the same timing features as :meth:`from_transactions`, every
        customer of ``customer_ids`` indexed (one without a day gets what an unknown one
        gets). Each customer's days must come in day order; a stable sort by position then
        sorts the whole by (customer, day)."""
        order = np.argsort(rows, kind="stable")
        day = log["ts"].to_numpy().astype("datetime64[D]").astype(np.int64)
        return cls(pd.Index(customer_ids), rows[order], day[order], log["amount"].to_numpy(np.float64)[order])

    def features(self, anchor: pd.Period, customer_ids: np.ndarray) -> pd.DataFrame:
        """The timing features of ``customer_ids`` at ``anchor`` (module doc), in
        :func:`timing_feature_names` order, index ``customer_id``; a customer without a
        purchase day before the anchor gets NaN (counts 0)."""
        today = np.datetime64(anchor.start_time.date(), "D").astype(np.int64)
        seen = self.day < today
        code, day, amount = self.code[seen], self.day[seen], self.amount[seen]
        n = len(self.customer_ids)
        cols = _gap_features(code, day, today, n)
        for k in RECENT_DAY_WINDOWS:
            cols[f"purchase_days_last{k}d"] = np.bincount(code[day >= today - k], minlength=n).astype(float)
        for k in SPEND_DAY_WINDOWS:
            recent = day >= today - k
            cols[f"spend_last{k}d"] = np.bincount(code[recent], weights=amount[recent], minlength=n)
        rows = self.customer_ids.get_indexer(customer_ids)
        known = rows >= 0
        out = {name: _take(values, rows, known, fill=0.0 if name.startswith(("purchase_days", "spend_")) else np.nan)
               for name, values in cols.items()}
        return pd.DataFrame(out, index=pd.Index(customer_ids, name="customer_id"))[timing_feature_names()]


def _take(values: np.ndarray, rows: np.ndarray, known: np.ndarray, fill: float) -> np.ndarray:
    return np.where(known, values[np.where(known, rows, 0)] if len(values) else fill, fill)


def _last_of_each(codes: np.ndarray) -> np.ndarray:
    """Positions of the last entry of each run of equal codes (codes are sorted)."""
    return np.flatnonzero(np.r_[codes[1:] != codes[:-1], True]) if len(codes) else np.array([], dtype=np.int64)


def _gap_features(code: np.ndarray, day: np.ndarray, today: int, n: int) -> dict[str, np.ndarray]:
    last_day = np.full(n, np.nan)
    ends = _last_of_each(code)
    last_day[code[ends]] = day[ends]
    same = code[1:] == code[:-1]
    gap, gap_code = (day[1:] - day[:-1])[same].astype(float), code[1:][same]
    count = np.bincount(gap_code, minlength=n).astype(float)
    total = np.bincount(gap_code, weights=gap, minlength=n)
    squares = np.bincount(gap_code, weights=gap * gap, minlength=n)
    last_gap = np.full(n, np.nan)
    gap_ends = _last_of_each(gap_code)
    last_gap[gap_code[gap_ends]] = gap[gap_ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
        since = today - last_day
        return {
            "days_since_last_purchase": since,
            "last_gap_days": last_gap,
            "gap_mean_days": mean,
            "gap_cv": np.where(count >= 2, std / mean, np.nan),
            "overdue_ratio": since / mean,
        }
