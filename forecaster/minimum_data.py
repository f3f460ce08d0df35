"""The least data each verb needs, in one place (docs/minimum-data.md is the table users read).

Months are the panel's complete calendar months. An anchor (the month forecast) needs at
least one month of history before it, so the first month of the data is never an anchor;
an anchor with a known outcome lies inside the data. A fitted model needs anchors to fit
on and a later one to validate on (early stopping, the purchase threshold), each with at
least one buyer among the customers acquired before it.
"""

from __future__ import annotations

import pandas as pd

from forecaster.errors import UserError
from narrator.panel import MonthlyPanel

FIT_ANCHORS = 2  # anchors a model is fitted on: the first one sees a single month of history
MIN_TRAIN_MONTHS = FIT_ANCHORS + 2  # + the history-only first month + the validation anchor
MIN_EVALUATE_MONTHS = MIN_TRAIN_MONTHS + 1  # + at least one test anchor after them
# Below these pooled test figures a comparison of arms is noise: with fewer than 30 buying
# rows the paired bootstrap resamples a handful of purchases (its interval is lumpy or has
# no width at all) and PR-AUC moves by several points when one buyer is re-ranked; 200 rows
# bound the standard error of a base rate near 50% by 3.5 points.
MIN_TEST_ROWS = 200
MIN_TEST_POSITIVES = 30


class NotEnoughData(UserError):
    """The data is too short or too small for what the verb does."""


def check_train_months(panel: MonthlyPanel, verb: str = "train") -> None:
    if panel.n_months < MIN_TRAIN_MONTHS:
        raise NotEnoughData(
            f"{verb} needs at least {MIN_TRAIN_MONTHS} complete months of data (it has {panel.n_months}): "
            f"the first month is history only, {FIT_ANCHORS} months to fit the model on and 1 to validate it; "
            f"use data covering more months")


def check_evaluate_months(known: list[pd.Period], n_months: int) -> None:
    """``known``: the anchors with an outcome (every month but the first)."""
    if len(known) < FIT_ANCHORS + 2:
        raise NotEnoughData(
            f"evaluate needs at least {MIN_EVALUATE_MONTHS} complete months of data (it has {n_months}): "
            f"the first month is history only, {FIT_ANCHORS} months to fit on, 1 to validate and 1 to test; "
            f"use data covering more months")


def check_buyers(rows: pd.DataFrame, fit_anchors: list[str], validation_anchor: str, verb: str) -> None:
    """The fitting rows and the validation rows each need a purchase: without one there is
    nothing to learn a purchase from (or to tune the threshold on)."""
    bought = rows["label"].gt(0).groupby(rows["anchor"]).any()
    if not bought.reindex(fit_anchors, fill_value=False).any():
        raise NotEnoughData(
            f"{verb}: no customer bought in any month the model is fitted on ({fit_anchors[0]}..{fit_anchors[-1]}); "
            f"use data with more customers or more months")
    if not bought.get(validation_anchor, False):
        customers = int((rows["anchor"] == validation_anchor).sum())
        raise NotEnoughData(
            f"{verb}: none of the {customers:,} customers bought in {validation_anchor}, the validation month "
            f"(early stopping and the purchase threshold need buyers there); check that the month is complete "
            f"or use data with more customers")


def can_answer(test_rows: int, test_positives: int) -> dict:
    """Whether the pooled test rows are enough to compare arms, with a Korean reason when not
    (the report states the reason instead of a conclusion)."""
    enough = test_rows >= MIN_TEST_ROWS and test_positives >= MIN_TEST_POSITIVES
    reason = None if enough else (
        f"평가 행이 {test_rows:,}개(구매 {test_positives:,}건)로, 비교 결과를 말하는 데 필요한 최소 "
        f"{MIN_TEST_ROWS:,}행·구매 {MIN_TEST_POSITIVES}건에 못 미칩니다. 이 데이터로는 예측기 특성이 "
        "도움이 되는지 답할 수 없습니다.")
    return {"can_answer": enough, "test_rows": test_rows, "test_positives": test_positives,
            "min_test_rows": MIN_TEST_ROWS, "min_test_positives": MIN_TEST_POSITIVES, "reason": reason}
