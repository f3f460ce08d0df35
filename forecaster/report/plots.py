"""The report's figures as matplotlib figures on the Agg canvas (no display needed), and as PNG bytes.

Every chart function takes plain arrays or frames and returns the figure (:func:`png` makes the bytes); the report decides where
it goes (a file next to ``report.md``, a base64 data URI inside ``report.html``). Korean
labels use the NanumGothic font shipped inside the ``koreanize_matplotlib`` package,
registered by file so the figures do not depend on the fonts installed on the machine.

Curves are computed from the predictions frame and downsampled to at most
``CURVE_POINTS`` points per arm, which keeps the whole set of figures to a few seconds on
hundreds of thousands of rows.
"""

from __future__ import annotations

import importlib.util
import io
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import matplotlib
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from forecaster.report.format import BASELINE_ARM, HEADLINE_ARM
from models import metrics

FONT_PACKAGE = "koreanize_matplotlib"
FONT_FILE = "NanumGothic.ttf"
CURVE_POINTS = 300
RELIABILITY_BINS = 10
DPI = 110

# what each figure shows, under the figure in the report; {shown} = features in the chart
CAPTIONS = {
    "reliability": "구매 확률 신뢰도 도표: 예측 확률을 10개 구간으로 나눠 실제 구매 비율과 비교합니다. "
                   "대각선에 가까울수록 잘 보정된 것입니다.",
    "pr_curve": "구매 여부 정밀도-재현율 곡선: 점선은 무작위로 골랐을 때의 정밀도(기본 구매율)입니다.",
    "gains": "누적 이득 곡선: 구매 확률이 높은 순으로 고객을 골랐을 때 실제 구매 고객을 얼마나 포착하는지 보여 줍니다.",
    "confusion": "혼동 행렬: 행은 실제 구간, 열은 가장 확률이 높은 예측 구간이며 색은 행 안의 비율입니다.",
    "importance": "특성 중요도 (상위 {shown}개): 왼쪽은 두 모델 각각의 총 gain 중 비중, 오른쪽은 구매 모델의 "
                  "평균 |SHAP|입니다.",
    "learning_curve": "학습 곡선: 학습 고객 수에 따른 마지막 평가 월의 RPS (가로축은 로그 눈금).",
    "differences": "평가 월별 차이: XGBoost + 예측기 특성 − XGBoost 기본의 차이를 평가 월마다, 그리고 평가 월 전체로 "
                   "점(차이)과 막대(고객 단위 paired bootstrap 95% 신뢰구간)로 그렸습니다. 세로 점선이 0(차이 없음)이며, "
                   "막대가 0을 지나면 그 달에서는 차이의 근거가 없습니다.",
}


