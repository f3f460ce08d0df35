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


def _cut_matching_the_masked_copy(panel, anchor):
    """``panel.before(anchor)``, checked against the kept rows taken by a boolean mask."""
    cut, a = panel.before(anchor), panel.column(anchor)
    keep = panel.first_idx < a
    assert list(cut.customer_ids) == list(panel.customer_ids[keep]) == ["a", "b"]
    assert np.array_equal(cut.spend, panel.spend[keep, :a]) and np.array_equal(cut.orders, panel.orders[keep, :a])
    assert np.array_equal(cut.first_idx, panel.first_idx[keep]) and cut.n_months == a
    return cut


def test_a_cut_that_keeps_everyone_is_a_view_of_the_panel():
    panel = _panel(late_customer=False)
    cut = _cut_matching_the_masked_copy(panel, pd.Period("2024-04", "M"))
    assert np.shares_memory(cut.spend, panel.spend) and np.shares_memory(cut.orders, panel.orders)


def test_a_cut_that_drops_a_customer_copies_the_kept_rows():
    panel = _panel(late_customer=True)
    cut = _cut_matching_the_masked_copy(panel, pd.Period("2024-04", "M"))
    assert not np.shares_memory(cut.spend, panel.spend)
