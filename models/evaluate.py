"""The out-of-time backtest: expanding-window origins, every arm on the same test rows.

For each test anchor T the origin's training rows are the anchors strictly before T; the
last of them, V, is the validation anchor (early stopping, the purchase threshold, the
persistence mixing weight) and the model is fitted on anchors before V. Nothing is tuned on
a test anchor. The bucket scheme and each bucket's representative spend come from months
before the first test anchor (the caller fits them).

Each augmented arm's difference from ``xgb_base`` is bootstrapped over customers twice:
pooled over the test anchors and within each one, so a month that differs from the others
shows on its own rather than only as a shift of the pooled difference.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from models import arms, bootstrap, metrics
from models.arm_specs import (ARMS, AUGMENTED_ARMS, BOUND_ARMS, BTYD, CLIMATOLOGY, PERSISTENCE, XGB_BASE,
                              XGB_FORECASTER, ArmKind, ArmPlan, ArmSpec)
from models.errors import InsufficientData
from models.rows import FORECAST_PREFIXES, RowSpec
from models.xgb import HurdleXGB
from structurer.features import expected_spend_feature, probability_feature_names
from structurer.schema import BucketScheme

BOOTSTRAP_METRICS = {
    "rps": (bootstrap.RPS, "probs"),
    "log_loss": (bootstrap.LOG_LOSS, "probs"),
    "brier": (bootstrap.BRIER, "probs"),
    "spend_mae": (bootstrap.MAE, "spend"),
    "pr_auc": (bootstrap.PR_AUC, "purchase"),
}
LEARNING_CURVE_SIZES = (100, 1_000, 10_000)
RATIO_METRICS = ("rps", "log_loss")  # given for every arm as a ratio to each bound's (BOUND_ARMS)


@dataclass
class EvaluationResult:
    predictions: pd.DataFrame
    metrics: dict
    importance: pd.DataFrame  # gain per booster and mean |SHAP| of the final model


def arm_columns(base: list[str], forecaster: list[str], btyd: list[str], empirical: list[str] = (),
                oracle: list[str] = (), bayes: list[str] = ()) -> ArmPlan:
    """Every declared arm (:data:`models.arm_specs.ARMS`, in run order) that rows with these
    column groups can run, with the columns it reads. ``forecaster`` is the run's provider
    (the empirical one offline, the LLM with --provider llm); ``empirical`` is the empirical
    forecaster kept beside an LLM so both are always compared; ``oracle`` the synthetic
    generator's forecast and ``bayes`` the forecast under its priors (the two bounds)."""
    spec = RowSpec(list(base), list(forecaster), list(btyd), list(empirical), list(oracle), list(bayes))
    return {arm: arm.columns(spec) for arm in ARMS if arm.runs_on(spec)}


def _arm_output(arm: ArmSpec, columns: list[str], train, val, target, rep, scheme, models) -> arms.ArmOutput:
    if arm.kind is ArmKind.XGB:
        return arms.xgb_output(models[arm.name], target, rep)
    if arm is CLIMATOLOGY:
        return arms.climatology_arm(train, target, rep)
    if arm is PERSISTENCE:
        return arms.persistence_arm(train, val, target, rep, scheme.assign)
    if arm is BTYD:
        return arms.btyd_arm(train, target, rep)
    if arm.kind is ArmKind.BOUND:  # its columns: the bucket probabilities, then the expected spend
        *prob_cols, spend_col = columns
        return arms.bound_arm(target, prob_cols, spend_col)
    prefix = FORECAST_PREFIXES[arm.groups[0]]  # a forecaster's own distribution
    return arms.forecaster_arm(train, target, rep, probability_feature_names(scheme, prefix),
                               expected_spend_feature(prefix))


def _arm_outputs(train, val, target, rep, scheme, plan: ArmPlan, models, with_bounds: bool = False):
    """Every planned arm's output on ``target`` (val or test rows); the bounds' only when
    asked (their columns exist for the test rows alone)."""
    return {arm.name: _arm_output(arm, cols, train, val, target, rep, scheme, models)
            for arm, cols in plan.items() if with_bounds or arm.kind is not ArmKind.BOUND}


