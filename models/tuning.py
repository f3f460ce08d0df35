"""Hyperparameters chosen on validation months only, by a small documented grid search.

What is searched
----------------
* XGBoost (:func:`tune_xgb`): ``max_depth`` {3, 4, 6} x ``min_child_weight`` {5, 20} at
  ``eta`` 0.1 (:data:`XGB_GRID`, 6 settings, the first commit's 4 / 0.1 / 5 among them),
  the other settings as :data:`models.xgb.DEFAULT_PARAMS`. Why so few: on CDNOW (two cores)
  18 candidates with ``min_child_weight`` 1 took 46 s, about doubling ``forecaster
  evaluate`` (49 s), and the 1s ranked in the lower half at every depth and rate (tuning
  month 1998-02: RPS 0.03697-0.03699 against 0.03688 for the best); ``eta`` 0.05 won there by
  0.2% of RPS on the tuning month but about tripled the boosting rounds of every later fit
  (the origins' fits: 29 s -> 42 s) and did not improve the test months (xgb_base RPS
  0.034444 against 0.034436), so it is left out. Other settings tried on synthetic:10000
  seeds 0/1 (issue 11, after the season shift; tuning month 2024-08; ``xgb_base+btyd``
  pooled RPS ratio to bayes, against 1.0089/1.0051 with the grid's choice): ``max_bin`` 256
  1.0101/1.0053, ``eta`` 0.05 with 800 rounds 1.0085/1.0049, ``subsample`` and
  ``colsample_bytree`` 1.0 1.0096/1.0052, ``max_depth`` 8 1.0141/1.0121. None beat the
  choice on the tuning month on both seeds; depth 8 is worse on both, and the others
  differ from the choice by less than the boosters' own seed noise (XGBoost seeds 1-3 of the chosen settings: 1.0100-1.0104 on data seed 0,
  seeds 1-2: 1.0060-1.0064 on data seed 1; on data seed 0 the tuning month's RPS moves
  0.5% with the XGBoost seed, as much as between the grid's candidates), so none is added.
* The purchase booster's offset (:data:`OFFSETS`, issue 11), each grid entry tried with
  both: ``season_shift`` (the model fitted without the ``repeat_buy`` column) or the log-odds
  of ``repeat_buy``, a data-fitted repeat-purchase posterior (:mod:`models.repeat`: monthly
  orders Poisson(lambda s_m) with lambda ~ Gamma, Pareto/NBD's purchasing, Schmittlein et
  al. 1987, s_m the order-rate seasonal factors, and a Beta-geometric dropout at each
  month's start as in BG/BB, Fader, Hardie & Shang 2010, fitted by maximum likelihood on
  customer counts by first month, last month with an order and orders after the first).
  Why chosen, not fixed: neither offset wins on both kinds of shop. With the repeat offset
  everywhere, synthetic:10000 seeds 0 / 1 went from RPS ratio to bayes (xgb_base+btyd)
  1.0089 / 1.0051 to 1.0040 / 1.0038, but CDNOW's test months got worse (xgb_base pooled
  RPS +0.000131, 95% +0.000035..+0.000227; PR-AUC -0.0058). The tuning month tells the two
  apart (xgb_base fitted before it and scored on it, RPS with ``season_shift`` / the repeat
  offset: synthetic seed 0 (2024-08) 0.031296 / 0.031277, seed 1 0.032305 / 0.032085,
  CDNOW (1998-02) 0.036834 / 0.036858), so the choice is made there with the other
  settings. The chosen offset applies to every XGBoost arm of the run (:func:`offset_columns`
  drops ``repeat_buy`` from their columns under ``season_shift``; the booster takes its
  offset from the columns it is fitted on, so batch, explain and Dask follow from the saved
  feature names). The default, when no search can run, is ``season_shift``, the offset
  before the search.
* The empirical forecaster (:func:`tune_empirical`): half-life x purchase prior strength x
  bucket prior strength over :data:`EMPIRICAL_GRID` (27 candidates).

Which month
-----------
An origin's validation anchor V already early-stops the boosters and tunes the purchase
threshold, so the choice is made one month earlier, on the *tuning month* U = the anchor
before V: every XGBoost candidate is fitted on the anchors before U, early-stopped on U and
scored on U; the empirical forecaster is fitted on the panel cut before U and scored on U.
Early stopping and scoring on the same month flatters every candidate alike (it picks the
number of rounds, not the setting), and keeps the search to the rows the fit already has.
No row of V, of a test anchor or of any later month is read, so the choice cannot have
seen a test month (``tests/test_tuning.py`` perturbs all of them and gets the same choice).

Criterion
---------
The ranked probability score (RPS) of the whole bucket distribution on U, the report's
headline metric; the purchase log loss is recorded beside it for each candidate. Ties go to
the earlier candidate in the grid. The caller (``forecaster/evaluation.py``,
``forecaster/artifact.py``) tunes once per run and applies the choice to every origin and
every XGBoost arm, baseline and augmented alike, so their comparison stays fair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import product

import numpy as np
import pandas as pd

from models import metrics
from models.empirical import DEFAULT_SETTINGS, EmpiricalForecaster, EmpiricalSettings
from models.errors import InsufficientData
from models.arms import Fit, fit_xgb
from models.repeat import REPEAT_COLUMN
from models.season import SHIFT_COLUMN
from models.xgb import DEFAULT_PARAMS, DEFAULT_THREADS
from narrator.panel import HISTORY_MONTHS, HistoryBatch, MonthlyPanel
from structurer.schema import BucketScheme

CRITERION = "rps"  # lower is better; see the module doc
XGB_TUNED_KEYS = ("max_depth", "eta", "min_child_weight")
XGB_GRID: tuple[dict, ...] = tuple(
    {"max_depth": depth, "eta": eta, "min_child_weight": weight}
    for depth, eta, weight in product((3, 4, 6), (0.1,), (5.0, 20.0)))
EMPIRICAL_GRID: tuple[EmpiricalSettings, ...] = tuple(
    EmpiricalSettings(half_life, purchase, bucket)
    for half_life, purchase, bucket in product((1.5, 3.0, 6.0), (1.0, 3.0, 10.0), (1.0, 2.0, 5.0)))
OFFSET_KEY = "purchase_offset"  # the column the purchase booster's offset comes from (module doc)
OFFSETS = (SHIFT_COLUMN, REPEAT_COLUMN)  # in this order: a tie keeps the season shift
# the settings before any search: what a run uses when the tuning month has too little data
XGB_DEFAULT = {**{key: DEFAULT_PARAMS[key] for key in XGB_TUNED_KEYS}, OFFSET_KEY: SHIFT_COLUMN}


@dataclass(frozen=True)
class Tuning:
    """One search's outcome: ``chosen`` (the settings to apply), ``default`` (the settings
    before any search), ``month`` (the tuning month U, None when no search ran),
    ``candidates`` (each candidate's settings with its ``rps`` and ``purchase_log_loss`` on U,
    in grid order) and ``note`` (why no search ran)."""

    chosen: dict
    default: dict
    month: str | None
    candidates: tuple[dict, ...] = ()
    note: str = ""

    def to_json(self) -> dict:
        """What metrics.json and config.json record: the month, the criterion, the grid's
        scores, the choice and the default it replaced."""
        return {"month": self.month, "criterion": CRITERION, "chosen": dict(self.chosen),
                "default": dict(self.default), "candidates": [dict(c) for c in self.candidates],
                "note": self.note}


def xgb_params(chosen: dict) -> dict:
    """The XGBoost parameters of a choice (``chosen`` without its purchase offset)."""
    return {key: chosen[key] for key in XGB_TUNED_KEYS if key in chosen}


def offset_columns(cols: list[str], chosen: dict) -> list[str]:
    """The feature columns of an XGBoost arm under a choice: without ``repeat_buy`` unless
    the choice's offset is ``repeat_buy`` (the booster takes its offset from the columns it is
    fitted on, :meth:`models.xgb.HurdleXGB._offset_column`).

    Example: ``offset_columns(["recency", "repeat_buy"], {"purchase_offset": "season_shift"})``
    is ``["recency"]``."""
    keep_repeat = chosen.get(OFFSET_KEY, XGB_DEFAULT[OFFSET_KEY]) == REPEAT_COLUMN
    return [c for c in cols if keep_repeat or c != REPEAT_COLUMN]


def tuning_month(anchors: list[str], validation_anchor: str) -> str:
    """The anchor before ``validation_anchor`` among ``anchors``; InsufficientData when no
    anchor is left before that one to fit on.

    Example: ``tuning_month(["1997-02", "1997-03", "1997-04"], "1997-04")`` is ``"1997-03"``."""
    before = sorted(a for a in set(anchors) if a < validation_anchor)
    if len(before) < 2:
        raise InsufficientData(f"validation anchor {validation_anchor}: tuning needs two earlier anchors "
                               f"(fit + tuning month), found {len(before)}")
    return before[-1]


def _scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    bought = (labels > 0).astype(float)
    return {"rps": metrics.rps(probs, labels), "purchase_log_loss": metrics.binary_log_loss(1 - probs[:, 0], bought)}


def _best(candidates: list[dict]) -> dict:
    return min(candidates, key=lambda c: c[CRITERION])  # min keeps the first of equal scores


def tune_xgb(rows: pd.DataFrame, validation_anchor: str, cols: list[str], n_buckets: int, seed: int,
             grid: tuple[dict, ...] = XGB_GRID, n_threads: int = DEFAULT_THREADS, fit: Fit = fit_xgb) -> Tuning:
    """The XGBoost settings of ``grid`` with the lowest RPS on the tuning month (the anchor
    before ``validation_anchor``), each fitted on the anchors before it (module doc).

    Parameters: ``rows`` (anchor rows with ``anchor``, ``label`` and ``cols``; only anchors
    before ``validation_anchor`` are read), ``cols`` (the feature columns: the baseline's),
    ``n_buckets``, ``seed``, ``grid`` (dicts of ``max_depth``, ``eta``, ``min_child_weight``;
    a key left out keeps its default), ``fit`` (how each candidate is fitted:
    :func:`models.arms.fit_xgb` here, or the run's cluster fit).

    Every grid entry is tried with each purchase offset of :data:`OFFSETS` whose column is
    in ``cols`` (``season_shift``: the model fitted without ``repeat_buy``), unless the entry
    names its ``purchase_offset``.

    Returns: a :class:`Tuning`; ``chosen`` holds the three searched keys and
    ``purchase_offset`` (apply them with :func:`xgb_params` and :func:`offset_columns`).

    Raises: InsufficientData when there is no anchor to fit on before the tuning month or no
    purchase in the fit or tuning rows.

    Example: ``tune_xgb(rows, "1998-03", spec.base, scheme.n_buckets, seed=0).chosen``
    gives e.g. ``{"max_depth": 4, "eta": 0.1, "min_child_weight": 5.0}``."""
    month = tuning_month(rows["anchor"].unique().tolist(), validation_anchor)
    fit_rows, tune_rows = rows[rows["anchor"] < month], rows[rows["anchor"] == month]
    labels = tune_rows["label"].to_numpy()
    candidates = []
    offsets = [o for o in OFFSETS if o == SHIFT_COLUMN or o in cols]
    for partial in grid:
        for offset in [partial[OFFSET_KEY]] if OFFSET_KEY in partial else offsets:
            settings = {**XGB_DEFAULT, **partial, OFFSET_KEY: offset}  # a grid may vary some of the keys only
            used = offset_columns(cols, settings)
            model = fit(fit_rows, tune_rows, used, n_buckets, seed, n_threads, params=xgb_params(settings))
            candidates.append({**settings, **_scores(model.predict_proba(tune_rows[used]), labels)})
    chosen = _best(candidates)
    return Tuning({key: chosen[key] for key in XGB_DEFAULT}, XGB_DEFAULT, month, tuple(candidates))


def _empirical_target(panel: MonthlyPanel, month: pd.Period, scheme: BucketScheme) -> tuple[HistoryBatch, np.ndarray]:
    """The histories at ``month`` (months before it) and their bucket that month."""
    cut = panel.before(month)
    batch = HistoryBatch.from_panel(cut, month, HISTORY_MONTHS)
    ids, spend, _ = panel.outcome(month)
    if not np.array_equal(ids, batch.customer_ids):
        raise AssertionError("outcome and history populations differ")
    return batch, scheme.assign(spend)


def tune_empirical(panel: MonthlyPanel, tuning_anchor: pd.Period, scheme: BucketScheme,
                   grid: tuple[EmpiricalSettings, ...] = EMPIRICAL_GRID) -> Tuning:
    """The empirical forecaster's settings of ``grid`` with the lowest out-of-time RPS at
    ``tuning_anchor``: each candidate fitted on the panel cut before it and scored on the
    customers known then. Months after ``tuning_anchor`` are never read.

    Parameters: ``panel``, ``tuning_anchor`` (a month with an outcome and earlier customers),
    ``scheme`` (the run's bucket scheme), ``grid`` (:class:`EmpiricalSettings`).

    Returns: a :class:`Tuning`; ``chosen`` holds the :class:`EmpiricalSettings` fields
    (``EmpiricalSettings(**tuning.chosen)`` rebuilds it).

    Raises: InsufficientData when no customer is known before ``tuning_anchor``.

    Example: ``EmpiricalSettings(**tune_empirical(panel, pd.Period("1998-02", "M"), scheme).chosen)``."""
    cut = panel.before(tuning_anchor)
    if len(cut.customer_ids) == 0:
        raise InsufficientData(f"tuning month {tuning_anchor}: no customer before it to score the forecaster on")
    batch, labels = _empirical_target(panel, tuning_anchor, scheme)
    candidates = []
    for settings in grid:
        forecaster = EmpiricalForecaster.from_settings(scheme, settings).fit(cut)
        candidates.append({**asdict(settings), **_scores(forecaster.forecast_arrays(batch).probs, labels)})
    chosen = _best(candidates)
    defaults = asdict(DEFAULT_SETTINGS)
    return Tuning({key: chosen[key] for key in defaults}, defaults, str(tuning_anchor), tuple(candidates))


def untuned(default: dict, reason: str) -> Tuning:
    """The record of a run that kept ``default`` because no search could run (``reason``)."""
    return Tuning(dict(default), dict(default), None, (), reason)
