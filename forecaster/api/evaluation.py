"""``fc.evaluate``: the out-of-time backtest of every arm, as an :class:`Evaluation` object
(what ``forecaster evaluate`` writes into a report folder, and what it prints)."""

from __future__ import annotations

import html
from functools import cached_property
from pathlib import Path
from typing import Sequence

import pandas as pd
from matplotlib.figure import Figure

from forecaster import destination, evaluation, power, progress
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.evaluation import EvaluationSetup
from forecaster.providers import DEFAULT_PROVIDER, ForecasterChoice, registration, resolve
from forecaster.spending import DEFAULT_MAX_FAILED, Confirm, approve_cost, check_share, failure_checked
from models.evaluate import EvaluationResult
from narrator.panel import parse_month

NOT_MADE = "평가를 끝내지 않았으므로 보고서를 쓰지 않았습니다."
POOLED = "pooled"
SHOWN_METRICS = ("rps", "log_loss", "brier", "pr_auc", "gini", "spend_mae")  # the _repr_html_ table's columns


class Evaluation:
    """The result of :func:`evaluate`: every figure of the report, as frames and figures.

    Attributes: ``setup`` (how the numbers were made: test anchors, sample, scheme,
    provider), ``result`` (the backtest's rows and scores), ``ledger`` (the LLM usage, or
    None). Properties: :attr:`metrics`, :attr:`differences`, :attr:`predictions`,
    :attr:`plots`, :attr:`report_data`, :attr:`can_answer`.
    """

    def __init__(self, setup: EvaluationSetup, result: EvaluationResult, ledger: dict | None = None) -> None:
        self.setup, self.result, self.ledger = setup, result, ledger

    @cached_property
    def report_data(self) -> dict:
        """Every number of the report under stable keys: exactly the report's ``metrics.json``."""
        from forecaster.report.core import build_report_data

        return build_report_data(self.setup, self.result, self.ledger)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """One row per arm, anchor (a test month, or ``"pooled"``) and metric: columns
        ``arm``, ``anchor``, ``metric``, ``value`` (from :attr:`report_data`)."""
        rows = []
        for arm in self.report_data["arm_order"]:
            entry = self.report_data["arms"][arm]
            scopes = {POOLED: entry["pooled"], **entry["by_anchor"]}
            rows += [(arm, anchor, metric, value) for anchor, scores in scopes.items()
                     for metric, value in scores.items()]
        return pd.DataFrame(rows, columns=["arm", "anchor", "metric", "value"])

    @cached_property
    def differences(self) -> pd.DataFrame:
        """Each augmented arm minus ``xgb_base``, paired over customers: columns
        ``comparison``, ``anchor`` (a test month, or ``"pooled"``), ``metric``, ``diff``,
        ``lo``, ``hi`` (the 95% bootstrap interval), ``a``, ``b`` (the two arms' values),
        ``se``, ``mde`` (the smallest difference these rows could detect) and the resample
        counts."""
        data, rows = self.report_data, []
        for comparison, by_metric in data["differences"].items():
            scopes = {POOLED: by_metric, **data["differences_by_anchor"].get(comparison, {})}
            rows += [{"comparison": comparison, "anchor": anchor, "metric": metric, **figures}
                     for anchor, metrics in scopes.items() for metric, figures in metrics.items()]
        return pd.DataFrame(rows)

    @property
    def predictions(self) -> pd.DataFrame:
        """One row per (arm, test anchor, customer): the report's ``predictions.parquet``."""
        return self.result.predictions

    @cached_property
    def plots(self) -> dict[str, Figure]:
        """The report's figures by name (``reliability``, ``pr_curve``, ``gains``,
        ``confusion``, ``differences``, ``importance``, ``learning_curve``), as matplotlib
        figures: a notebook shows one by putting it last in a cell."""
        from forecaster.report.core import figures

        return figures(self.report_data, self.predictions)

    @property
    def can_answer(self) -> bool:
        """Whether the test rows are enough for a conclusion (see docs/minimum-data.md)."""
        return bool(self.report_data["data_sufficiency"]["can_answer"])

    @property
    def headline(self) -> list[str]:
        """The report's headline sentences, in Korean."""
        from forecaster.report import text

        return text.headline_sentences(self.report_data)

    def write_report(self, folder: str | Path) -> dict[str, Path]:
        """Write report.html, report.md, metrics.json, predictions.parquet and the figures
        into ``folder``: a new or empty folder or an earlier report, replaced atomically (never
        half-written); returns output name -> path. Raises UserError for any other folder."""
        from forecaster.report.core import write_report

        out = Path(folder)
        destination.check_folder(out, destination.REPORT)

        def write(staging: Path) -> dict[str, Path]:
            written = write_report(staging, self.setup, self.result, self.ledger)
            return {key: path.relative_to(staging) for key, path in written.items()}

        written = destination.publish_folder(out, destination.REPORT, write)
        return {key: out.absolute() / rel for key, rel in written.items()}

    def _metric_table(self) -> pd.DataFrame:
        pooled = self.metrics[self.metrics["anchor"] == POOLED]
        table = pooled.pivot(index="arm", columns="metric", values="value")
        table = table.reindex(index=self.report_data["arm_order"])
        return table[[m for m in SHOWN_METRICS if m in table.columns]]

    def __repr__(self) -> str:
        setup = self.setup
        return (f"<Evaluation {setup.dataset.name}: test {setup.test_anchors[0]}..{setup.test_anchors[-1]}, "
                f"{len(self.report_data['arm_order'])} arms, forecaster {setup.provider}>")

    def _repr_html_(self) -> str:
        lines = "".join(f"<p>{html.escape(s)}</p>" for s in self.headline)
        warnings = "".join(f"<li>{html.escape(str(w.get('message', w)))}</li>"
                           for w in self.report_data["warnings"])
        warned = f"<ul style='color:#b00'>{warnings}</ul>" if warnings else ""
        table = self._metric_table().to_html(float_format=lambda v: f"{v:.4f}", na_rep="")
        return f"<div><h4>{html.escape(repr(self))}</h4>{lines}{warned}{table}</div>"