def _prediction_frame(target: pd.DataFrame, arm: str, out: arms.ArmOutput, threshold: float, scheme) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": target["customer_id"].to_numpy(),
        "anchor": target["anchor"].to_numpy(),
        "arm": arm,
        "label_bucket": target["label"].to_numpy(),
        "actual_spend": target["spend"].to_numpy(),
        "one_time_buyer": (target["lifetime_orders"].to_numpy() <= 1),
    })
    for j, bid in enumerate(scheme.ids):
        frame[f"p_{bid}"] = out.probs[:, j]
    frame["purchase_prob"] = 1.0 - out.probs[:, 0]
    frame["expected_spend"] = out.expected_spend
    frame["threshold"] = threshold
    return frame


def run_origin(rows: pd.DataFrame, test_anchor: str, scheme: BucketScheme, rep: np.ndarray,
               plan: ArmPlan, seed: int, params: Mapping | None = None) -> tuple[pd.DataFrame, dict, dict[str, HurdleXGB]]:
    """One origin: every planned arm fitted on the anchors before ``test_anchor``'s validation
    anchor and scored on ``test_anchor``; ``params`` are the XGBoost settings of every XGBoost
    arm (the run's tuned ones, :mod:`models.tuning`; None: :data:`models.xgb.DEFAULT_PARAMS`).
    Returns the prediction rows, the origin's summary and its fitted XGBoost models."""
    anchors = sorted(a for a in rows["anchor"].unique() if a < test_anchor)
    if len(anchors) < 2:
        raise InsufficientData(f"test anchor {test_anchor} needs at least two earlier anchors (training + validation)")
    val_anchor = anchors[-1]
    train = rows[rows["anchor"] < val_anchor]
    val = rows[rows["anchor"] == val_anchor]
    test = rows[rows["anchor"] == test_anchor]
    models = {arm.name: arms.fit_xgb(train, val, cols, scheme.n_buckets, seed, params=params)
              for arm, cols in plan.items() if arm.kind is ArmKind.XGB}
    # every arm is fitted once, on the anchors before V, and scored on V (threshold) and T:
    # a threshold tuned on one fit and applied to another would not mean anything
    val_out = _arm_outputs(train, val, val, rep, scheme, plan, models)
    test_out = _arm_outputs(train, val, test, rep, scheme, plan, models, with_bounds=True)
    b_val = val["label"].to_numpy() > 0
    frames, notes = [], {}
    for arm, out in test_out.items():
        thr = metrics.best_f1_threshold(1 - val_out[arm].probs[:, 0], b_val) if arm in val_out else np.nan
        frames.append(_prediction_frame(test, arm, out, thr, scheme))
        notes[arm] = out.note
    info = {"validation_anchor": val_anchor, "training_anchors": [anchors[0], anchors[-2]],
            "n_train": int(len(train)), "n_val": int(len(val)), "n_test": int(len(test)), "notes": notes}
    return pd.concat(frames, ignore_index=True), info, models


def _scores(pred: pd.DataFrame, scheme: BucketScheme) -> dict[str, float]:
    probs = pred[[f"p_{b}" for b in scheme.ids]].to_numpy()
    thr = pred["threshold"].to_numpy()
    scores = metrics.score_arm(probs, pred["label_bucket"].to_numpy(), pred["expected_spend"].to_numpy(),
                               pred["actual_spend"].to_numpy())
    # each row decided at its own origin's validation-tuned threshold
    if np.isfinite(thr).all():
        decided = (pred["purchase_prob"].to_numpy() >= thr).astype(float)
        scores["f1_at_threshold"] = metrics.f1_at_threshold(decided, (pred["label_bucket"] > 0).to_numpy(), 0.5)
    return scores