def korean_font_path() -> Path:
    """NanumGothic inside the ``koreanize_matplotlib`` package, found without importing the
    package (importing it would restyle matplotlib as a side effect)."""
    spec = importlib.util.find_spec(FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {FONT_PACKAGE} package is not installed: pip install koreanize-matplotlib")
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / FONT_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall koreanize-matplotlib")
    return path


@lru_cache(maxsize=1)
def use_korean_font() -> str:
    """Register NanumGothic by file and make it the default family; returns the family
    name. Without it Hangul renders as empty boxes."""
    path = str(korean_font_path())
    font_manager.fontManager.addfont(path)
    family = font_manager.FontProperties(fname=path).get_name()
    matplotlib.rcParams["font.family"] = family
    matplotlib.rcParams["axes.unicode_minus"] = False  # NanumGothic has no U+2212 minus
    return family


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (the report's resolution)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 6.4, height: float = 4.8) -> tuple[Figure, Axes]:
    """A figure on matplotlib's Agg canvas, outside pyplot: no GUI backend, no global
    figure registry to leak into."""
    use_korean_font()
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _legend_below(ax: Axes) -> None:
    """Below the axes, so the legend of up to eight arms never hides a curve."""
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)


def by_arm(predictions: pd.DataFrame, arms: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(arm, purchase score, purchased?) for each arm in ``arms`` order."""
    groups = dict(tuple(predictions.groupby("arm", sort=False)))
    for arm in arms:
        if arm in groups:
            g = groups[arm]
            yield arm, g["purchase_prob"].to_numpy(dtype=float), (g["label_bucket"].to_numpy() > 0)


def _thin(*columns: np.ndarray, points: int = CURVE_POINTS) -> list[np.ndarray]:
    """Every column at the same evenly spaced indices, first and last kept."""
    n = len(columns[0])
    if n <= points:
        return list(columns)
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(int))
    return [c[idx] for c in columns]


# -- purchase probability ------------------------------------------------------------------


def reliability_bins(score: np.ndarray, bought: np.ndarray, n_bins: int = RELIABILITY_BINS) -> dict[str, list]:
    """Equal-width bins of the purchase probability: per non-empty bin the mean predicted
    probability, the observed purchase rate and the row count (the points of a
    reliability diagram; DeGroot & Fienberg 1983)."""
    bins = np.clip((score * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    mean_p = np.bincount(bins, weights=score, minlength=n_bins)
    rate = np.bincount(bins, weights=bought.astype(float), minlength=n_bins)
    keep = count > 0
    return {
        "bin": np.flatnonzero(keep).tolist(),
        "mean_predicted": (mean_p[keep] / count[keep]).tolist(),
        "observed_rate": (rate[keep] / count[keep]).tolist(),
        "count": count[keep].astype(int).tolist(),
    }


def reliability_diagram(bins_by_arm: dict[str, dict[str, list]], labels: dict[str, str]) -> Figure:
    """Observed purchase rate against mean predicted probability, one line per arm."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="완전 보정")
    for arm, b in bins_by_arm.items():
        ax.plot(b["mean_predicted"], b["observed_rate"], marker="o", markersize=3, linewidth=1.2,
                label=labels.get(arm, arm))
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="예측 구매 확률 (구간 평균)", ylabel="실제 구매 비율",
           title=f"구매 확률 신뢰도 도표 ({RELIABILITY_BINS}개 구간)")
    _legend_below(ax)
    return fig


def pr_curves(predictions: pd.DataFrame, arms: list[str], labels: dict[str, str]) -> Figure:
    """Precision-recall curve of the purchase probability per arm, with the base rate."""
    fig, ax = _figure()
    base_rate = None
    for arm, score, bought in by_arm(predictions, arms):
        if not bought.any():
            continue
        precision, recall, _ = precision_recall_curve(bought, score)
        recall, precision = _thin(recall, precision)
        ax.step(recall, precision, where="post", linewidth=1.2, label=labels.get(arm, arm))
        base_rate = bought.mean()
    if base_rate is not None:
        ax.axhline(base_rate, color="grey", linestyle="--", linewidth=1, label=f"무작위 (기본 구매율 {base_rate:.1%})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="재현율 (recall)", ylabel="정밀도 (precision)",
           title="구매 여부 정밀도-재현율 곡선")
    _legend_below(ax)
    return fig


def cumulative_gains(score: np.ndarray, bought: np.ndarray, points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(share of customers targeted, share of purchasers reached) when customers are taken
    in descending order of score. Points sit at the ends of groups of tied scores and the
    line between them is the expected curve when ties are taken in random order, so a
    constant score gives the random diagonal rather than a row-order artefact."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    reached = np.cumsum(bought[order])[last_of_tie] / max(int(bought.sum()), 1)
    targeted = np.flatnonzero(last_of_tie) + 1.0
    x, y = np.r_[0.0, targeted / len(score)], np.r_[0.0, reached]
    return tuple(_thin(x, y, points=points))  # type: ignore[return-value]


def gains_chart(predictions: pd.DataFrame, arms: list[str], labels: dict[str, str]) -> Figure:
    fig, ax = _figure()
    for arm, score, bought in by_arm(predictions, arms):
        x, y = cumulative_gains(score, bought)
        ax.plot(x, y, linewidth=1.2, label=labels.get(arm, arm))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="무작위")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="구매 확률 상위 고객 비율", ylabel="포착한 구매 고객 비율",
           title="누적 이득 곡선 (cumulative gains)")
    _legend_below(ax)
    return fig


# -- buckets -------------------------------------------------------------------------------


def confusion_counts(predictions: pd.DataFrame, arm: str, n_buckets: int) -> np.ndarray:
    """Rows = observed bucket, columns = most probable bucket, pooled over test anchors."""
    g = predictions[predictions["arm"] == arm]
    probs = g[[f"p_b{k}" for k in range(n_buckets)]].to_numpy(dtype=float)
    return metrics.confusion(g["label_bucket"].to_numpy(), probs.argmax(axis=1), n_buckets)


