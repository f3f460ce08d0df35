"""What an LLM evaluation could detect, known before it sends anything.

The headline of an LLM evaluation is ``xgb_base+forecaster - xgb_base`` in RPS, paired over
customers. How small a difference it can detect depends on the rows' paired variance, and
that variance can be measured for free: an evaluation with the empirical forecaster in the
LLM's seat scores the same test rows (same anchors, same customers, same models but for the
forecaster's columns). The standard error of its paired difference on a set of customers is
the estimate for an LLM run on those customers; the smallest detectable difference is
:func:`models.bootstrap.minimum_detectable_difference` of it (about 2.8 x se: a two-sided
5% test with 80% power). An LLM whose forecasts disagree more with the baseline than the
empirical forecaster's do makes the variance larger, so the figure is a lower bound on what
a real run needs, and is labelled an estimate.

A sample of N customers is drawn as ``--llm-sample-customers N`` draws it
(:func:`forecaster.pipeline.sample_panel`: stratified, seeded, from the customers acquired
before the first test anchor), so the estimate is for the very customers the run would use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd

from forecaster import evaluation, pipeline
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.providers import DEFAULT_PROVIDER
from models import bootstrap
from models.arm_specs import XGB_BASE, XGB_FORECASTER
from models.evaluate import EvaluationResult
from narrator.panel import MonthlyPanel
from structurer.schema import BucketScheme

SIZES_SHOWN = (1_000, 5_000)  # besides everyone and the run's own sample, in the printed table
MIN_SAMPLE = 100  # the smallest --llm-sample-customers (as --sample-customers)
POWER_RESAMPLES = 400  # a standard error, not an interval's tails: fewer draws suffice


@dataclass(frozen=True)
class PowerEstimate:
    """The detectable RPS difference of an LLM evaluation on ``customers`` customers."""

    customers: int
    rows: int
    se_rps: float
    mde_rps: float

    def to_dict(self) -> dict:
        return asdict(self)


def _paired_rows(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline's and the augmented arm's test rows in the same (anchor, customer) order."""
    def arm(name: str) -> pd.DataFrame:
        return predictions[predictions["arm"] == name].sort_values(["anchor", "customer_id"], ignore_index=True)

    return arm(XGB_BASE.name), arm(XGB_FORECASTER.name)


def _estimate(base: pd.DataFrame, augmented: pd.DataFrame, scheme: BucketScheme, seed: int) -> PowerEstimate:
    probs = [f"p_{b}" for b in scheme.ids]
    y = base["label_bucket"].to_numpy()
    job = {"rps": (bootstrap.RPS, (base[probs].to_numpy(), y), (augmented[probs].to_numpy(), y))}
    out = bootstrap.paired_bootstrap_set(job, base["customer_id"].to_numpy(), POWER_RESAMPLES, seed)["rps"]
    return PowerEstimate(int(base["customer_id"].nunique()), len(base), out["se"], out["mde"])


def sample_ids(panel: MonthlyPanel, n: int | None, first_test: pd.Period, seed: int) -> np.ndarray | None:
    """The customers ``--llm-sample-customers n`` would use (None: everyone)."""
    return None if n is None else pipeline.sample_panel(panel, n, first_test, seed).customer_ids


def detectable_difference(predictions: pd.DataFrame, scheme: BucketScheme, customers: np.ndarray | None = None,
                          seed: int = 0) -> PowerEstimate:
    """The estimate on the test rows of ``customers`` (None: every customer) of an empirical
    run's ``predictions`` (``predictions.parquet``'s frame)."""
    base, augmented = _paired_rows(predictions)
    if customers is not None:
        keep = base["customer_id"].isin(customers).to_numpy()
        base, augmented = base[keep].reset_index(drop=True), augmented[keep].reset_index(drop=True)
    return _estimate(base, augmented, scheme, seed)


def smallest_sample(predictions: pd.DataFrame, scheme: BucketScheme, panel: MonthlyPanel, first_test: pd.Period,
                    target_mde: float, seed: int = 0) -> tuple[int | None, PowerEstimate]:
    """The smallest sample size whose estimate detects ``target_mde`` (RPS) and that estimate;
    ``None`` for the size when only every customer does. Raises UserError when even every
    customer cannot (nothing is worth sending then).

    The standard error falls as 1/sqrt(customers), so the size is first predicted from
    everyone's estimate, then checked on that sample and grown by 10% until it detects."""
    if not target_mde > 0:
        raise UserError(f"--target-mde {target_mde:g}: give a positive RPS difference, e.g. 0.0005")
    everyone = detectable_difference(predictions, scheme, seed=seed)
    if not everyone.mde_rps <= target_mde:
        raise UserError(f"--target-mde {target_mde:g}: even all {everyone.customers:,} customers can only detect an "
                        f"RPS difference of about {everyone.mde_rps:.2g}; raise --target-mde or use more data")
    n = max(MIN_SAMPLE, math.ceil(everyone.customers * (everyone.mde_rps / target_mde) ** 2))
    while n < everyone.customers:
        estimate = detectable_difference(predictions, scheme, sample_ids(panel, n, first_test, seed), seed)
        if estimate.mde_rps <= target_mde:
            return n, estimate
        n = math.ceil(n * 1.1)
    return None, everyone