def score_predictions(pred: pd.DataFrame, scheme: BucketScheme) -> dict:
    """Per arm: pooled scores, per-anchor scores, per-segment scores; skill vs climatology
    and, for each bound present (oracle, bayes), the ratio of RPS and of log loss to the
    bound's: ``rps_ratio_to_oracle``, ``log_loss_ratio_to_bayes``, ... (pooled and per anchor).

    Example: ``score_predictions(pred, scheme)["xgb_base"]["pooled"]["rps_ratio_to_bayes"]``."""
    out: dict = {}
    for arm, group in pred.groupby("arm", sort=False):
        entry = {"pooled": _scores(group, scheme),
                 "by_anchor": {a: _scores(g, scheme) for a, g in group.groupby("anchor")},
                 "by_segment": {("one_time" if k else "repeat"): _scores(g, scheme)
                                for k, g in group.groupby("one_time_buyer")}}
        out[arm] = entry
    _relative(out, CLIMATOLOGY.name, "rps", "rps_skill", metrics.rps_skill)
    for bound in BOUND_ARMS:
        for metric in RATIO_METRICS:
            _relative(out, bound.name, metric, f"{metric}_ratio_to_{bound.name}", operator.truediv)
    return out


def _relative(out: dict, reference: str, metric: str, key: str, fn: Callable[[float, float], float]) -> None:
    """``key`` = ``fn(arm's metric, reference arm's metric)`` for every arm, pooled and per
    anchor; nothing when the reference arm did not run."""
    if reference not in out:
        return
    ref = out[reference]
    for entry in out.values():
        entry["pooled"][key] = fn(entry["pooled"][metric], ref["pooled"][metric])
        for a, s in entry["by_anchor"].items():
            s[key] = fn(s[metric], ref["by_anchor"][a][metric])


def _inputs(pred: pd.DataFrame, kind: str, scheme: BucketScheme) -> tuple:
    y = pred["label_bucket"].to_numpy()
    if kind == "probs":
        return pred[[f"p_{b}" for b in scheme.ids]].to_numpy(), y
    if kind == "spend":
        return pred["expected_spend"].to_numpy(), pred["actual_spend"].to_numpy()
    return pred["purchase_prob"].to_numpy(), (y > 0).astype(float)