def confusion_matrix(counts: np.ndarray, bucket_labels: list[str], title: str) -> Figure:
    """Counts in each cell; the colour is the share of its row (observed bucket)."""
    fig, ax = _figure(6.4, 5.4)
    ax.grid(False)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{n:,}\n({share[i, j]:.0%})", ha="center", va="center", fontsize=8,
                color="white" if share[i, j] > 0.6 else "black")
    ticks = range(len(bucket_labels))
    ax.set_xticks(ticks, bucket_labels, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(ticks, bucket_labels, fontsize=8)
    ax.set(xlabel="예측 구간 (가장 확률이 높은 구간)", ylabel="실제 구간", title=title)
    return fig


# -- model ---------------------------------------------------------------------------------


def importance_chart(top: pd.DataFrame, model_label: str) -> Figure:
    """The ranked top features (index = feature name, already sorted): each booster's share
    of total gain, and the mean |SHAP| of the purchase booster (log-odds), side by side."""
    use_korean_font()
    top = top.iloc[::-1]  # barh draws bottom-up: the first feature goes on top
    fig = Figure(figsize=(10, 0.32 * len(top) + 1.6))
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(top))
    left.barh(y - 0.2, top["purchase_gain_share"].fillna(0), height=0.4, label="구매 모델")
    left.barh(y + 0.2, top["bucket_gain_share"].fillna(0), height=0.4, label="구간 모델")
    left.set_yticks(y, top.index, fontsize=8)
    left.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    left.set(xlabel="총 gain 중 비중", title="gain 비중")
    left.legend(fontsize=7, loc="lower right")
    right.barh(y, top["mean_abs_shap"].fillna(0), color="tab:green")
    right.set(xlabel="평균 |SHAP| (구매 log-odds)", title="평균 |SHAP|")
    for ax in (left, right):
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"특성 중요도 상위 {len(top)}개: {model_label}")
    return fig


def differences_chart(panels: list[tuple[str, list[tuple[str, float | None, float | None, float | None]]]],
                      comparison: str) -> Figure:
    """One panel per metric: each row's difference as a point and its interval as a bar,
    test months first and the pooled row last (set apart), with 0 marked. ``panels`` holds
    (panel title, [(row label, difference, lo, hi)]); a missing end leaves the bar out."""
    use_korean_font()
    rows = len(panels[0][1])
    fig = Figure(figsize=(4.4 * len(panels), 0.45 * rows + 1.9))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    y = np.arange(rows)[::-1].astype(float)  # the first row on top
    for ax, (title, points) in zip(axes, panels):
        for yi, (label, diff, lo, hi) in zip(y, points):
            pooled = yi == y[-1]
            color = "black" if pooled else "tab:blue"
            if diff is None:
                continue
            if lo is not None and hi is not None:
                ax.errorbar([diff], [yi], xerr=[[diff - lo], [hi - diff]], fmt="D" if pooled else "o", color=color,
                            capsize=4, markersize=6 if pooled else 5, linewidth=1.6 if pooled else 1.2)
            else:
                ax.plot([diff], [yi], "D" if pooled else "o", color=color)
        ax.axvline(0.0, color="tab:red", linestyle="--", linewidth=1)
        ax.axhline(y[-1] + 0.5, color="grey", linewidth=0.6)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))  # long decimals: few ticks
        ax.set_xlabel("차이 (b - a), 점선 = 0")
    axes[0].set_yticks(y, [label for label, *_ in panels[0][1]], fontsize=9)
    axes[0].set_ylim(y[-1] - 0.7, y[0] + 0.7)
    fig.suptitle(f"평가 월별 차이와 95% 신뢰구간: {comparison}", fontsize=11)
    return fig


def learning_curve_chart(curve: list[dict], labels: dict[str, str]) -> Figure:
    """Test RPS against the number of training customers (log scale)."""
    fig, ax = _figure()
    for arm in (BASELINE_ARM, HEADLINE_ARM):
        pts = [(p["customers"], p[arm]) for p in curve if p.get(arm) is not None]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, marker="o", linewidth=1.2, label=labels.get(arm, arm))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set(xlabel="학습 고객 수 (로그 축)", ylabel="RPS (낮을수록 좋음)", title="학습 곡선: 마지막 평가 월의 RPS")
    ax.legend(fontsize=8)
    return fig
