"""What a frame of (customer, anchor) rows holds: its feature column groups, named once.

:class:`RowSpec` is built with the rows (``forecaster/pipeline.py:build_rows``) and travels
with them to the backtest and the artifact; an arm reads its columns from it
(:mod:`models.arm_specs`), never by looking for a column name or prefix in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from structurer.features import PREFIX as FORECASTER_PREFIX
from structurer.features import forecast_feature_names
from structurer.schema import BucketScheme

# the empirical forecaster's columns beside an LLM's (which keep the forecaster prefix)
EMPIRICAL_PREFIX = "emp_"
BTYD_P_PURCHASE, BTYD_EXPECTED_ORDERS, BTYD_EXPECTED_SPEND = (
    "btyd_p_purchase", "btyd_expected_orders", "btyd_expected_spend")
BTYD_COLUMNS = [BTYD_P_PURCHASE, BTYD_EXPECTED_ORDERS, BTYD_EXPECTED_SPEND]
ORACLE_EXPECTED_SPEND = "oracle_expected_spend"
BAYES_EXPECTED_SPEND = "bayes_expected_spend"

# a forecaster group -> the prefix of its columns
FORECAST_PREFIXES = {"forecaster": FORECASTER_PREFIX, "empirical": EMPIRICAL_PREFIX}


def oracle_probability_names(scheme: BucketScheme) -> list[str]:
    """The synthetic generator's bucket distribution, one column per bucket."""
    return [f"oracle_p_{bid}" for bid in scheme.ids]


def bayes_probability_names(scheme: BucketScheme) -> list[str]:
    """The posterior predictive under the generator's priors, one column per bucket."""
    return [f"bayes_p_{bid}" for bid in scheme.ids]


@dataclass(frozen=True)
class RowSpec:
    """Which column groups a row frame holds (an empty group: the rows do not have it)."""

    base: list[str]
    forecaster: list[str]  # the run's provider (the empirical one offline, an LLM with --provider llm)
    btyd: list[str]
    empirical: list[str]  # the empirical forecaster beside an LLM one (prefix emp_)
    oracle: list[str] = field(default_factory=list)  # synthetic data only: the generator's forecast
    bayes: list[str] = field(default_factory=list)  # synthetic data only: the forecast under its priors

    def group(self, name: str) -> list[str]:
        return getattr(self, name)

    def with_oracle(self, scheme: BucketScheme) -> "RowSpec":
        """The same rows after the oracle's columns were added."""
        return replace(self, oracle=oracle_probability_names(scheme) + [ORACLE_EXPECTED_SPEND])

    def with_bayes(self, scheme: BucketScheme) -> "RowSpec":
        """The same rows after the bayes arm's columns were added."""
        return replace(self, bayes=bayes_probability_names(scheme) + [BAYES_EXPECTED_SPEND])


def forecast_group_names(scheme: BucketScheme, group: str) -> list[str]:
    """The columns of the forecaster group ``group`` ("forecaster" or "empirical")."""
    return forecast_feature_names(scheme, FORECAST_PREFIXES[group])