def _anchor_range(test_anchors: str | Sequence[str | pd.Period] | None) -> str | None:
    """``"A..B"`` as given, or the range of a sequence of consecutive months."""
    if test_anchors is None or isinstance(test_anchors, str):
        return test_anchors
    try:
        months = [parse_month(m) for m in test_anchors]
    except ValueError as exc:
        raise UserError(f"test_anchors={list(test_anchors)!r}: {exc}") from None
    if not months or any(b != a + 1 for a, b in zip(months, months[1:])):
        raise UserError(f"test_anchors={[str(m) for m in months]!r}: give consecutive months, or 'A..B'")
    return f"{months[0]}..{months[-1]}"


def evaluate(dataset: Dataset, forecaster: ForecasterChoice = DEFAULT_PROVIDER, *,
             test_anchors: str | Sequence[str | pd.Period] | None = None, sample_customers: int | None = None,
             seed: int = 0, bootstrap: int = 1000, max_failed: float = DEFAULT_MAX_FAILED,
             confirm: Confirm = False, budget_usd: float | None = None, llm_sample_customers: int | None = None,
             target_mde: float | None = None) -> Evaluation:
    """Backtest every arm out of time on ``dataset``, as ``forecaster evaluate`` does.

    Parameters:
        dataset: from :func:`load_dataset` or :func:`load_transactions`.
        forecaster: ``"empirical"`` (offline, not an LLM), ``"llm"`` (the endpoint of the
            environment) or an :class:`LLMForecaster`.
        test_anchors: ``"A..B"`` or consecutive months (default: the last 3 with an outcome).
        sample_customers: a stratified, seeded sample of this many customers.
        seed, bootstrap: the run's seed and the number of bootstrap resamples.
        max_failed: the share of failed LLM forecasts above which the run stops.
        confirm, budget_usd: consent to an LLM run estimated above $1 (``confirm=True``, a
            function shown the estimate, or a budget the estimate stays within).
        llm_sample_customers, target_mde: with an LLM forecaster, the run first evaluates the
            empirical forecaster on every customer (free) to estimate the smallest RPS
            difference it could detect (:mod:`forecaster.power`); the LLM arms then run on a
            stratified sample of this many customers, or on the smallest sample that detects
            ``target_mde``, or (neither) on every customer. ``report_data["power"]`` keeps
            the estimates and the empirical run's figures on every customer.

    Returns: an :class:`Evaluation`.

    Raises: ``UserError`` (data too short, bad anchors, unknown provider),
    ``CostNotApproved``, ``LLMRunFailed``.

    Example::

        ev = fc.evaluate(fc.load_dataset("cdnow"), test_anchors="1998-04..1998-06")
        ev.metrics.query("metric == 'rps' and anchor == 'pooled'")
    """
    check_share(max_failed)
    anchors = _anchor_range(test_anchors)
    # opens the forecaster: a missing model or key fails here, before the free run of the plan
    setup = evaluation.prepare(dataset, anchors, sample_customers, seed, bootstrap, forecaster)
    plan = _power_plan(dataset, forecaster, anchors, sample_customers, seed, bootstrap, llm_sample_customers,
                       target_mde)
    if plan is not None and plan.sample_customers != sample_customers:
        setup = evaluation.prepare(dataset, anchors, plan.sample_customers, seed, bootstrap, forecaster)
    for note in setup.notes:
        progress.notice(note)
    approve_cost(setup.forecaster, setup.histories(), confirm, budget_usd)
    setup.forecaster.answer_ahead(setup.histories())
    forecast_fn = failure_checked(setup.forecaster, max_failed, NOT_MADE)
    result = evaluation.run(setup, forecast_fn, progress=progress.step)
    if plan is not None:
        result.metrics["power"] = plan.to_dict()
    made = Evaluation(setup, result, setup.forecaster.ledger_summary())
    if not made.can_answer:
        progress.warning(f"경고: {made.report_data['data_sufficiency']['reason']}")
    return made


def _power_plan(dataset: Dataset, forecaster: ForecasterChoice, anchors: str | None, sample_customers: int | None,
                seed: int, bootstrap: int, llm_sample_customers: int | None,
                target_mde: float | None) -> power.PowerPlan | None:
    """An LLM run's plan (:func:`forecaster.power.plan_llm_run`), printed before anything is
    sent; None for a forecaster that asks no one."""
    if not registration(resolve(forecaster)[0]).is_llm:
        if llm_sample_customers is not None or target_mde is not None:
            raise UserError("--llm-sample-customers and --target-mde plan an LLM run, and this forecaster sends "
                            "nothing; drop them, or sample every arm with --sample-customers")
        return None
    progress.notice("LLM을 부르기 전에 경험적 예측기(LLM 아님)로 같은 평가를 먼저 돌려, 이 실행이 검출할 수 있는 차이를 "
                    "추정합니다(비용 없음).")
    plan = power.plan_llm_run(dataset, anchors, sample_customers, seed, bootstrap, llm_sample_customers, target_mde,
                              progress.step)
    for line in plan.lines():
        progress.notice(line)
    return plan