@dataclass(frozen=True)
class PowerPlan:
    """An LLM evaluation's plan, made before it sends anything: the customers its LLM arms
    run on (``sample_customers``; None = every customer), the estimate for that run and, for
    comparison, for every customer and :data:`SIZES_SHOWN`; and the empirical run on every
    customer that measured them (its pooled figures go into the report)."""

    sample_customers: int | None
    target_mde: float | None
    run: PowerEstimate
    by_size: tuple[PowerEstimate, ...]
    population: dict

    def lines(self) -> list[str]:
        """What the command line prints before the LLM run (Korean)."""
        sizes = " · ".join(f"고객 {e.customers:,}명 {_rps(e.mde_rps)}" for e in self.by_size)
        who = "전체 고객" if self.sample_customers is None else f"층화 표본 {self.sample_customers:,}명"
        target = (f" (--target-mde {np.format_float_positional(self.target_mde, trim='-')} 검출에 필요한 가장 작은 표본)"
                  if self.target_mde else "")
        return [f"검출할 수 있는 가장 작은 RPS 차이(추정: 경험적 예측기로 같은 행을 먼저 평가한 paired 분산): {sizes}",
                f"이번 LLM 비교군은 {who}{target}에서 평가합니다: 약 {_rps(self.run.mde_rps)}보다 작은 차이는 "
                "찾아내기 어렵습니다(LLM의 답이 기본 모델과 더 다르면 더 커집니다)."]

    def to_dict(self) -> dict:
        return {"method": "paired bootstrap se of xgb_base+forecaster - xgb_base (RPS) in an empirical run on the "
                          "same test rows, times (z_0.975 + z_0.80)",
                "sample_customers": self.sample_customers, "target_mde": self.target_mde,
                "run": self.run.to_dict(), "by_size": [e.to_dict() for e in self.by_size],
                "population": self.population}


def _rps(value: float) -> str:
    """Two significant digits, never in exponent form (Korean text reads 0.000072, not 7.2e-05)."""
    return np.format_float_positional(value, precision=2, unique=False, fractional=False, trim="-")


def _population_summary(result: EvaluationResult) -> dict:
    """The empirical run on every customer: each arm's pooled RPS, log loss and PR-AUC."""
    arms = result.metrics["arms"]
    return {"customers": int(result.predictions["customer_id"].nunique()),
            "arms": {arm: {k: entry["pooled"].get(k) for k in ("rps", "log_loss", "pr_auc")}
                     for arm, entry in arms.items()}}


def plan_llm_run(dataset: Dataset, test_anchors: str | None, sample_customers: int | None, seed: int,
                 n_resamples: int, llm_sample_customers: int | None = None, target_mde: float | None = None,
                 progress_step: Callable[[str], None] | None = None) -> PowerPlan:
    """Run the empirical evaluation (free) on the customers an LLM evaluation would see and
    plan the LLM run: on ``llm_sample_customers``, on the smallest sample that detects
    ``target_mde``, or on them all. Raises UserError for both a sample and a target, or a
    target that even every customer cannot detect."""
    if llm_sample_customers is not None and target_mde is not None:
        raise UserError("give --llm-sample-customers or --target-mde, not both: the target chooses the sample size")
    if sample_customers is not None and (llm_sample_customers is not None or target_mde is not None):
        raise UserError("--sample-customers samples every arm; with --llm-sample-customers or --target-mde the LLM "
                        "arms are sampled and the others run on everyone: give one of them")
    setup = evaluation.prepare(dataset, test_anchors, sample_customers, seed, n_resamples, DEFAULT_PROVIDER)
    result = evaluation.run(setup, setup.forecaster.forecast_fn(), progress=progress_step)
    predictions, scheme, first = result.predictions, setup.scheme, setup.test_anchors[0]
    everyone = detectable_difference(predictions, scheme, seed=seed)
    if target_mde is not None:
        n, estimate = smallest_sample(predictions, scheme, setup.panel, first, target_mde, seed)
    else:
        # a sample as large as everyone is everyone
        n = llm_sample_customers if llm_sample_customers is not None and llm_sample_customers < everyone.customers else None
        estimate = detectable_difference(predictions, scheme, sample_ids(setup.panel, n, first, seed), seed)
    shown = [detectable_difference(predictions, scheme, sample_ids(setup.panel, size, first, seed), seed)
             for size in SIZES_SHOWN if size < everyone.customers]
    return PowerPlan(n if sample_customers is None else sample_customers, target_mde, estimate,
                     (*shown, everyone), _population_summary(result))
