"""``fc.train`` and :class:`TrainedModel`: the models of ``forecaster train``, scored like
``forecaster batch`` and explained like ``forecaster explain``, in a notebook."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forecaster import artifact, model_warnings, pipeline, progress
from forecaster.datasets import Dataset
from forecaster.dates import parse_anchor
from forecaster.explain.core import Explanation, ensure_default_model, explain_customer
from forecaster.batch import BatchJob
from forecaster.memory import DEFAULT_CHUNK_CUSTOMERS
from forecaster.errors import LLMRunFailed, UserError
from forecaster.providers import DEFAULT_PROVIDER, ForecasterChoice, resolve
from forecaster.spending import (DEFAULT_MAX_FAILED, Confirm, approve_cost, check_failed_share, check_share,
                                 failure_checked)
from llm.ledger import DryRunEstimate

if TYPE_CHECKING:
    from forecaster.ingest_chunked import ChunkedScan

NOT_MADE = "모델을 만들지 않았으므로 저장하지 않았습니다."
ROWS_KEPT = "예측한 행은 LLMRunFailed.rows에 있습니다."


class TrainedModel:
    """The baseline (``xgb_base``) and final (``xgb_base+forecaster``) XGBoost models with
    their bucket scheme, thresholds and training summary, scikit-learn style.

    Parameters (of :meth:`fit`): ``forecaster`` (``"empirical"``, ``"llm"`` or an
    :class:`LLMForecaster`), ``sample_customers``, ``seed``, ``max_failed``, ``confirm``,
    ``budget_usd`` (as :func:`evaluate`), ``dask_client`` (a ``distributed.Client``: every
    XGBoost model is fitted on its cluster with ``xgboost.dask``, :mod:`forecaster.dask_train`;
    the command line's ``--dask ADDRESS --dask-training``). Fitted attributes: ``artifact_`` (what
    :meth:`save` writes), ``config_`` (config.json), ``scheme_``, ``summary_`` (validation
    figures per arm), ``warnings_`` (training warnings, Korean).

    Example::

        model = fc.TrainedModel().fit(dataset)     # or fc.train(dataset)
        model.save("model/")
        rows = fc.TrainedModel.load("model/").predict(dataset)
    """

    def __init__(self, forecaster: ForecasterChoice = DEFAULT_PROVIDER, *, sample_customers: int | None = None,
                 seed: int = 0, max_failed: float = DEFAULT_MAX_FAILED, confirm: Confirm = False,
                 budget_usd: float | None = None, dask_client: Any = None) -> None:
        self.forecaster, self.sample_customers, self.seed = forecaster, sample_customers, seed
        self.dask_client = dask_client
        self.max_failed, self.confirm, self.budget_usd = max_failed, confirm, budget_usd
        self._default = False  # the cached default model of `explain` (default_model)

    def fit(self, dataset: Dataset) -> "TrainedModel":
        """Fit on every anchor of ``dataset`` with a known outcome (the last is the validation
        month: early stopping, threshold); returns ``self``. Raises UserError (too little
        data, unknown provider), CostNotApproved, LLMRunFailed."""
        check_share(self.max_failed)
        resolve(self.forecaster)  # an unknown choice fails before any work
        panel = artifact.training_panel(dataset.panel, self.sample_customers, self.seed)
        scheme = artifact.training_scheme(panel)
        chosen, empirical_tuning = artifact.training_provider(self.forecaster, panel, scheme)
        approve_cost(chosen, (panel.histories(a) for a in pipeline.anchors_with_outcome(panel)),
                     self.confirm, self.budget_usd)
        chosen.answer_ahead(panel.histories(a) for a in pipeline.anchors_with_outcome(panel))
        forecast_fn = failure_checked(chosen, self.max_failed, NOT_MADE)
        self._fitted(artifact.train(panel, dataset.transactions, scheme, forecast_fn, chosen.info, dataset.name, self.seed,
                                    empirical_tuning=empirical_tuning, trainer=self._trainer()))
        for arm, figures in self.summary_.items():
            progress.notice(f"{arm}: 검증 RPS {figures['validation_rps']:.4f}, PR-AUC {figures['validation_pr_auc']:.3f}")
        for line in self.warnings_:
            progress.warning(line)
        return self

    def _trainer(self):
        """How the XGBoost models are fitted: here (None), or on ``dask_client``'s cluster."""
        if self.dask_client is None:
            return None
        from forecaster.dask_train import trainer  # dask: only with a client

        return trainer(self.dask_client)

    def _fitted(self, art: artifact.Artifact) -> "TrainedModel":
        self.artifact_, self.config_, self.scheme_ = art, art.config, art.scheme
        self.summary_ = art.config["summary"]
        self.warnings_ = model_warnings.lines(art.config)
        return self

    def _check_fitted(self) -> artifact.Artifact:
        if not hasattr(self, "artifact_"):
            raise UserError("this TrainedModel is not fitted: call .fit(dataset) or TrainedModel.load(folder)")
        return self.artifact_

    def save(self, folder: str | Path) -> Path:
        """Write the artifact folder (a new or empty folder or an earlier model folder,
        replaced atomically); returns its path. Raises UserError for any other folder."""
        self.artifact_ = artifact.save(self._check_fitted(), Path(folder))
        return Path(folder)

    @classmethod
    def load(cls, folder: str | Path) -> "TrainedModel":
        """The model saved in ``folder`` by :meth:`save` or ``forecaster train``; UserError
        (or its DamagedArtifact) naming what is missing, damaged or from other code."""
        art = artifact.load(Path(folder))
        model = cls(art.config["forecaster"]["provider"], seed=art.config.get("seed", 0))
        return model._fitted(art)

    def predict(self, dataset: Dataset, anchor: str | pd.Period | None = None, *, limit: int | None = None,
                forecaster: ForecasterChoice | None = None, max_failed: float = DEFAULT_MAX_FAILED,
                confirm: Confirm = False, budget_usd: float | None = None,
                chunk_customers: int | None = None) -> pd.DataFrame:
        """One row per customer of ``dataset`` for ``anchor`` (default: the month after the
        data ends): exactly the columns and rows of ``forecaster batch``.

        ``limit``: only the first N customers (by id). ``forecaster``: the provider the model
        was trained with, e.g. an :class:`LLMForecaster` with the endpoint's settings (by
        default the trained one, from the environment). ``chunk_customers``: forecast that
        many customers at a time (the same rows; less memory for features and answers, the
        rows themselves are all returned; :meth:`write_predictions` streams them to a file).
        Raises UserError, CostNotApproved, and LLMRunFailed when more than ``max_failed``
        of the LLM forecasts failed; the rows made (and paid for) are then on the
        exception's ``rows``."""
        job = self._approved_job(dataset, anchor, limit, forecaster, max_failed, confirm, budget_usd)
        frame = job.run(chunk_customers)
        self._check_run(job, max_failed, ROWS_KEPT, frame)
        return frame

    def write_predictions(self, dataset: Dataset, path: str | Path, anchor: str | pd.Period | None = None, *,
                          force: bool = False, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
                          limit: int | None = None, forecaster: ForecasterChoice | None = None,
                          max_failed: float = DEFAULT_MAX_FAILED, confirm: Confirm = False,
                          budget_usd: float | None = None) -> Counter:
        """:meth:`predict`'s rows written to ``path`` (.parquet or .csv) ``chunk_customers``
        customers at a time, as ``forecaster batch`` does: memory is bounded by the chunk,
        not by the number of rows; a killed run, called again with the same arguments,
        goes on from the last finished chunk (:mod:`forecaster.batch_stream`); the file is
        renamed into place at the end. Returns the count of rows per ``status``. Raises as
        :meth:`predict` (an existing ``path`` without ``force`` before any work);
        LLMRunFailed after the file is written."""
        from forecaster.batch import check_output
        from forecaster.batch_stream import stream_to_file

        path = Path(path)
        check_output(path, force)  # before any work
        job = self._approved_job(dataset, anchor, limit, forecaster, max_failed, confirm, budget_usd)
        counts = stream_to_file(job, path, force, chunk_customers)
        self._check_run(job, max_failed, f"결과 {sum(counts.values()):,}행은 실패한 행(status failed)까지 {path}에 썼습니다.")
        return counts

    def write_predictions_from_scan(self, scan: "ChunkedScan", path: str | Path, anchor: str | pd.Period | None = None,
                                    *, force: bool = False, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
                                    forecaster: ForecasterChoice | None = None,
                                    max_failed: float = DEFAULT_MAX_FAILED, confirm: Confirm = False) -> Counter:
        """:meth:`write_predictions` for a shop already scanned into spill files
        (``forecaster.ingest_chunked.open_scan``), one spill file of customers at a time
        (:mod:`forecaster.batch_partitioned`): the same file, with memory set by a spill
        file's customers instead of the whole panel. An LLM forecaster's run reads the whole
        panel instead: every prompt is approved and answered before the first row."""
        from forecaster.api.data import _announced
        from forecaster.batch import open_provider
        from forecaster.batch_partitioned import write_partitioned

        art = self._check_fitted()
        provider = open_provider(art, scan.currency, forecaster)
        if provider.is_llm:
            return self.write_predictions(_announced(scan.whole()), path, anchor, force=force,
                                          chunk_customers=chunk_customers, forecaster=forecaster,
                                          max_failed=max_failed, confirm=confirm)
        month = parse_anchor(anchor) if isinstance(anchor, str) else anchor
        counts = write_partitioned(art, scan, provider, Path(path), month, force, chunk_customers)
        for line in self.warnings_:
            progress.warning(line)
        return counts

    def _approved_job(self, dataset: Dataset, anchor: str | pd.Period | None, limit: int | None,
                      forecaster: ForecasterChoice | None, max_failed: float, confirm: Confirm,
                      budget_usd: float | None) -> BatchJob:
        """The batch job, its cost approved and (in batch mode) its prompts answered ahead."""
        check_share(max_failed)
        job = self._job(dataset, anchor, limit, forecaster)
        approve_cost(job.provider, job.all_histories(), confirm, budget_usd)
        job.provider.answer_ahead(job.all_histories())
        return job

    def _check_run(self, job: BatchJob, max_failed: float, consequence: str, rows: pd.DataFrame | None = None) -> None:
        for line in self.warnings_:
            progress.warning(line)
        try:
            check_failed_share(job.provider, max_failed, consequence)
        except LLMRunFailed as exc:
            exc.rows = rows
            raise

    def dry_run(self, dataset: Dataset, anchor: str | pd.Period | None = None, *, limit: int | None = None,
                forecaster: ForecasterChoice | None = None) -> DryRunEstimate | None:
        """The LLM calls, tokens and cost :meth:`predict` would need (sends nothing); None for a
        forecaster that asks no one."""
        job = self._job(dataset, anchor, limit, forecaster)
        return job.provider.forecaster.dry_run(job.histories)

    def _job(self, dataset: Dataset, anchor: str | pd.Period | None, limit: int | None,
             forecaster: ForecasterChoice | None) -> BatchJob:
        art = self._check_fitted()
        month = parse_anchor(anchor) if anchor is not None else dataset.panel.last_month + 1
        return BatchJob.open(art, dataset, month, limit, forecaster)

    def explain(self, dataset: Dataset, customer_id: str, anchor: str | pd.Period, *,
                forecaster: ForecasterChoice | None = None) -> Explanation:
        """One customer's forecast at ``anchor`` explained from the same evidence
        :meth:`predict` uses: narrative, forecaster answer, both models, TreeSHAP
        contributions. Returns an :class:`Explanation` (``.text``, ``.to_dict()``). Raises
        UserError for an unknown or not yet acquired customer, an anchor outside the data,
        or a ``forecaster`` other than the one the model was trained with."""
        art = self._check_fitted()
        return explain_customer(dataset, art, str(customer_id), parse_anchor(anchor), forecaster,
                                default_model=self._default)

    def __repr__(self) -> str:
        if not hasattr(self, "artifact_"):
            return f"TrainedModel(forecaster={self.forecaster!r}) (not fitted)"
        where = self.artifact_.name
        first, last = self.config_["trained_anchors"]
        return (f"<TrainedModel {self.config_['data']} {first}..{last}, validation {self.config_['validation_anchor']},"
                f" forecaster {self.config_['forecaster']['provider']}; {where}>")

    def _repr_html_(self) -> str:
        if not hasattr(self, "artifact_"):
            return f"<p>{html.escape(repr(self))}</p>"
        table = pd.DataFrame(self.summary_).T.to_html(float_format=lambda v: f"{v:.4f}")
        warned = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings_)
        return f"<div><h4>{html.escape(repr(self))}</h4>{f'<ul>{warned}</ul>' if warned else ''}{table}</div>"


