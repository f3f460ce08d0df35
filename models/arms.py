"""The arms of the backtest: each turns training/validation rows into a bucket distribution
and an expected spend for target rows. Every arm sees only rows whose anchor precedes the
origin's test anchor; the validation anchor (the last training anchor) is for early stopping
and for the purchase threshold. Which arms exist, and the columns each reads, is declared in
:mod:`models.arm_specs`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from models.rows import BTYD_EXPECTED_SPEND, BTYD_P_PURCHASE
from models.xgb import DEFAULT_PARAMS, DEFAULT_THREADS, HurdleXGB

PERSISTENCE_EPS_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass(frozen=True)
class ArmOutput:
    probs: np.ndarray
    expected_spend: np.ndarray
    note: str = ""


def climatology(train: pd.DataFrame, n_buckets: int) -> np.ndarray:
    """Bucket frequencies of the training rows' outcomes."""
    counts = np.bincount(train["label"].to_numpy(), minlength=n_buckets).astype(float)
    return counts / counts.sum()


def spend_from_probs(probs: np.ndarray, representative: np.ndarray) -> np.ndarray:
    """Expected spend of a bucket distribution given each bucket's mean training spend."""
    return probs @ representative


def climatology_arm(train: pd.DataFrame, target: pd.DataFrame, rep: np.ndarray) -> ArmOutput:
    clim = climatology(train, len(rep))
    probs = np.tile(clim, (len(target), 1))
    return ArmOutput(probs, spend_from_probs(probs, rep))


def _persistence_probs(rows: pd.DataFrame, clim: np.ndarray, eps: float, edges_assign) -> np.ndarray:
    last = edges_assign(rows["spend_lag1"].fillna(0.0).to_numpy())
    onehot = np.eye(len(clim))[last]
    return (1 - eps) * onehot + eps * clim


def persistence_arm(train: pd.DataFrame, val: pd.DataFrame, target: pd.DataFrame, rep: np.ndarray,
                    assign) -> ArmOutput:
    """Last month's bucket, mixed with climatology; the mixing weight is the one with the
    lowest log loss on the validation anchor."""
    clim = climatology(train, len(rep))
    y_val = val["label"].to_numpy()

    def val_loss(eps: float) -> float:
        p = _persistence_probs(val, clim, eps, assign)[np.arange(len(val)), y_val]
        return float(-np.log(np.clip(p, 1e-15, 1)).mean())

    eps = min(PERSISTENCE_EPS_GRID, key=val_loss)
    probs = _persistence_probs(target, clim, eps, assign)
    return ArmOutput(probs, spend_from_probs(probs, rep), note=f"eps={eps}")


def btyd_arm(train: pd.DataFrame, target: pd.DataFrame, rep: np.ndarray) -> ArmOutput:
    """The BTYD purchase probability; the bucket given a purchase at its training shares
    (BTYD models say nothing about the spend bucket); spend from Gamma-Gamma. A row the
    model could not forecast (no repeat purchase anywhere before the anchor to fit on) is
    scored as climatology and counted, as a failed forecaster row is."""
    clim = climatology(train, len(rep))
    cond = clim[1:] / clim[1:].sum()
    p = target[BTYD_P_PURCHASE].to_numpy(dtype=float)
    probs = np.column_stack([1 - p, p[:, None] * cond])
    spend = target[BTYD_EXPECTED_SPEND].to_numpy(dtype=float, copy=True)
    missing = ~np.isfinite(p) | ~np.isfinite(spend)
    if missing.any():
        probs[missing] = clim
        spend[missing] = spend_from_probs(clim[None, :], rep)[0]
    return ArmOutput(probs, spend, note=f"unforecast={int(missing.sum())}")


def forecaster_arm(train: pd.DataFrame, target: pd.DataFrame, rep: np.ndarray, prob_cols: list[str],
                   spend_col: str) -> ArmOutput:
    """The forecaster's own distribution; a failed forecast is scored as climatology and
    counted, so the arm is scored on every row."""
    # copies: the failed rows are overwritten below, and pandas may hand out read-only views
    probs = target[prob_cols].to_numpy(dtype=float, copy=True)
    spend = target[spend_col].to_numpy(dtype=float, copy=True)
    failed = np.isnan(probs).any(axis=1)
    if failed.any():
        clim = climatology(train, len(rep))
        probs[failed] = clim
        spend[failed] = spend_from_probs(clim[None, :], rep)[0]
    return ArmOutput(probs, spend, note=f"failed={int(failed.sum())}")


def bound_arm(target: pd.DataFrame, prob_cols: list[str], spend_col: str) -> ArmOutput:
    """A synthetic-data bound (the oracle, the bayes arm) as its columns give it: it was
    computed for the test rows beforehand and is not fitted here."""
    return ArmOutput(target[prob_cols].to_numpy(dtype=float), target[spend_col].to_numpy(dtype=float))


def hurdle(n_buckets: int, seed: int, n_threads: int = DEFAULT_THREADS, params: Mapping | None = None) -> HurdleXGB:
    """An unfitted hurdle model; ``params`` override :data:`models.xgb.DEFAULT_PARAMS` (a
    run's tuned settings, :mod:`models.tuning`)."""
    return HurdleXGB(n_buckets=n_buckets, seed=seed, n_threads=n_threads, params={**DEFAULT_PARAMS, **(params or {})})


def fit_xgb(train: pd.DataFrame, val: pd.DataFrame, cols: list[str], n_buckets: int, seed: int,
            n_threads: int = DEFAULT_THREADS, params: Mapping | None = None) -> HurdleXGB:
    """The hurdle model (:func:`hurdle`) on ``cols``, early-stopped on ``val``. A run may fit
    with another function of this signature (:data:`Fit`: on a Dask cluster,
    ``forecaster.dask_train.ClusterRows.fit``)."""
    return hurdle(n_buckets, seed, n_threads, params).fit(
        train[cols], train["label"].to_numpy(), val[cols], val["label"].to_numpy()
    )


# how a run fits each XGBoost model: fit_xgb's signature
Fit = Callable[..., HurdleXGB]


def xgb_output(model: HurdleXGB, target: pd.DataFrame, rep: np.ndarray) -> ArmOutput:
    probs = model.predict_proba(target)
    return ArmOutput(probs, spend_from_probs(probs, rep),
                     note=f"rounds={model.purchase_.best_iteration + 1}/{model.bucket_.best_iteration + 1}")
