"""The scheme the pipeline fits: edges and base rates from months before the cut only."""

import numpy as np
import pandas as pd
import pytest

from forecaster import pipeline
from llm.prompt import system_prompt
from narrator.panel import build_panel


def _panel():
    rows = [("a", "2024-01-03", 10.0), ("a", "2024-02-03", 40.0), ("b", "2024-01-05", 20.0),
            ("c", "2024-02-07", 30.0), ("a", "2024-04-01", 999.0), ("d", "2024-04-02", 5.0)]
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    return build_panel(tx, "USD")


def test_base_shares_leave_out_acquisition_months_and_later_months():
    scheme = pipeline.fit_scheme(_panel(), pd.Period("2024-04", "M"))
    # existing-customer months before April: a Feb (40), a Mar (0), b Feb (0), b Mar (0), c Mar (0)
    shares = np.array(scheme.base_shares)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[0] == pytest.approx(4 / 5)
    assert shares[scheme.assign(np.array([40.0]))[0]] == pytest.approx(1 / 5)
    # terciles of January-March positive spend (10, 40, 20, 30) only: April's 999 and 5 stay out
    assert scheme.edges == (20.0, 30.0)


def test_base_rates_reach_the_system_prompt_only_when_known():
    scheme = pipeline.fit_scheme(_panel(), pd.Period("2024-04", "M"))
    with_rates = system_prompt(scheme)
    assert "전체 고객의 최근 월별 분포" in with_rates and "80.0%" in with_rates
    without = system_prompt(scheme.model_copy(update={"base_shares": None}))
    assert "전체 고객의 최근 월별 분포" not in without
