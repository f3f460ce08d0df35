"""`forecaster evaluate`: the offline backtest from a dataset to a report folder.

:func:`prepare` builds the whole set-up once (test anchors, sample, bucket scheme, the
provider, the arms that will not run) as a frozen :class:`EvaluationSetup`; :func:`run`
builds the rows and runs the backtest on it without changing it.

Hyperparameters are chosen once per run on the *tuning month*, the anchor before the first
origin's validation anchor (:mod:`models.tuning`): the empirical forecaster's in
:func:`prepare` (it is opened there), XGBoost's in :func:`run` (it needs the rows); the
choice applies to every origin and every XGBoost arm, and ``metrics["tuning"]`` records it."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from forecaster import minimum_data, pipeline
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.providers import DEFAULT_PROVIDER, ForecasterChoice, Provider, registration, resolve
from llm.config import ENV_API_KEY, ENV_BASE_URL
from models.arm_specs import BAYES, ORACLE, XGB_BASE, ArmKind
from models.evaluate import EvaluationResult, arm_columns, evaluate
from models.empirical import DEFAULT_SETTINGS, EmpiricalSettings
from models.errors import InsufficientData
from models.rows import BAYES_EXPECTED_SPEND, ORACLE_EXPECTED_SPEND, bayes_probability_names, oracle_probability_names
from models.tuning import (EMPIRICAL_GRID, XGB_DEFAULT, XGB_GRID, Tuning, offset_columns, tune_empirical, tune_xgb,
                           tuning_month, untuned, xgb_params)
from narrator.panel import HistoryBatch, MonthlyPanel, parse_month
from structurer.schema import BucketScheme

DEFAULT_TEST_MONTHS = 3
NO_ENDPOINT = "LLM 엔드포인트가 설정되지 않아 LLM 비교군은 실행하지 않았습니다."
NOT_ASKED = "--provider llm을 지정하지 않아 LLM 비교군은 실행하지 않았습니다."
NO_LATENT = "합성 데이터가 아니어서 잠재 모수를 알 수 없으므로 oracle 비교군은 계산하지 않았습니다."
NO_PRIORS = "합성 데이터가 아니어서 생성 모형의 사전분포를 알 수 없으므로 bayes 비교군은 계산하지 않았습니다."
LLM_NOT_TUNED = "the provider is an LLM: the empirical forecaster's settings were not searched"


@dataclass(frozen=True)
class EvaluationSetup:
    """Everything the report states about how the numbers were made, fixed before the run."""

    dataset: Dataset
    panel: MonthlyPanel
    test_anchors: tuple[pd.Period, ...]
    scheme: BucketScheme
    representative_spend: np.ndarray
    provider: str
    model: str
    prompt_version: str
    seed: int
    sample_customers: int | None
    n_resamples: int
    arms_not_run: Mapping[str, str] = field(default_factory=dict)  # arm -> why, in Korean
    notes: tuple[str, ...] = ()  # one Korean line each, printed by the verb
    # the provider opened for the scheme: what the run asks (None in a set-up made by hand)
    forecaster: Provider | None = field(default=None, repr=False, compare=False)
    xgb_grid: tuple[dict, ...] = XGB_GRID  # the XGBoost settings run() searches
    empirical_tuning: Tuning = untuned(asdict(DEFAULT_SETTINGS), "not searched")  # how prepare() chose them

    @property
    def tuning_month(self) -> str:
        """The month hyperparameters are chosen on (:func:`first_tuning_month`)."""
        return first_tuning_month(self.panel, self.test_anchors[0])

    @property
    def anchors(self) -> list[pd.Period]:
        """Every anchor the run builds rows for: those with an outcome up to the last test anchor."""
        return [a for a in pipeline.anchors_with_outcome(self.panel) if a <= self.test_anchors[-1]]

    def histories(self) -> Iterator[HistoryBatch]:
        """The histories the provider is asked about, anchor by anchor (for the cost estimate)."""
        return (self.panel.histories(a) for a in self.anchors)


def parse_test_anchors(text: str | None, panel: MonthlyPanel) -> tuple[list[pd.Period], str | None]:
    """``A..B`` (inclusive) or ``A``; default: the last 3 months with a known outcome, fewer
    when the data is short (then the second value says so). The anchors before the first test
    anchor must leave the model months to fit on and one to validate on."""
    known = pipeline.anchors_with_outcome(panel)
    minimum_data.check_evaluate_months(known, panel.n_months)
    first_allowed = minimum_data.FIT_ANCHORS + 1
    if text is None:
        chosen = known[max(first_allowed, len(known) - DEFAULT_TEST_MONTHS):]
        note = None if len(chosen) == DEFAULT_TEST_MONTHS else (
            f"참고: 데이터가 {panel.n_months}개월뿐이라 평가 월을 기본 {DEFAULT_TEST_MONTHS}개 대신 "
            f"{len(chosen)}개({_span(chosen)})로 줄였습니다. 그 앞의 {first_allowed}개월은 학습·검증에 씁니다.")
        return chosen, note
    try:
        first, _, last = text.partition("..")
        a, b = parse_month(first), parse_month(last or first)
    except ValueError as exc:
        raise UserError(f"--test-anchors {text}: {exc}; use A..B, e.g. 1998-04..1998-06") from exc
    chosen = [m for m in known if a <= m <= b]
    if a > b or not chosen or chosen[0] != a or chosen[-1] != b:
        raise UserError(f"--test-anchors {text}: test anchors must lie within {known[0]}..{known[-1]}")
    if known.index(chosen[0]) < first_allowed:
        raise UserError(f"--test-anchors {text}: leave at least {first_allowed} earlier months for training "
                        f"and validation (first possible test anchor: {known[first_allowed]})")
    return chosen, None


def _span(months: list[pd.Period]) -> str:
    return str(months[0]) if len(months) == 1 else f"{months[0]}~{months[-1]}"


def _scheme_and_spend(panel: MonthlyPanel, first_test: pd.Period) -> tuple[BucketScheme, np.ndarray]:
    scheme = pipeline.fit_scheme(panel, first_test)
    train_spend = panel.spend[:, : panel.column(first_test)]
    return scheme, scheme.representative_spend(train_spend[train_spend > 0])


def prepare(dataset: Dataset, test_anchors: str | None = None, sample_customers: int | None = None, seed: int = 0,
            n_resamples: int = 1000, forecaster: ForecasterChoice = DEFAULT_PROVIDER,
            xgb_grid: tuple[dict, ...] = XGB_GRID,
            empirical_grid: tuple[EmpiricalSettings, ...] = EMPIRICAL_GRID) -> EvaluationSetup:
    """The frozen set-up of one evaluation: ``test_anchors`` as ``--test-anchors`` gives them,
    ``forecaster`` opened for the scheme fitted before the first test anchor, an empirical
    one with the settings of ``empirical_grid`` that score best on the tuning month
    (:attr:`EvaluationSetup.tuning_month`); ``xgb_grid`` is what :func:`run` searches."""
    panel = dataset.panel
    anchors, note = parse_test_anchors(test_anchors, panel)
    if sample_customers is not None:
        panel = pipeline.sample_panel(panel, sample_customers, anchors[0], seed)
    scheme, rep = _scheme_and_spend(panel, anchors[0])
    empirical = _empirical_tuning(panel, anchors[0], scheme, resolve(forecaster)[0], empirical_grid)
    chosen = Provider.chosen(forecaster, scheme, EmpiricalSettings(**empirical.chosen))
    info = chosen.info
    return EvaluationSetup(dataset=dataset, panel=panel, test_anchors=tuple(anchors), scheme=scheme,
                           representative_spend=rep, provider=info["provider"], model=info["model"],
                           prompt_version=info["prompt_version"], seed=seed, sample_customers=sample_customers,
                           n_resamples=n_resamples,
                           arms_not_run=MappingProxyType(_arms_not_run(dataset, chosen)),
                           notes=(note,) if note else (), forecaster=chosen, xgb_grid=tuple(xgb_grid),
                           empirical_tuning=empirical)


def first_tuning_month(panel: MonthlyPanel, first_test: pd.Period) -> str:
    """The anchor before the first origin's validation anchor (the anchor before
    ``first_test``): no test or validation anchor is read to choose a setting."""
    known = [str(a) for a in pipeline.anchors_with_outcome(panel)]
    return tuning_month(known, known[known.index(str(first_test)) - 1])


def _empirical_tuning(panel: MonthlyPanel, first_test: pd.Period, scheme: BucketScheme, provider: str,
                      grid: tuple[EmpiricalSettings, ...]) -> Tuning:
    """The empirical forecaster's settings chosen on the tuning month; the defaults, with the
    reason, when the provider is an LLM or that month has too little data."""
    defaults = asdict(DEFAULT_SETTINGS)
    if registration(provider).is_llm:
        return untuned(defaults, LLM_NOT_TUNED)
    try:
        return tune_empirical(panel, parse_month(first_tuning_month(panel, first_test)), scheme, grid)
    except InsufficientData as exc:
        return untuned(defaults, str(exc))


def _xgb_tuning(rows: pd.DataFrame, setup: EvaluationSetup, base_columns: list[str]) -> Tuning:
    """XGBoost's settings chosen on the tuning month (fitted on the anchors before it); the
    defaults, with the reason, when that month or the ones before it have too little data."""
    known = sorted(rows["anchor"].unique())
    validation = known[known.index(str(setup.test_anchors[0])) - 1]
    try:
        return tune_xgb(rows, validation, base_columns, setup.scheme.n_buckets, setup.seed, setup.xgb_grid)
    except InsufficientData as exc:
        return untuned(XGB_DEFAULT, str(exc))


def _arms_not_run(dataset: Dataset, chosen: Provider) -> dict[str, str]:
    """The comparison arms this set-up cannot run, each with the reason the report gives."""
    missing = {}
    if not chosen.is_llm:  # an LLM provider's arm is compared with the empirical forecaster beside it
        configured = os.environ.get(ENV_BASE_URL) or os.environ.get(ENV_API_KEY)
        missing["llm"] = NOT_ASKED if configured else NO_ENDPOINT
    if dataset.latent is None:
        missing[ORACLE.name] = NO_LATENT
        missing[BAYES.name] = NO_PRIORS
    return missing


# (cut, anchor, edges) -> (customer_ids, bucket probabilities, expected spend)
BoundFn = Callable[[MonthlyPanel, pd.Period, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _add_test_forecasts(rows: pd.DataFrame, setup: EvaluationSetup, forecast: BoundFn, prob_cols: list[str],
                        spend_col: str) -> pd.DataFrame:
    """``rows`` with a bound's forecast of every test row, from the panel cut at its anchor."""
    parts = []
    for anchor in setup.test_anchors:
        ids, probs, spend = forecast(setup.panel.before(anchor), anchor, np.asarray(setup.scheme.edges))
        part = pd.DataFrame(probs, columns=prob_cols)
        part[spend_col] = spend
        part["customer_id"] = ids
        part["anchor"] = str(anchor)
        parts.append(part)
    return rows.merge(pd.concat(parts), on=["customer_id", "anchor"], how="left")


