"""The Korean words of `forecaster explain`: feature labels, values formatted by what they
measure, and one sentence per SHAP contribution (``최근 3개월 동안 구매가 없어 구매 가능성을
낮췄습니다 (−0.42)``), particles chosen by how the number or word is read."""

from __future__ import annotations

import math
import re

import pandas as pd

from forecaster import labels
from narrator.korean import format_amount, format_month, josa, particle_for
from structurer.features import PREFIX as FC
from structurer.schema import BucketScheme


def percent(p: float) -> str:
    return f"{p * 100:.1f}%"


def signed(x: float) -> str:
    """A contribution with its sign: ``+0.42`` / ``−0.42`` (a real minus sign)."""
    text = f"{abs(x):.2f}"
    return ("−" if x < 0 and text != "0.00" else "+") + text


def feature_label(name: str, scheme: BucketScheme) -> str:
    """Korean name of feature column ``name`` (one definition: :mod:`forecaster.labels`)."""
    return labels.feature_label(name, dict(zip(scheme.ids, scheme.labels)))


_AMOUNTS = ("lifetime_spend", "monetary", "order_value", f"{FC}expected_spend", "spend_lag", "spend_mean", "spend_max", "spend_last")
_DAYS = ("days_since_last_purchase", "last_gap_days", "gap_mean_days", "purchase_days_last")
_PERCENTS = ("active_share", "repeat_buy", f"{FC}purchase_prob", f"{FC}confidence", f"{FC}p_")
_MONTHS = ("recency", "tenure", "lifetime_active_months", "active")


def value_text(name: str, value: float, currency: str) -> str:
    """The customer's value of a feature, formatted by what it measures (amount, %, months,
    orders, yes/no)."""
    if math.isnan(value):
        return "값 없음"
    if name == "trend_slope":
        return f"월 {'+' if value >= 0 else '-'}{format_amount(abs(value), currency)}"
    if name == "overdue_ratio":
        return f"{value:.1f}배"
    if name.startswith(_DAYS):
        return f"{value:.0f}일"
    if name in (f"{FC}expected_orders", "orders_per_month", "orders_per_active_month", "season_orders"):
        return f"{value:.2f}회"
    if name.startswith(_AMOUNTS):
        return format_amount(value, currency)
    if name.startswith(_PERCENTS):
        return percent(value)
    if name.startswith(_MONTHS):
        return f"{value:.0f}개월"
    if name.startswith(("lifetime_orders", "orders_lag")):
        return f"{value:.0f}회"
    if name.startswith((f"{FC}segment_", f"{FC}trend_")):
        return "예" if value >= 0.5 else "아니요"
    return f"{value:.2f}"


def _ra(word: str) -> str:
    """``word`` and the connective copula: 이라 after a final consonant as read (11개월 전이라,
    1.2만 원이라), 라 otherwise (29.3달러라, 35%라, 17회라)."""
    return word + ("이라" if particle_for(word, "이다/다") == "이다" else "라")


def _window(name: str) -> int:
    return int(re.search(r"\d+$", name).group(0))


def _history_clause(name: str, value: float, text: str, anchor: pd.Period, currency: str) -> str:
    """Why-clause of a baseline feature, e.g. ``마지막 구매가 11개월 전이라``."""
    if name == "recency":
        return "마지막 구매가 바로 지난달이라" if round(value) == 1 else f"마지막 구매가 {_ra(text + ' 전')}"
    if name == "tenure":
        return f"첫 구매가 {_ra(text + ' 전')}"
    if name == "season_shift":
        if value == 0:
            return "예측 대상 월의 계절 효과를 잴 자료가 아직 없어"
        return f"예측 대상 월이 이 고객의 평소보다 주문이 {'늘어나는' if value > 0 else '줄어드는'} 계절이라"
    if name == "trend_slope":
        step = format_amount(abs(value), currency)
        if step == format_amount(0.0, currency):
            return "최근 12개월 월 지출에 뚜렷한 추세가 없어"
        return f"최근 12개월 월 지출이 한 달에 약 {step}씩 {'늘어나는' if value > 0 else '줄어드는'} 추세라"
    fixed = {
        "lifetime_active_months": f"지금까지 구매한 달이 {_ra(text)}",
        "lifetime_orders": f"누적 주문이 {_ra(text)}",
        "lifetime_spend": f"누적 지출액이 {_ra(text)}",
        "monetary": f"구매한 달의 평균 지출액이 {_ra(text)}",
        "active_share": f"첫 구매 이후 구매한 달의 비율이 {_ra(text)}",
        "order_value": f"주문당 평균 지출액이 {_ra(text)}",
        "orders_per_month": f"첫 구매 이후 월평균 주문이 {_ra(text)}",
        "orders_per_active_month": f"구매한 달의 평균 주문이 {_ra(text)}",
        "season_index": f"지난해들의 같은 달 구매율이 앞뒤 1년 평균의 {value:.2f}배라",
        "season_orders": f"예측 대상 월에 구매한다면 예상되는 주문이 {_ra(text)}",
        "repeat_buy": f"주문 빈도·마지막 구매 시점·계절로 본 반복구매 확률이 {_ra(text)}",
        "days_since_last_purchase": f"마지막 구매일이 {_ra(text + ' 전')}",
        "last_gap_days": f"마지막 두 구매일 사이가 {_ra(text)}",
        "gap_mean_days": f"구매일 사이 평균 간격이 {_ra(text)}",
        "gap_cv": f"구매 간격의 변동계수가 {_ra(text)}",
        "overdue_ratio": f"마지막 구매 후 평소 구매 간격의 {text}만큼 지나",
    }
    if name in fixed:
        return fixed[name]
    if name.startswith(("purchase_days_last", "spend_last")):
        days = re.search(r"(\d+)d$", name).group(1)
        if name.startswith("spend_last"):
            return f"최근 {days}일 동안 지출이 없어" if value == 0 else f"최근 {days}일 지출액이 {_ra(text)}"
        return f"최근 {days}일 동안 구매한 날이 없어" if value == 0 else f"최근 {days}일 중 {text} 구매해"
    k = _window(name)
    if name.startswith(("spend_lag", "orders_lag")):
        month = format_month(anchor - k)
        if name.startswith("spend_lag"):
            return f"{month}에는 지출이 없어" if value == 0 else f"{month} 지출액이 {_ra(text)}"
        return f"{month}에는 주문이 없어" if value == 0 else f"{month} 주문이 {_ra(text)}"
    if name.startswith("spend_mean"):
        return f"최근 {k}개월 월평균 지출액이 {_ra(text)}"
    if name.startswith("spend_max"):
        return (f"최근 {k}개월 중 가장 많이 쓴 달도 {_ra(text)}" if value == 0
                else f"최근 {k}개월 중 가장 많이 쓴 달의 지출액이 {_ra(text)}")
    return f"최근 {k}개월 동안 구매가 없어" if value == 0 else f"최근 {k}개월 중 {text}에 구매해"


