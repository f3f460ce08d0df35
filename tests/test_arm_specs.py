"""Arms are declared once and chosen from the rows' RowSpec; a panel subset is taken one way."""

import numpy as np
import pandas as pd
import pytest

from forecaster.report.format import ARM_LABELS
from models import arm_specs
from models.evaluate import arm_columns
from narrator.panel import build_panel


def test_the_arms_that_run_follow_the_groups_the_rows_hold():
    base, fc, btyd, emp, oracle = ["a", "b"], ["fc_1"], ["btyd_1"], ["emp_1"], ["oracle_1"]
    offline = arm_columns(base, fc, [])
    assert [a.name for a in offline] == ["climatology", "persistence", "forecaster", "xgb_base",
                                         "xgb_base+forecaster"]
    assert offline[arm_specs.XGB_FORECASTER] == base + fc and offline[arm_specs.CLIMATOLOGY] == []
    everything = arm_columns(base, fc, btyd, emp, oracle, ["bayes_1"])
    assert list(everything) == list(arm_specs.ARMS)
    assert everything[arm_specs.XGB_EMPIRICAL] == base + emp and everything[arm_specs.ORACLE] == oracle


def test_every_declared_arm_has_one_unique_name_and_a_korean_label():
    names = [a.name for a in arm_specs.ARMS]
    assert len(set(names)) == len(names)
    assert all(name in ARM_LABELS for name in names)


def test_take_keeps_the_chosen_customers_and_refuses_an_unsorted_choice():
    tx = pd.DataFrame({"customer_id": ["a", "b", "c", "c"],
                       "ts": pd.to_datetime(["2024-01-03", "2024-02-05", "2024-01-09", "2024-03-01"]),
                       "amount": [10.0, 20.0, 30.0, 5.0]})
    panel = build_panel(tx, "USD")
    part = panel.take(np.array([0, 2]))
    assert part.customer_ids.tolist() == ["a", "c"] and part.start == panel.start
    assert np.array_equal(part.spend, panel.spend[[0, 2]]) and np.array_equal(part.orders, panel.orders[[0, 2]])
    assert part.first_idx.tolist() == [0, 0] and part.currency == "USD"
    with pytest.raises(ValueError, match="strictly increasing"):
        panel.take(np.array([2, 0]))
