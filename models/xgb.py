"""XGBoost spend-bucket model as a hurdle: P(buy) x P(bucket | buy).

* ``purchase``: ``binary:logistic`` on every row — P(any purchase next month). Its
  ``pred_contribs`` are exactly additive in log-odds of purchase, which is what the
  per-customer explanation needs.
* ``bucket``: ``multi:softprob`` over the positive buckets, on the rows that bought.

The purchase booster starts every row from a fixed offset, taken from the columns it is
fitted on. With ``repeat_buy`` among them: its log-odds, P(buy in the anchor month) of the
season-aware repeat-purchase model fitted on the months before the anchor
(:mod:`models.repeat`; 0 where it is missing), so the trees learn corrections to a
posterior that already ranks customers by frequency, recency and the season (as a stacked
offset enters a GLM: McCullagh & Nelder 1989, section 6.2.3). Without it: the row's
``season_shift``, the change of the customer's log-odds that the anchor month's season makes
(:class:`models.season.SeasonContext`), or without that ``log`` of the ``season_index``
(:func:`models.season.season_offset`). Which of the first two a run uses is chosen on its
tuning month (:mod:`models.tuning`): the repeat offset took synthetic:10000's
xgb_base+btyd RPS ratio to the ``bayes`` bound from 1.0089 / 1.0051 (seeds 0 / 1) to
1.0040 / 1.0038 but made CDNOW's test months worse (xgb_base RPS +0.000131), and the tuning
month prefers it on the synthetic shops and not on CDNOW (issue 11). Its SHAP contributions
give the offset to the column it comes from, so each row still sums to the margin.

The bucket distribution is ``p_0 = 1 - P(buy)``, ``p_k = P(buy) * P(k | buy)``. Both
boosters early-stop on a validation anchor that precedes every test anchor (Chen &
Guestrin 2016, XGBoost; Cragg 1971 for the two-part/hurdle form). Models are saved in
XGBoost's own JSON format, never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from models.errors import InsufficientData
from models.repeat import REPEAT_COLUMN
from models.season import SEASON_COLUMN, SHIFT_COLUMN, season_offset

DEFAULT_PARAMS: dict = {
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.1,
    "min_child_weight": 5.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "max_bin": 64,
}
# Training threads. OpenMP's wait policy is the caller's to set, before xgboost loads
# (the command line sets OMP_WAIT_POLICY=PASSIVE at start-up; see forecaster/cli.py).
DEFAULT_THREADS = 2
MAX_ROUNDS = 400
EARLY_STOPPING = 25
PURCHASE_OBJECTIVE = {"objective": "binary:logistic", "eval_metric": "logloss"}
_MIN_P = 1e-6  # repeat_buy is kept in [_MIN_P, 1 - _MIN_P] before its log-odds become the offset


def check_buyers(train_buyers: int, validation_buyers: int) -> None:
    """InsufficientData unless both the training and the validation rows hold a purchase."""
    if train_buyers == 0 or validation_buyers == 0:
        raise InsufficientData("no purchases in the training or validation rows: cannot fit the bucket model")


@dataclass
class HurdleXGB:
    """scikit-learn style: ``fit`` returns self, fitted attributes end in ``_``.
    ``n_threads`` is XGBoost's ``nthread`` while training."""

    n_buckets: int
    seed: int = 0
    n_threads: int = DEFAULT_THREADS
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))

    def _train(self, objective: dict, X: pd.DataFrame, y: np.ndarray, Xv: pd.DataFrame, yv: np.ndarray,
               offset: bool = False) -> xgb.Booster:
        params = self.train_params(objective)
        dtrain = self._dmatrix(X, offset, label=y)
        dval = self._dmatrix(Xv, offset, label=yv)
        return xgb.train(params, dtrain, num_boost_round=MAX_ROUNDS, evals=[(dval, "validation")],
                         early_stopping_rounds=EARLY_STOPPING, verbose_eval=False)

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray) -> "HurdleXGB":
        """``y`` are bucket indices (0 = no purchase); the validation rows must come from an
        anchor before every anchor the model will be scored on."""
        y, y_val = np.asarray(y), np.asarray(y_val)
        self.feature_names_ = list(X.columns)
        self.purchase_ = self._train(PURCHASE_OBJECTIVE, X, (y > 0).astype(float), X_val, (y_val > 0).astype(float),
                                     offset=True)
        pos, pos_val = y > 0, y_val > 0
        check_buyers(int(pos.sum()), int(pos_val.sum()))
        self.bucket_ = self._train(self.bucket_objective(), X[pos], y[pos] - 1, X_val[pos_val], y_val[pos_val] - 1)
        return self

    def train_params(self, objective: dict) -> dict:
        """XGBoost's parameters for one of the two boosters (``objective``: :data:`PURCHASE_OBJECTIVE`
        or :meth:`bucket_objective`); also what :mod:`models.xgb_dask` trains with."""
        return {**self.params, "nthread": self.n_threads, **objective, "seed": self.seed}

    def bucket_objective(self) -> dict:
        return {"objective": "multi:softprob", "num_class": self.n_buckets - 1, "eval_metric": "mlogloss"}

    def _offset_column(self) -> str | None:
        """The feature the purchase booster's offset comes from (None: no offset)."""
        return next((c for c in (REPEAT_COLUMN, SHIFT_COLUMN, SEASON_COLUMN) if c in self.feature_names_), None)

    def _offset(self, X: pd.DataFrame) -> np.ndarray | None:
        """The purchase booster's log-odds offset of each row (module doc; None: no offset)."""
        column = self._offset_column()
        if column == REPEAT_COLUMN:
            p = np.clip(X[REPEAT_COLUMN].to_numpy(dtype=float), _MIN_P, 1.0 - _MIN_P)
            return np.nan_to_num(np.log(p) - np.log1p(-p), nan=0.0)
        if column == SHIFT_COLUMN:
            return np.nan_to_num(X[SHIFT_COLUMN].to_numpy(dtype=float), nan=0.0)
        return season_offset(X[SEASON_COLUMN].to_numpy()) if column is not None else None

    def _dmatrix(self, X: pd.DataFrame, offset: bool = False, label: np.ndarray | None = None) -> xgb.DMatrix:
        """``offset``: the purchase booster's matrix, which starts each row from its offset."""
        return xgb.DMatrix(X[self.feature_names_], label=label, feature_names=self.feature_names_,
                           base_margin=self._offset(X) if offset else None)

    def _best(self, booster: xgb.Booster) -> tuple[int, int]:
        return (0, booster.best_iteration + 1)

    def purchase_probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.purchase_.predict(self._dmatrix(X, offset=True), iteration_range=self._best(self.purchase_))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, n_buckets) bucket distribution; rows sum to 1."""
        p_buy = self.purchase_probability(X)
        cond = self.bucket_.predict(self._dmatrix(X), iteration_range=self._best(self.bucket_)).reshape(len(X), -1)
        return np.column_stack([1.0 - p_buy, p_buy[:, None] * cond])

    def purchase_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP contributions (log-odds of purchase) per feature plus ``bias``; each row
        sums to the purchase model's margin (Lundberg et al. 2020, TreeSHAP). XGBoost puts the
        offset in ``bias``; it is moved to the feature it comes from (``repeat_buy``, else
        ``season_shift``, else ``season_index``)."""
        contrib = self.purchase_.predict(self._dmatrix(X, offset=True), pred_contribs=True,
                                         iteration_range=self._best(self.purchase_))
        frame = pd.DataFrame(contrib, columns=[*self.feature_names_, "bias"], index=X.index)
        offset = self._offset(X)
        if offset is not None:
            frame[self._offset_column()] += offset
            frame["bias"] -= offset
        return frame

    def purchase_margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.purchase_.predict(self._dmatrix(X, offset=True), output_margin=True,
                                      iteration_range=self._best(self.purchase_))

    def importance(self) -> pd.DataFrame:
        """Total gain per feature of the purchase and bucket boosters."""
        rows = {name: {"purchase_gain": 0.0, "bucket_gain": 0.0} for name in self.feature_names_}
        for key, booster in (("purchase_gain", self.purchase_), ("bucket_gain", self.bucket_)):
            for name, gain in booster.get_score(importance_type="total_gain").items():
                rows[name][key] = gain
        return pd.DataFrame.from_dict(rows, orient="index")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.purchase_.save_model(folder / "purchase.json")
        self.bucket_.save_model(folder / "bucket.json")

    @classmethod
    def load(cls, folder: Path, n_buckets: int, feature_names: list[str]) -> "HurdleXGB":
        model = cls(n_buckets=n_buckets)
        model.feature_names_ = list(feature_names)
        model.purchase_ = xgb.Booster(model_file=str(folder / "purchase.json"))
        model.bucket_ = xgb.Booster(model_file=str(folder / "bucket.json"))
        return model
