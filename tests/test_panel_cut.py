"""``MonthlyPanel.before``: the months before the anchor and the customers acquired before
it, as views of the panel when every customer is kept (no copy of the whole panel) and as a
copy of the kept rows otherwise -- the same values either way."""

from __future__ import annotations

import numpy as np
import pandas as pd

from narrator.panel import build_panel


def _panel(late_customer: bool):
    rows = [("a", "2024-01-03", 10.0), ("a", "2024-03-09", 5.0), ("b", "2024-02-11", 7.5), ("b", "2024-04-02", 3.0)]
    if late_customer:
        rows.append(("c", "2024-04-20", 9.0))  # first purchase in the anchor month: not in the cut
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).assign(ts=lambda f: pd.to_datetime(f["ts"]))
    return build_panel(frame, "KRW")


def _expected(panel, anchor):
    a = panel.column(anchor)
    keep = panel.first_idx < a
    return panel.customer_ids[keep], panel.spend[keep, :a], panel.orders[keep, :a], panel.first_idx[keep]


def test_a_cut_that_keeps_everyone_is_a_view_of_the_panel():
    panel, anchor = _panel(late_customer=False), pd.Period("2024-04", "M")
    cut = panel.before(anchor)
    ids, spend, orders, first = _expected(panel, anchor)
    assert list(cut.customer_ids) == list(ids) == ["a", "b"]
    assert np.array_equal(cut.spend, spend) and np.array_equal(cut.orders, orders)
    assert np.array_equal(cut.first_idx, first) and cut.n_months == 3
    assert np.shares_memory(cut.spend, panel.spend) and np.shares_memory(cut.orders, panel.orders)


def test_a_cut_that_drops_a_customer_copies_the_kept_rows():
    panel, anchor = _panel(late_customer=True), pd.Period("2024-04", "M")
    cut = panel.before(anchor)
    ids, spend, orders, first = _expected(panel, anchor)
    assert list(cut.customer_ids) == list(ids) == ["a", "b"]
    assert np.array_equal(cut.spend, spend) and np.array_equal(cut.orders, orders)
    assert np.array_equal(cut.first_idx, first)
    assert not np.shares_memory(cut.spend, panel.spend)
