"""No information from a test anchor (or later) reaches training, early stopping, the
threshold or the bucket scheme: perturbing every outcome from the test anchor on leaves
every fitted object of that origin byte-identical."""

import numpy as np
import pandas as pd
import pytest

from forecaster import evaluation, pipeline
from forecaster.datasets import Dataset, load_dataset
from models import evaluate as ev


def _perturbed(tx: pd.DataFrame, test_anchor: pd.Period, seed: int) -> pd.DataFrame:
    """Change, delete and add transactions dated in the test anchor month or later,
    including a brand-new customer whose first purchase is in the test month."""
    rng = np.random.default_rng(seed)
    late = tx["ts"] >= test_anchor.start_time
    out = tx.copy()
    out.loc[late, "amount"] = out.loc[late, "amount"] * rng.uniform(0.1, 5.0, late.sum())
    drop = late & (rng.random(len(out)) < 0.3)
    out = out[~drop]
    donors = out[out["ts"] < test_anchor.start_time].sample(100, random_state=seed)
    extra = donors.assign(ts=test_anchor.start_time + pd.Timedelta(days=3), amount=999_000.0)
    newcomer = pd.DataFrame({"customer_id": ["NEW-1"], "ts": [test_anchor.start_time + pd.Timedelta(days=1)],
                             "amount": [50_000.0], "order_id": ["NEW-ORDER"]})
    return pd.concat([out, extra.assign(order_id=[f"X{i}" for i in range(len(extra))]), newcomer],
                     ignore_index=True)[tx.columns]


def _origin(tx: pd.DataFrame, test_anchor: pd.Period):
    ds = Dataset(name="s", transactions=tx, currency="KRW", cleaning=None)
    setup = evaluation.prepare(ds, f"{test_anchor}..{test_anchor}", None, seed=0, n_resamples=100)
    panel = setup.panel
    anchors = [a for a in pipeline.anchors_with_outcome(panel) if a < test_anchor]
    rows, spec = pipeline.build_rows(panel, anchors + [test_anchor], setup.scheme,
                                     pipeline.empirical_forecast_fn(setup.scheme), transactions=tx)
    cols = ev.arm_columns(spec.base, spec.forecaster, spec.btyd)
    pred, info, models = ev.run_origin(rows, str(test_anchor), setup.scheme, setup.representative_spend, cols, 0)
    return setup, rows, pred, info, models


@pytest.fixture(scope="module")
def shop():
    """A small shop cut to its first 15 months, so each origin has few anchors to fit."""
    tx = load_dataset("synthetic:800:7").transactions
    return tx[tx["ts"] < pd.Timestamp("2023-04-01")].reset_index(drop=True)


TEST_ANCHOR = pd.Period("2023-02", "M")


@pytest.fixture(scope="module")
def original(shop):
    return _origin(shop, TEST_ANCHOR)


def test_test_month_outcomes_never_reach_any_fitted_object(shop, original):
    test_anchor = TEST_ANCHOR
    setup_a, rows_a, pred_a, info_a, models_a = original
    setup_b, rows_b, pred_b, info_b, models_b = _origin(_perturbed(shop, test_anchor, 1), test_anchor)

    assert setup_a.scheme == setup_b.scheme
    assert np.array_equal(setup_a.representative_spend, setup_b.representative_spend)
    train_a = rows_a[rows_a["anchor"] < str(test_anchor)].reset_index(drop=True)
    train_b = rows_b[rows_b["anchor"] < str(test_anchor)].reset_index(drop=True)
    pd.testing.assert_frame_equal(train_a, train_b)
    for arm in models_a:
        assert models_a[arm].purchase_.save_raw("json") == models_b[arm].purchase_.save_raw("json"), arm
        assert models_a[arm].bucket_.save_raw("json") == models_b[arm].bucket_.save_raw("json"), arm
    thresholds_a = pred_a.groupby("arm")["threshold"].first()
    thresholds_b = pred_b.groupby("arm")["threshold"].first()
    pd.testing.assert_series_equal(thresholds_a, thresholds_b)
    assert info_a["notes"] == info_b["notes"]  # persistence weight, boosting rounds
    # the test rows' features are the same too; only their outcomes differ
    test_a = rows_a[rows_a["anchor"] == str(test_anchor)].set_index("customer_id")
    test_b = rows_b[rows_b["anchor"] == str(test_anchor)].set_index("customer_id")
    assert test_a.index.equals(test_b.index)  # the newcomer is not in the test population
    features = spec_columns(rows_a)
    pd.testing.assert_frame_equal(test_a[features], test_b[features])
    assert not test_a["spend"].equals(test_b["spend"])  # the perturbation did reach the outcomes


def spec_columns(rows: pd.DataFrame) -> list[str]:
    return [c for c in rows.columns if c not in ("customer_id", "anchor", "spend", "label")]


def test_a_change_before_the_test_anchor_does_change_the_fit(shop, original):
    """The check above can fail: touching months before the anchor changes the models."""
    test_anchor = TEST_ANCHOR
    models_a = original[4]
    changed = shop.copy()
    early = changed["ts"] < (test_anchor - 2).start_time
    changed.loc[early, "amount"] = changed.loc[early, "amount"] * 3
    _, _, _, _, models_b = _origin(changed, test_anchor)
    assert models_a["xgb_base"].purchase_.save_raw("json") != models_b["xgb_base"].purchase_.save_raw("json") or \
        models_a["xgb_base"].bucket_.save_raw("json") != models_b["xgb_base"].bucket_.save_raw("json")
