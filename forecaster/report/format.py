"""Names and number formats of the evaluation report: arm and metric names, and the one way
each kind of number is written (every table, sentence and template goes through here).

Negative numbers carry a real minus sign (U+2212, ``−0.00377``), differences always carry
their sign (``+0.00003``), a value that rounds to zero has none (``0.00000``), and an
interval is its two ends joined by a spaced tilde (``−0.00377 ~ −0.00298``), so the minus
sign of the upper end never reads as a dash. An interval of width 0 (every bootstrap
resample gave the same difference) is said in words instead of being printed as
``+0.00000 ~ +0.00000``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from models import arm_specs
from narrator.korean import format_month, format_month_span

HEADLINE_ARM, BASELINE_ARM = arm_specs.XGB_FORECASTER.name, arm_specs.XGB_BASE.name
HEADLINE_COMPARISON = f"{HEADLINE_ARM} - {BASELINE_ARM}"
HEADLINE_METRIC = "rps"
MISSING = "—"
MINUS = "\u2212"
INTERVAL_JOIN = " ~ "

# display order and Korean names of the declared arms (models.arm_specs); unknown arms fall
# back to their code
ARM_LABELS = {
    arm_specs.CLIMATOLOGY.name: "훈련 기간 구간 빈도",
    arm_specs.PERSISTENCE.name: "지난달 구간 유지",
    arm_specs.BTYD.name: "BTYD 모형",  # BG/NBD or Pareto/NBD, chosen per anchor (metrics.json btyd_selection)
    arm_specs.FORECASTER.name: "예측기 단독",
    arm_specs.XGB_BASE.name: "XGBoost 기본",
    arm_specs.XGB_BTYD.name: "XGBoost + BTYD 특성",
    arm_specs.XGB_FORECASTER.name: "XGBoost + 예측기 특성",
    arm_specs.EMPIRICAL.name: "경험적 예측기 단독(LLM 아님)",
    arm_specs.XGB_EMPIRICAL.name: "XGBoost + 경험적 예측기 특성",
    arm_specs.ORACLE.name: "오라클(잠재 모수)",
    arm_specs.BAYES.name: "베이즈(생성 모형 사전분포)",
    "llm": "LLM 예측기",  # not an arm: named in the arms not run when no LLM was asked
}
ORACLE_ARM, BAYES_ARM = arm_specs.ORACLE.name, arm_specs.BAYES.name
# reference bounds on synthetic data, not arms a user could run: left out of "the best arm"
BOUND_ARMS = tuple(arm.name for arm in arm_specs.BOUND_ARMS)

# (key, Korean name, which direction is better, kind of number)
METRICS: list[tuple[str, str, str, str]] = [
    ("rps", "RPS", "lower", "score"),
    ("rps_skill", "RPS 기술 점수 (구간 빈도 대비)", "higher", "score"),
    ("rps_ratio_to_oracle", "RPS / 오라클 RPS", "lower", "ratio"),
    ("rps_ratio_to_bayes", "RPS / 베이즈 RPS", "lower", "ratio"),
    ("log_loss", "로그 손실", "lower", "score"),
    ("log_loss_ratio_to_oracle", "로그 손실 / 오라클 로그 손실", "lower", "ratio"),
    ("log_loss_ratio_to_bayes", "로그 손실 / 베이즈 로그 손실", "lower", "ratio"),
    ("brier", "Brier 점수 (다중 구간)", "lower", "score"),
    ("accuracy", "정확도", "higher", "score"),
    ("macro_f1", "macro-F1", "higher", "score"),
    ("ece", "ECE (최고 확률 구간)", "lower", "score"),
    ("purchase_log_loss", "구매 여부 로그 손실", "lower", "score"),
    ("purchase_brier", "구매 여부 Brier 점수", "lower", "score"),
    ("pr_auc", "PR-AUC", "higher", "score"),
    ("roc_auc", "ROC-AUC", "higher", "score"),
    ("precision_top20", "상위 20% 정밀도", "higher", "score"),
    ("recall_top20", "상위 20% 재현율", "higher", "score"),
    ("lift_top10", "상위 10% 리프트", "higher", "ratio"),
    ("f1_at_threshold", "F1 (검증 월에서 정한 임계값)", "higher", "score"),
    ("spend_mae", "지출 MAE", "lower", "amount"),
    ("spend_rmse", "지출 RMSE", "lower", "amount"),
    ("spend_spearman", "지출 Spearman 상관", "higher", "score"),
    ("spend_gini", "지출 정규화 Gini", "higher", "score"),
    ("spend_bias", "총지출 편향", "zero", "percent"),
]
METRIC_NAMES = {key: name for key, name, _, _ in METRICS}
BETTER = {key: better for key, _, better, _ in METRICS}
KIND = {key: kind for key, _, _, kind in METRICS}
BETTER_MARK = {"lower": "↓", "higher": "↑", "zero": "(0에 가까울수록 좋음)"}


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _with_sign(value: float, digits: int, plus: bool, suffix: str = "") -> str:
    """``value`` to ``digits`` decimals with thousands separators, a real minus sign when
    negative, ``+`` when positive and ``plus``; no sign when it rounds to zero."""
    text = f"{abs(value):,.{digits}f}"
    if not re.search(r"[1-9]", text):
        return text + suffix
    sign = MINUS if value < 0 else "+" if plus else ""
    return sign + text + suffix


def number(value: Any, digits: int = 4) -> str:
    """``0.0634``, ``−0.017``; a dash for a missing value (an AUC of one class, a skipped point)."""
    return MISSING if missing(value) else _with_sign(value, digits, plus=False)


def signed(value: Any, digits: int = 4) -> str:
    """``+0.0012`` / ``−0.0012``: differences always carry their sign."""
    return MISSING if missing(value) else _with_sign(value, digits, plus=True)


def percent(value: Any, digits: int = 1) -> str:
    return MISSING if missing(value) else _with_sign(100 * value, digits, plus=False, suffix="%")


def signed_percent(value: Any, digits: int = 1) -> str:
    """``+1.3%`` / ``−0.1%``: a relative change."""
    return MISSING if missing(value) else _with_sign(100 * value, digits, plus=True, suffix="%")


def count(value: Any) -> str:
    return MISSING if missing(value) else f"{int(value):,}"


def metric_value(key: str, value: Any, currency: str) -> str:
    """A metric in the table format of its kind (amounts in the currency's minor unit)."""
    kind = KIND.get(key, "score")
    if kind == "percent":
        return signed_percent(value)
    if kind == "amount":
        return number(value, 0 if currency.upper() == "KRW" else 2)
    if kind == "ratio":
        return number(value, 3)
    return number(value, 4)


def metric_header(key: str, currency: str) -> str:
    unit = f" ({currency})" if key in ("spend_mae", "spend_rmse") else ""
    return f"{METRIC_NAMES.get(key, key)}{unit} {BETTER_MARK[BETTER.get(key, 'lower')]}"


def _difference_digits(key: str, currency: str) -> int:
    """One decimal more than the metric itself, since differences between arms are often a
    tenth of the metric's last shown digit."""
    if KIND.get(key) == "amount":
        return 0 if currency.upper() == "KRW" else 3
    return 5


def difference(key: str, value: Any, currency: str = "") -> str:
    """A signed difference of metric ``key``: ``−0.00003``, ``+0.048``."""
    return signed(value, _difference_digits(key, currency))


def magnitude(key: str, value: Any, currency: str = "") -> str:
    """A size of a difference (no sign): ``0.00016``."""
    return MISSING if missing(value) else number(abs(value), _difference_digits(key, currency))


def degenerate(d: dict) -> bool:
    """The interval has width 0: every resample gave the same difference."""
    return not missing(d.get("lo")) and not missing(d.get("hi")) and d["lo"] == d["hi"]


def interval(key: str, d: dict, currency: str = "") -> str:
    """The 95% interval of a difference: ``−0.00377 ~ −0.00298``. Ends that would print
    alike are shown with up to three more decimals; an interval of width 0 is said in
    words (``폭 0, 모든 재표본에서 0.00000``); a dash when there is none."""
    lo, hi = d.get("lo"), d.get("hi")
    if missing(lo) or missing(hi):
        return MISSING
    if lo == hi:
        return f"폭 0, 모든 재표본에서 {difference(key, lo, currency)}"
    digits = _difference_digits(key, currency)
    for extra in range(4):
        low, high = signed(lo, digits + extra), signed(hi, digits + extra)
        if low != high:
            break
    return f"{low}{INTERVAL_JOIN}{high}"


def arm_name(arm: str) -> str:
    """``XGBoost + 예측기 특성 (xgb_base+forecaster)``; josa skips the parenthesised code."""
    label = ARM_LABELS.get(arm)
    return f"{label} ({arm})" if label else arm


def comparison_name(comparison: str, minus: str = MINUS) -> str:
    """``xgb_base+btyd - xgb_base`` -> ``XGBoost + BTYD 특성 − XGBoost 기본`` (figures pass
    ``minus="-"``: their font has no U+2212)."""
    b, _, a = comparison.partition(" - ")
    return f"{ARM_LABELS.get(b, b)} {minus} {ARM_LABELS.get(a, a)}" if a else comparison


def month(text: str) -> str:
    return format_month(pd.Period(text, freq="M"))


def month_span(first: str, last: str) -> str:
    return format_month_span(pd.Period(first, freq="M"), pd.Period(last, freq="M"))


def month_range_text(text: str) -> str:
    """``2022-01..2024-09`` -> ``2022년 1월~2024년 9월``; any other text as it is."""
    match = re.fullmatch(r"(\d{4}-\d{2})\.\.(\d{4}-\d{2})", text)
    return month_span(*match.groups()) if match else text


_NOTE_WORDS = {"rounds=": "반복 ", "eps=": "혼합 가중치 ", "failed=": "실패 "}


def origin_note(note: str) -> str:
    """An arm's training note (``rounds=64/34``) in Korean words (``반복 64/34``)."""
    for code, word in _NOTE_WORDS.items():
        note = note.replace(code, word)
    return note