def add_oracle(rows: pd.DataFrame, setup: EvaluationSetup) -> pd.DataFrame:
    """The synthetic generator's best possible forecast for the test rows (Monte Carlo from
    the latent parameters; the realised death month stays hidden)."""
    from forecaster.synthetic import oracle_bucket_probabilities

    def forecast(cut: MonthlyPanel, anchor: pd.Period, edges: np.ndarray):
        return oracle_bucket_probabilities(setup.dataset.latent, cut, anchor, edges, seed=setup.seed)

    return _add_test_forecasts(rows, setup, forecast, oracle_probability_names(setup.scheme), ORACLE_EXPECTED_SPEND)


def add_bayes(rows: pd.DataFrame, setup: EvaluationSetup) -> pd.DataFrame:
    """The best forecast of the test rows that the data allow: the posterior predictive under
    the generator's priors from each customer's whole history before the anchor
    (:func:`forecaster.bayes.bayes_bucket_probabilities`). The whole history, not the
    12-month window: the XGBoost arms' lifetime features see it too, and a bound that saw
    less could be beaten (with the window only, ``xgb_base+btyd`` scored 0.99 x its RPS)."""
    from forecaster.bayes import bayes_bucket_probabilities

    def forecast(cut: MonthlyPanel, anchor: pd.Period, edges: np.ndarray):
        return bayes_bucket_probabilities(cut, anchor, edges, history_months=cut.n_months)

    return _add_test_forecasts(rows, setup, forecast, bayes_probability_names(setup.scheme), BAYES_EXPECTED_SPEND)