def train(dataset: Dataset, forecaster: ForecasterChoice = DEFAULT_PROVIDER, *, sample_customers: int | None = None,
          seed: int = 0, max_failed: float = DEFAULT_MAX_FAILED, confirm: Confirm = False,
          budget_usd: float | None = None, dask_client: Any = None) -> TrainedModel:
    """Fit the baseline and final XGBoost models on every anchor of ``dataset`` with a known
    outcome, as ``forecaster train`` does: ``TrainedModel(forecaster, ...).fit(dataset)``.

    Parameters:
        dataset: from :func:`load_dataset` or :func:`load_transactions`.
        forecaster: ``"empirical"`` (offline, not an LLM), ``"llm"`` or an :class:`LLMForecaster`.
        sample_customers: train on a stratified, seeded sample of this many customers.
        seed: of the sample and of XGBoost.
        max_failed, confirm, budget_usd: as :func:`evaluate`.
        dask_client: a ``distributed.Client``: fit every XGBoost model on its cluster
            (``xgboost.dask``, every training row); None fits them here.

    Returns: the fitted :class:`TrainedModel` (``summary_``, ``warnings_``; ``.save(folder)``).

    Raises: ``NotEnoughData`` (too few months or buyers), ``UserError``, ``CostNotApproved``,
    ``LLMRunFailed``.

    Example::

        model = fc.train(fc.load_dataset("cdnow"))
        model.summary_["xgb_base+forecaster"]["validation_rps"]
    """
    return TrainedModel(forecaster, sample_customers=sample_customers, seed=seed, max_failed=max_failed,
                        confirm=confirm, budget_usd=budget_usd, dask_client=dask_client).fit(dataset)


def default_model(dataset: Dataset) -> TrainedModel:
    """The model ``forecaster explain`` uses without ``--model``: trained once with the
    empirical forecaster on ``dataset`` and kept in the user cache folder."""
    model = TrainedModel()._fitted(ensure_default_model(dataset))
    model._default = True  # the explanation says the model is the cached default
    return model


def save_predictions(rows: pd.DataFrame, path: str | Path, *, force: bool = False) -> Path:
    """Write :meth:`TrainedModel.predict`'s rows as ``forecaster batch`` does: a .parquet or
    .csv file written next to ``path`` and renamed into place (never half-written); CSV text
    cells a spreadsheet would run as a formula are neutralised. An existing file is replaced
    only with ``force=True``.

    Raises: ``UserError`` for another suffix, an existing file without ``force``, or a folder.

    Example::

        fc.save_predictions(model.predict(shop), "forecast-2026-12.csv")
    """
    from forecaster import batch  # heavy (xgboost): only when writing

    batch.write_atomically(rows, Path(path), force)
    return Path(path)