def _forecast_clause(name: str, value: float, text: str, scheme: BucketScheme) -> str:
    """Why-clause of a forecaster feature, e.g. ``예측기가 본 구매 확률이 12.3%라``."""
    fixed = {
        f"{FC}purchase_prob": f"예측기가 본 구매 확률이 {_ra(text)}",
        f"{FC}expected_spend": f"예측기의 기대 지출액이 {_ra(text)}",
        f"{FC}expected_orders": f"예측기의 기대 주문 수가 {_ra(text)}",
        f"{FC}entropy": f"{josa(feature_label(name, scheme), '이/가')} {_ra(text)}",
        f"{FC}confidence": f"예측기의 확신도가 {_ra(text)}",
    }
    if name in fixed:
        return fixed[name]
    if name.startswith(f"{FC}p_"):
        label = scheme.labels[scheme.ids.index(name[len(FC) + 2:])]
        return f"예측기가 본 '{label}' 확률이 {_ra(text)}"
    yes = value >= 0.5
    if name.startswith(f"{FC}segment_"):
        segment = josa(f"'{name[len(FC) + 8:]}'", "(으)로")
        return f"예측기가 이 고객을 {segment} {'분류해' if yes else '분류하지 않아'}"
    trend = josa(f"'{name[len(FC) + 6:]}'", "(으)로")
    return f"예측기가 추세를 {trend} {'봐서' if yes else '보지 않아서'}"


def _missing_clause(name: str, scheme: BucketScheme, anchor: pd.Period) -> str:
    """Why-clause of a missing (NaN) value: XGBoost sends it down a learned default branch,
    so its absence has a contribution of its own."""
    if name.startswith(("spend_lag", "orders_lag")):
        what = "지출액" if name.startswith("spend") else "주문 수"
        return f"{format_month(anchor - _window(name))} {josa(what, '은/는')} 첫 구매 전이라 값이 없고, 이 점이"
    if name == "trend_slope":
        return "첫 구매 후 지난 기간이 한 달뿐이라 지출 추세를 잴 수 없고, 이 점이"
    if name in ("last_gap_days", "gap_mean_days", "overdue_ratio"):
        return "구매한 날이 하루뿐이라 구매 간격을 잴 수 없고, 이 점이"
    if name == "gap_cv":
        return "구매 간격이 하나뿐이라 간격의 변동을 잴 수 없고, 이 점이"
    if name == "season_index":
        return "이전 해 같은 달의 자료가 없어 계절 지수를 잴 수 없고, 이 점이"
    if name == "season_orders":
        return "주문 빈도를 잴 고객이 없어 예상 주문 수가 없고, 이 점이"
    if name == "repeat_buy":
        return "반복구매 모형을 맞출 고객이 없어 반복구매 확률이 없고, 이 점이"
    label = feature_label(name, scheme)
    if name.startswith(FC):
        return f"예측기 응답이 실패해 {josa(label, '이/가')} 없고, 이 점이"
    return f"{josa(label, '은/는')} 값이 없고, 이 점이"


def contribution_sentence(name: str, value: float, contribution: float, scheme: BucketScheme,
                          anchor: pd.Period) -> str:
    """One Korean sentence: the feature's meaning and value, the direction and the size,
    e.g. ``최근 3개월 동안 구매가 없어 구매 가능성을 낮췄습니다 (−0.42)``."""
    if math.isnan(value):
        clause = _missing_clause(name, scheme, anchor)
    elif name.startswith(FC):
        clause = _forecast_clause(name, value, value_text(name, value, scheme.currency), scheme)
    else:
        clause = _history_clause(name, value, value_text(name, value, scheme.currency), anchor, scheme.currency)
    if abs(contribution) < 0.005:
        effect = "구매 가능성을 거의 바꾸지 않았습니다"
    else:
        effect = f"구매 가능성을 {'높였습니다' if contribution > 0 else '낮췄습니다'}"
    return f"{clause} {effect} ({signed(contribution)})"
