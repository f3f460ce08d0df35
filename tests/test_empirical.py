"""EmpiricalForecaster: the documented formula, leakage-safe fitting, valid records."""

import numpy as np
import pandas as pd
import pytest

from models.empirical import EmpiricalForecaster, stack_histories
from narrator.panel import build_panel
from structurer.features import records_to_features
from structurer.schema import BucketScheme, ForecastRecord, spend_forecast_model


def _panel():
    rows = [  # customer, date, amount
        ("a", "2024-01-05", 10.0), ("a", "2024-03-02", 50.0), ("a", "2024-04-09", 20.0),
        ("b", "2024-01-20", 5.0),
        ("c", "2024-02-11", 100.0), ("c", "2024-03-15", 100.0), ("c", "2024-04-01", 100.0),
        ("d", "2024-04-03", 7.0),
        ("e", "2024-11-20", 30.0),  # extends the data to November; not acquired before May
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    return build_panel(tx, "USD")


def test_formula_by_hand():
    panel = _panel()
    anchor = pd.Period("2024-05", "M")
    scheme = BucketScheme(edges=(15.0, 60.0), currency="USD")
    f = EmpiricalForecaster(scheme, half_life=1.0, purchase_prior_strength=2.0, bucket_prior_strength=1.0,
                            prior_months=4).fit(panel.before(anchor))
    # population purchase rate over months after acquisition: a: Feb 0, Mar 1, Apr 1; b: Feb..Apr 0,0,0;
    # c: Mar 1, Apr 1 -> 4 of 8 cells
    assert f.purchase_rate_ == pytest.approx(4 / 8)
    out = f.forecast_arrays(panel.histories(anchor, 12))
    ids = list(out.customer_ids)
    a = ids.index("a")
    # customer a: months Jan(acq) Feb Mar Apr -> weights (t=1 Apr) 1, (Mar) 1/2, (Feb) 1/4; acq excluded
    n_eff = 1 + 0.5 + 0.25
    q = (1 + 0.5 + 2 * 0.5) / (n_eff + 2)
    assert 1 - out.probs[a, 0] == pytest.approx(q)
    # buckets given purchase: Apr 20 -> b2 (w 1), Mar 50 -> b2 (w .5), Jan 10 -> b1 (w 1/8)
    pos_w = 1 + 0.5 + 0.125
    shares = f.bucket_shares_
    r = (np.array([0.125, 1.5, 0.0]) + 1.0 * shares) / (pos_w + 1.0)
    assert out.probs[a, 1:] == pytest.approx(q * r)
    assert out.probs.sum(axis=1) == pytest.approx(np.ones(len(ids)))


def test_new_customer_gets_the_population_prior():
    panel = _panel()
    anchor = pd.Period("2024-05", "M")
    scheme = BucketScheme(edges=(15.0, 60.0), currency="USD")
    f = EmpiricalForecaster(scheme).fit(panel.before(anchor))
    out = f.forecast_arrays(panel.histories(anchor, 12))
    d = list(out.customer_ids).index("d")  # acquired in April: its only month is the acquisition
    assert 1 - out.probs[d, 0] == pytest.approx(f.purchase_rate_)
    assert out.confidence[d] == 0.0


def test_records_pass_full_validation_and_match_the_feature_path():
    panel = _panel()
    anchor = pd.Period("2024-05", "M")
    scheme = BucketScheme(edges=(15.0, 60.0), currency="USD")
    f = EmpiricalForecaster(scheme).fit(panel.before(anchor))
    batch = panel.histories(anchor, 12)
    records = f.forecast_many(batch)
    model = spend_forecast_model(scheme)
    for rec in records:
        dumped = rec.model_dump()
        ForecastRecord.model_validate({**dumped, "forecast": model.model_validate(dumped["forecast"])})
        assert rec.provider == "empirical" and "LLM" in rec.forecast.rationale  # says it is not one
    from_records = records_to_features(records, scheme)
    from_arrays = f.forecast_features(batch).reset_index(drop=True)
    pd.testing.assert_frame_equal(from_records, from_arrays)
    # the same answers from single histories
    again = f.forecast_many(stack_histories(list(batch)))
    assert [r.forecast.probability_vector().tolist() for r in again] == \
           [r.forecast.probability_vector().tolist() for r in records]


def test_lapsed_customer_is_dormant_and_regular_one_is_not():
    panel = _panel()
    anchor = pd.Period("2024-12", "M")
    scheme = BucketScheme(edges=(15.0, 60.0), currency="USD")
    f = EmpiricalForecaster(scheme).fit(panel.before(anchor))
    recs = {r.customer_id: r for r in f.forecast_many(panel.histories(anchor, 12))}
    assert recs["b"].forecast.segment.value == "휴면"       # last bought in January
    assert recs["a"].forecast.segment.value == "휴면"       # last bought in April: 8 months ago
    assert recs["a"].forecast.purchase_probability > recs["b"].forecast.purchase_probability
