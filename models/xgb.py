"""XGBoost spend-bucket model as a hurdle: P(buy) x P(bucket | buy).

* ``purchase``: ``binary:logistic`` on every row — P(any purchase next month). Its
  ``pred_contribs`` are exactly additive in log-odds of purchase, which is what the
  per-customer explanation needs.
* ``bucket``: ``multi:softprob`` over the positive buckets, on the rows that bought.

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


@dataclass
class HurdleXGB:
    """scikit-learn style: ``fit`` returns self, fitted attributes end in ``_``.
    ``n_threads`` is XGBoost's ``nthread`` while training."""

    n_buckets: int
    seed: int = 0
    n_threads: int = DEFAULT_THREADS
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS))

    def _train(self, objective: dict, X: pd.DataFrame, y: np.ndarray, Xv: pd.DataFrame, yv: np.ndarray) -> xgb.Booster:
        params = {**self.params, "nthread": self.n_threads, **objective, "seed": self.seed}
        dtrain = xgb.DMatrix(X, label=y, feature_names=list(X.columns))
        dval = xgb.DMatrix(Xv, label=yv, feature_names=list(X.columns))
        return xgb.train(params, dtrain, num_boost_round=MAX_ROUNDS, evals=[(dval, "validation")],
                         early_stopping_rounds=EARLY_STOPPING, verbose_eval=False)

    def fit(self, X: pd.DataFrame, y: np.ndarray, X_val: pd.DataFrame, y_val: np.ndarray) -> "HurdleXGB":
        """``y`` are bucket indices (0 = no purchase); the validation rows must come from an
        anchor before every anchor the model will be scored on."""
        y, y_val = np.asarray(y), np.asarray(y_val)
        self.feature_names_ = list(X.columns)
        self.purchase_ = self._train({"objective": "binary:logistic", "eval_metric": "logloss"},
                                     X, (y > 0).astype(float), X_val, (y_val > 0).astype(float))
        pos, pos_val = y > 0, y_val > 0
        if pos_val.sum() == 0 or pos.sum() == 0:
            raise InsufficientData("no purchases in the training or validation rows: cannot fit the bucket model")
        self.bucket_ = self._train(
            {"objective": "multi:softprob", "num_class": self.n_buckets - 1, "eval_metric": "mlogloss"},
            X[pos], y[pos] - 1, X_val[pos_val], y_val[pos_val] - 1,
        )
        return self

    def _dmatrix(self, X: pd.DataFrame) -> xgb.DMatrix:
        return xgb.DMatrix(X[self.feature_names_], feature_names=self.feature_names_)

    def _best(self, booster: xgb.Booster) -> tuple[int, int]:
        return (0, booster.best_iteration + 1)

    def purchase_probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.purchase_.predict(self._dmatrix(X), iteration_range=self._best(self.purchase_))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, n_buckets) bucket distribution; rows sum to 1."""
        d = self._dmatrix(X)
        p_buy = self.purchase_.predict(d, iteration_range=self._best(self.purchase_))
        cond = self.bucket_.predict(d, iteration_range=self._best(self.bucket_)).reshape(len(X), -1)
        return np.column_stack([1.0 - p_buy, p_buy[:, None] * cond])

    def purchase_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP contributions (log-odds of purchase) per feature plus ``bias``; each row
        sums to the purchase model's margin (Lundberg et al. 2020, TreeSHAP)."""
        contrib = self.purchase_.predict(self._dmatrix(X), pred_contribs=True,
                                         iteration_range=self._best(self.purchase_))
        return pd.DataFrame(contrib, columns=[*self.feature_names_, "bias"], index=X.index)

    def purchase_margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.purchase_.predict(self._dmatrix(X), output_margin=True,
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