def run(setup: EvaluationSetup, forecast_fn: pipeline.ForecastFn,
        progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """``forecast_fn`` is the run's provider; beside an LLM provider the empirical forecaster
    runs too, so that the report compares the two."""
    empirical_fn = pipeline.empirical_forecast_fn(setup.scheme) if registration(setup.provider).is_llm else None
    rows, spec = pipeline.build_rows(setup.panel, setup.anchors, setup.scheme, forecast_fn, with_btyd=True,
                                     progress=(lambda a: progress(f"행 생성 {a}")) if progress else None,
                                     empirical_fn=empirical_fn, transactions=setup.dataset.transactions)
    btyd_selection = rows.attrs.get(pipeline.BTYD_SELECTION)  # before a merge drops the frame's attrs
    if setup.dataset.latent is not None:  # synthetic data: the two bounds
        rows = add_bayes(add_oracle(rows, setup), setup)
        spec = spec.with_oracle(setup.scheme).with_bayes(setup.scheme)
    plan = arm_columns(spec.base, spec.forecaster, spec.btyd, spec.empirical, spec.oracle, spec.bayes)
    tests = [str(a) for a in setup.test_anchors]
    _check_origins(rows, tests)
    if progress:
        progress(f"설정 탐색 {setup.tuning_month}")
    xgb_tuning = _xgb_tuning(rows, setup, plan[XGB_BASE])
    chosen = xgb_tuning.chosen  # every XGBoost arm takes the purchase offset chosen on the tuning month
    plan = {arm: offset_columns(cols, chosen) if arm.kind is ArmKind.XGB else cols for arm, cols in plan.items()}
    result = evaluate(rows, tests, setup.scheme, setup.representative_spend,
                      plan, seed=setup.seed, n_resamples=setup.n_resamples,
                      progress=(lambda t: progress(f"검증 {t}")) if progress else None, params=xgb_params(chosen))
    result.metrics["tuning"] = {"month": setup.tuning_month, "xgb": xgb_tuning.to_json(),
                                "empirical": setup.empirical_tuning.to_json()}
    test_rows = rows[rows["anchor"].isin(tests)]
    result.metrics["btyd_selection"] = btyd_selection
    result.metrics["data_sufficiency"] = minimum_data.can_answer(len(test_rows), int((test_rows["label"] > 0).sum()))
    return result


def _check_origins(rows: pd.DataFrame, test_anchors: list[str]) -> None:
    """Every origin (test anchor) fits on the anchors before its validation anchor: each
    needs buyers there, or XGBoost and the threshold have nothing to learn from."""
    anchors = sorted(rows["anchor"].unique())
    for test in test_anchors:
        before = [a for a in anchors if a < test]
        minimum_data.check_buyers(rows, before[:-1], before[-1], f"evaluate (test month {test})")