def _aligned_arms(pred: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The baseline's rows and each augmented arm's (comparison name -> rows), all in the
    same (anchor, customer) order so row i of one is row i of every other."""
    present = set(pred["arm"].unique())
    base = pred[pred["arm"] == XGB_BASE.name].sort_values(["anchor", "customer_id"])
    others = {f"{arm.name} - {XGB_BASE.name}": pred[pred["arm"] == arm.name].sort_values(["anchor", "customer_id"])
              for arm in AUGMENTED_ARMS if arm.name in present}
    return base, others


def _paired_differences(base: pd.DataFrame, others: dict[str, pd.DataFrame], scheme: BucketScheme,
                        n_resamples: int, seed: int) -> dict:
    """comparison -> metric -> interval, every difference from the same customer draws."""
    jobs = {(name, metric): (fn, _inputs(base, kind, scheme), _inputs(other, kind, scheme))
            for name, other in others.items() for metric, (fn, kind) in BOOTSTRAP_METRICS.items()}
    out = bootstrap.paired_bootstrap_set(jobs, base["customer_id"].to_numpy(), n_resamples, seed)
    return {name: {metric: out[(name, metric)] for metric in BOOTSTRAP_METRICS} for name in others}


def bootstrap_differences(pred: pd.DataFrame, scheme: BucketScheme, n_resamples: int, seed: int) -> dict:
    """``xgb_base+X - xgb_base`` for every augmented arm over all test anchors, paired over
    customers (all of a drawn customer's rows, in every anchor)."""
    return _paired_differences(*_aligned_arms(pred), scheme, n_resamples, seed)


def bootstrap_differences_by_anchor(pred: pd.DataFrame, scheme: BucketScheme, n_resamples: int,
                                    seed: int) -> dict:
    """The same differences within each test anchor (customers resampled within that
    anchor's rows): comparison -> anchor -> metric -> interval. A month that differs from
    the others shows here, not only as a shift of the pooled difference."""
    base, others = _aligned_arms(pred)
    out: dict = {name: {} for name in others}
    for anchor in sorted(base["anchor"].unique()):
        keep = base["anchor"].to_numpy() == anchor  # every arm has the same row order
        by_name = _paired_differences(base[keep], {n: o[keep] for n, o in others.items()}, scheme, n_resamples, seed)
        for name, metrics_ in by_name.items():
            out[name][anchor] = metrics_
    return out


def learning_curve(rows: pd.DataFrame, test_anchor: str, scheme: BucketScheme, rep: np.ndarray,
                   plan: ArmPlan, seed: int, sizes=LEARNING_CURVE_SIZES,
                   full_models: dict[str, HurdleXGB] | None = None, params: Mapping | None = None) -> list[dict]:
    """Baseline vs augmented RPS on the last test anchor when training on n customers; the
    last point is every customer, where the origin's own models (``full_models``, fitted on
    exactly those rows) are reused rather than refitted; ``params`` as in :func:`run_origin`."""
    anchors = sorted(a for a in rows["anchor"].unique() if a < test_anchor)
    val_anchor = anchors[-1]
    history = rows[rows["anchor"] < test_anchor]
    test = rows[rows["anchor"] == test_anchor]
    customers = np.sort(history["customer_id"].unique())
    rng = np.random.default_rng(seed)
    curve = []
    for n in [s for s in sizes if s < len(customers)] + [len(customers)]:
        full = n == len(customers)
        part = history if full else history[history["customer_id"].isin(set(rng.choice(customers, size=n, replace=False)))]
        train, val = part[part["anchor"] < val_anchor], part[part["anchor"] == val_anchor]
        point = {"customers": n, "rows": int(len(train))}
        for arm in (XGB_BASE, XGB_FORECASTER):
            if arm not in plan:
                continue
            name = arm.name
            try:
                model = full_models[name] if full and full_models else \
                    arms.fit_xgb(train, val, plan[arm], scheme.n_buckets, seed, params=params)
            except ValueError as exc:  # too few purchases in a tiny sample
                point[name] = None
                point[f"{name}_note"] = str(exc)
                continue
            point[name] = metrics.rps(model.predict_proba(test), test["label"].to_numpy())
        curve.append(point)
    return curve


def evaluate(rows: pd.DataFrame, test_anchors: list[str], scheme: BucketScheme, rep: np.ndarray,
             plan: ArmPlan, seed: int = 0, n_resamples: int = 1000,
             progress: Callable[[str], None] | None = None, params: Mapping | None = None) -> EvaluationResult:
    """Every origin (:func:`run_origin`), scored, compared and bootstrapped; ``params`` are the
    XGBoost settings of every origin and arm, chosen once before the first origin
    (:func:`models.tuning.tune_xgb`), None for :data:`models.xgb.DEFAULT_PARAMS`."""
    frames, origins, last_models = [], {}, {}
    for t in test_anchors:
        pred, info, last_models = run_origin(rows, t, scheme, rep, plan, seed, params)
        frames.append(pred)
        origins[t] = info
        if progress:
            progress(t)
    predictions = pd.concat(frames, ignore_index=True)
    result = {
        "origins": origins,
        "arms": score_predictions(predictions, scheme),
        "differences": bootstrap_differences(predictions, scheme, n_resamples, seed),
        "differences_by_anchor": bootstrap_differences_by_anchor(predictions, scheme, n_resamples, seed),
        "learning_curve": learning_curve(rows, test_anchors[-1], scheme, rep, plan, seed,
                                         full_models=last_models, params=params),
    }
    final_name = (XGB_FORECASTER if XGB_FORECASTER in plan else XGB_BASE).name
    final = last_models[final_name]
    test_rows = rows[rows["anchor"] == test_anchors[-1]]
    contrib = final.purchase_contributions(test_rows).drop(columns="bias")
    importance = final.importance().join(contrib.abs().mean().rename("mean_abs_shap"))
    result["importance_model"] = final_name
    return EvaluationResult(predictions, result, importance)
