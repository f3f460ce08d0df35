"""Evaluation metrics for one arm: bucket distribution, purchase yes/no and spend.

Pure, vectorised numpy. Conventions shared by every function:

* ``P`` is an (n, K) array of bucket probabilities, ``y`` the observed bucket (int in
  0..K-1); bucket 0 is "no purchase".
* The purchase view is ``p = 1 - P[:, 0]`` (score) against ``b = y > 0`` (label).
* Undefined values (an AUC with one class present, a correlation of a constant, ...) are
  ``nan``, never an exception: one degenerate test month must not stop a report.
* Ties in a score never depend on row order: rank metrics use average ranks, top-k metrics
  count a tie group straddling the cut-off fractionally (its expected share under a random
  order), and the Gini spreads a tied group's spend evenly.
"""

from __future__ import annotations

import numpy as np

from models.errors import InsufficientData

LOG_LOSS_EPS = 1e-15
ECE_BINS = 10


# ----------------------------------------------------------------------- input checks
def _check_finite(values: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(f"{what} has a missing or infinite value at row {row}: score only complete rows")


def _check_distribution(P: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=np.float64)
    y = np.asarray(y)
    if P.ndim != 2:
        raise ValueError(f"bucket probabilities must be a 2-D (rows x buckets) array, got shape {P.shape}")
    if y.shape != (P.shape[0],):
        raise ValueError(f"labels have shape {y.shape} but the probabilities have {P.shape[0]} rows")
    if P.shape[0] == 0:
        raise InsufficientData("no rows to score")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be integer bucket ids")
    if y.min() < 0 or y.max() >= P.shape[1]:
        raise ValueError(f"labels must be bucket ids in 0..{P.shape[1] - 1}, found {y.min()}..{y.max()}")
    _check_finite(P, "the bucket probabilities")
    return P, y.astype(np.int64)


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{what}: the two arrays have different lengths ({a.size} and {b.size})")
    if a.size == 0:
        raise ValueError(f"{what}: no rows to score")
    _check_finite(a, f"{what}: the prediction")
    _check_finite(b, f"{what}: the outcome")
    return a, b


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


# ------------------------------------------------------------- bucket distribution
def log_loss_rows(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row negative log-likelihood ``-ln max(P[i, y_i], 1e-15)``."""
    P, y = _check_distribution(P, y)
    return -np.log(np.clip(P[np.arange(len(y)), y], LOG_LOSS_EPS, 1.0))


def log_loss(P: np.ndarray, y: np.ndarray) -> float:
    """Mean multiclass log loss (natural log), probabilities clipped at 1e-15."""
    return float(log_loss_rows(P, y).mean())


def rps_rows(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row ranked probability score, normalised to [0, 1].

    ``RPS_i = sum_{k=1}^{K-1} (F_ik - O_ik)^2 / (K - 1)`` where ``F_ik = sum_{j<k} P_ij`` is
    the forecast CDF and ``O_ik = 1[y_i < k]`` the observed one (Epstein 1969; Murphy 1971).
    The last cumulative term (always 1 - 1 = 0) is left out, hence K - 1 terms.
    """
    P, y = _check_distribution(P, y)
    k = P.shape[1]
    if k < 2:
        raise ValueError("the ranked probability score needs at least two buckets")
    cdf_pred = np.cumsum(P, axis=1)[:, :-1]
    cdf_obs = (y[:, None] <= np.arange(k - 1)[None, :]).astype(np.float64)
    return ((cdf_pred - cdf_obs) ** 2).sum(axis=1) / (k - 1)


def rps(P: np.ndarray, y: np.ndarray) -> float:
    """Mean ranked probability score (see :func:`rps_rows`); 0 is perfect, lower is better."""
    return float(rps_rows(P, y).mean())


def rps_skill(rps_model: float, rps_reference: float) -> float:
    """Ranked probability skill score ``1 - RPS_model / RPS_reference`` (> 0: beats it)."""
    if rps_reference == 0:
        return float("nan")
    return float(1.0 - rps_model / rps_reference)


def brier_rows(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row multiclass Brier score ``sum_k (P_ik - 1[y_i = k])^2`` (Brier 1950), in [0, 2]."""
    P, y = _check_distribution(P, y)
    return ((P - _one_hot(y, P.shape[1])) ** 2).sum(axis=1)


def brier_multiclass(P: np.ndarray, y: np.ndarray) -> float:
    """Mean multiclass Brier score (no halving; equals scikit-learn's multiclass value)."""
    return float(brier_rows(P, y).mean())


def accuracy(P: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose most probable bucket (first one on ties) is the observed one."""
    P, y = _check_distribution(P, y)
    return float((P.argmax(axis=1) == y).mean())


def confusion(y: np.ndarray, pred: np.ndarray, K: int) -> np.ndarray:
    """(K, K) count matrix, rows = observed bucket, columns = predicted bucket."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    return np.bincount(y * K + pred, minlength=K * K).reshape(K, K)


def macro_f1(P: np.ndarray, y: np.ndarray) -> float:
    """Unweighted mean over buckets of ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)``.

    Like scikit-learn's ``f1_score(average='macro')``, the mean runs over the buckets that
    occur among the observed or the predicted labels.
    """
    P, y = _check_distribution(P, y)
    cm = confusion(y, P.argmax(axis=1), P.shape[1])
    tp = np.diag(cm).astype(np.float64)
    observed, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (observed + predicted) > 0
    f1 = 2 * tp[present] / (observed[present] + predicted[present])
    return float(f1.mean())


def ece(P: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class confidence (Guo et al. 2017).

    Rows are put in ``n_bins`` equal-width confidence bins ``((m-1)/M, m/M]``;
    ``ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|``.
    """
    P, y = _check_distribution(P, y)
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(np.float64)
    # right-closed bins against the same edges linspace gives (0.7 * 10 is 7.000000000000001)
    bins = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], conf, side="left")
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=conf, minlength=n_bins)
    return float(np.abs(gap).sum() / count.sum())


# ------------------------------------------------------------------ purchase yes/no
def binary_log_loss(p: np.ndarray, b: np.ndarray) -> float:
    """Mean Bernoulli log loss of purchase probability ``p`` against outcome ``b``."""
    p, b = _check_pair(p, b, "purchase log loss")
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-(b * np.log(p) + (1 - b) * np.log1p(-p)).mean())


def binary_brier(p: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error ``mean (p - b)^2`` of the purchase probability."""
    p, b = _check_pair(p, b, "purchase Brier score")
    return float(((p - b) ** 2).mean())


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the mean of the ranks they span (as scipy's rankdata)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(x)]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(len(x))
    ranks[order] = mean_rank[group]
    return ranks


def roc_auc(p: np.ndarray, b: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic with average ranks
    (ties count one half); ``nan`` unless both classes are present."""
    p, b = _check_pair(p, b, "ROC-AUC")
    pos = b > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(p: np.ndarray, b: np.ndarray) -> float:
    """Average precision ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score
    thresholds, highest first (the step-wise definition of scikit-learn's
    ``average_precision_score``, no interpolation); ``nan`` without positives."""
    p, b = _check_pair(p, b, "PR-AUC")
    pos = b > 0
    n_pos = int(pos.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ps, hits = p[order], pos[order]
    last_of_tie = np.r_[ps[1:] != ps[:-1], True]
    tp = np.cumsum(hits)[last_of_tie]
    predicted = (np.arange(1, len(ps) + 1))[last_of_tie]
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float((recall_step * tp / predicted).sum())


def _expected_hits_in_top(p: np.ndarray, pos: np.ndarray, k: int) -> float:
    """Expected positives among the k highest scores when ties are ordered at random:
    every row strictly above the k-th score counts, the tie group at the cut-off
    contributes its positive share times the seats left for it."""
    cutoff = np.partition(p, len(p) - k)[len(p) - k]
    above = p > cutoff
    at = p == cutoff
    seats = k - int(above.sum())
    return float(pos[above].sum() + seats * pos[at].sum() / at.sum())


def _top_k(n: int, frac: float) -> int:
    if not 0 < frac <= 1:
        raise ValueError(f"the top fraction must be in (0, 1], got {frac}")
    return max(1, int(np.ceil(frac * n)))


def precision_recall_at_top(p: np.ndarray, b: np.ndarray, frac: float = 0.2) -> tuple[float, float]:
    """(precision, recall) among the ``ceil(frac * n)`` rows with the highest score."""
    p, b = _check_pair(p, b, "precision/recall at top")
    pos = b > 0
    k = _top_k(len(p), frac)
    hits = _expected_hits_in_top(p, pos, k)
    n_pos = int(pos.sum())
    recall = hits / n_pos if n_pos else float("nan")
    return hits / k, recall


def lift_at_top(p: np.ndarray, b: np.ndarray, frac: float = 0.1) -> float:
    """Precision among the top ``frac`` of scores divided by the base rate."""
    precision, _ = precision_recall_at_top(p, b, frac)
    base = float((np.asarray(b) > 0).mean())
    return precision / base if base > 0 else float("nan")


def f1_at_threshold(p: np.ndarray, b: np.ndarray, t: float) -> float:
    """F1 of the decision ``p >= t``; ``nan`` when there is neither a positive nor a
    predicted positive."""
    p, b = _check_pair(p, b, "F1 at threshold")
    pos, hit = b > 0, p >= t
    denom = pos.sum() + hit.sum()
    return float(2 * (pos & hit).sum() / denom) if denom else float("nan")


def best_f1_threshold(p: np.ndarray, b: np.ndarray) -> float:
    """The score threshold ``t`` (one of the observed scores) maximising the F1 of
    ``p >= t``. Tune it on a validation anchor, never on the rows it is scored on."""
    p, b = _check_pair(p, b, "best F1 threshold")
    pos = b > 0
    if not pos.any():
        raise InsufficientData("cannot tune a purchase threshold on rows without any purchase")
    order = np.argsort(-p, kind="mergesort")
    ps = p[order]
    last_of_tie = np.r_[ps[1:] != ps[:-1], True]
    tp = np.cumsum(pos[order])[last_of_tie]
    predicted = np.arange(1, len(ps) + 1)[last_of_tie]
    f1 = 2 * tp / (pos.sum() + predicted)
    return float(ps[last_of_tie][np.argmax(f1)])


# --------------------------------------------------------------------------- spend
def abs_error_rows(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-row absolute error ``|pred - actual|``."""
    pred, actual = _check_pair(pred, actual, "spend MAE")
    return np.abs(pred - actual)


def squared_error_rows(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per-row squared error ``(pred - actual)^2``."""
    pred, actual = _check_pair(pred, actual, "spend RMSE")
    return (pred - actual) ** 2


def mae(pred: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error."""
    return float(abs_error_rows(pred, actual).mean())


def rmse(pred: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(squared_error_rows(pred, actual).mean()))


def spearman(pred: np.ndarray, actual: np.ndarray) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks); ``nan`` when
    either side is constant."""
    pred, actual = _check_pair(pred, actual, "spend Spearman")
    rp, ra = _average_ranks(pred), _average_ranks(actual)
    rp, ra = rp - rp.mean(), ra - ra.mean()
    denom = np.sqrt((rp**2).sum() * (ra**2).sum())
    return float((rp * ra).sum() / denom) if denom > 0 else float("nan")


def _gini(actual: np.ndarray, score: np.ndarray) -> float:
    """Kaggle/insurance Gini: order rows by ``score`` descending, ``G = (sum_i L_i / L_n
    - (n + 1) / 2) / n`` with ``L_i`` the cumulative actual. A group of tied scores is
    given its mean actual in every row (the expectation over random orders of the tie),
    so the value does not depend on row order."""
    order = np.argsort(-score, kind="mergesort")
    s, a = score[order], actual[order]
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    group_mean = np.bincount(group, weights=a) / np.bincount(group)
    cum = np.cumsum(group_mean[group])
    n = len(a)
    return float((cum.sum() / cum[-1] - (n + 1) / 2) / n)


def normalised_gini(pred: np.ndarray, actual: np.ndarray) -> float:
    """Gini of ``actual`` ordered by ``pred`` over the Gini of ``actual`` ordered by
    itself (1 = perfect ranking, 0 = random); ``nan`` when all actuals are equal."""
    pred, actual = _check_pair(pred, actual, "spend Gini")
    if actual.sum() <= 0 or np.all(actual == actual[0]):
        return float("nan")
    return _gini(actual, pred) / _gini(actual, actual)


def aggregate_bias(pred: np.ndarray, actual: np.ndarray) -> float:
    """``sum(pred) / sum(actual) - 1``: relative error of the forecast total spend."""
    pred, actual = _check_pair(pred, actual, "spend bias")
    total = actual.sum()
    return float(pred.sum() / total - 1) if total > 0 else float("nan")


# ------------------------------------------------------------------------ one arm
def score_arm(
    P: np.ndarray,
    y: np.ndarray,
    expected_spend: np.ndarray,
    actual_spend: np.ndarray,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every metric of one arm on the same rows, under stable key names.

    ``threshold`` is the purchase-probability cut-off for ``f1_at_threshold`` tuned on a
    validation anchor (:func:`best_f1_threshold`); without one that figure is ``nan``
    rather than a number at an arbitrary cut-off.
    """
    P, y = _check_distribution(P, y)
    if len(expected_spend) != len(y) or len(actual_spend) != len(y):
        raise ValueError(
            f"spend arrays have {len(expected_spend)} and {len(actual_spend)} rows, expected {len(y)}"
        )
    p, b = 1.0 - P[:, 0], (y > 0).astype(np.float64)
    precision20, recall20 = precision_recall_at_top(p, b, 0.2)
    return {
        "rps": rps(P, y),
        "log_loss": log_loss(P, y),
        "brier": brier_multiclass(P, y),
        "accuracy": accuracy(P, y),
        "macro_f1": macro_f1(P, y),
        "ece": ece(P, y),
        "purchase_log_loss": binary_log_loss(p, b),
        "purchase_brier": binary_brier(p, b),
        "pr_auc": pr_auc(p, b),
        "roc_auc": roc_auc(p, b),
        "precision_top20": precision20,
        "recall_top20": recall20,
        "lift_top10": lift_at_top(p, b, 0.1),
        "f1_at_threshold": f1_at_threshold(p, b, threshold) if threshold is not None else float("nan"),
        "spend_mae": mae(expected_spend, actual_spend),
        "spend_rmse": rmse(expected_spend, actual_spend),
        "spend_spearman": spearman(expected_spend, actual_spend),
        "spend_gini": normalised_gini(expected_spend, actual_spend),
        "spend_bias": aggregate_bias(expected_spend, actual_spend),
        "base_rate": float(b.mean()),
        "n": float(len(y)),
    }
