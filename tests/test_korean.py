"""Korean particles (josa) by final sound, amounts and months."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import jinja2
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrator.korean import (
    final_sound,
    format_amount,
    format_minor_amount,
    format_month,
    format_month_span,
    install_filters,
    josa,
)

JOSA_CASES = [
    # Hangul: final consonant or not
    ("사과", "을/를", "사과를"),
    ("책", "을/를", "책을"),
    ("고객", "이/가", "고객이"),
    ("회사", "이/가", "회사가"),
    ("학교", "은/는", "학교는"),
    ("지출", "은/는", "지출은"),
    ("친구", "와/과", "친구와"),
    ("주문", "와/과", "주문과"),
    ("VIP 고객", "과/와", "VIP 고객과"),  # either spelling order is accepted
    ("민수", "아/야", "민수야"),
    ("민준", "아/야", "민준아"),
    ("휴면", "이다/다", "휴면이다"),
    ("충성 고객", "이다/다", "충성 고객이다"),
    ("이탈위험", "이나/나", "이탈위험이나"),
    # (으)로: ㄹ-final takes 로
    ("서울", "으로/로", "서울로"),
    ("지하철", "으로/로", "지하철로"),
    ("집", "으로/로", "집으로"),
    ("부산", "(으)로", "부산으로"),
    ("학교", "으로/로", "학교로"),
    ("1997년 7월", "으로/로", "1997년 7월로"),
    ("대표", "으로서/로서", "대표로서"),
    ("결과", "로/으로", "결과로"),
    # digits read as Sino-Korean: the last non-zero digit or the place word decides
    ("1", "으로/로", "1로"),  # 일 (ㄹ)
    ("1", "이/가", "1이"),
    ("2", "는/은", "2는"),  # 이
    ("3", "은/는", "3은"),  # 삼
    ("4", "을/를", "4를"),  # 사
    ("5", "이/가", "5가"),  # 오
    ("6", "이/가", "6이"),  # 육
    ("7", "으로/로", "7로"),  # 칠 (ㄹ)
    ("8", "을/를", "8을"),  # 팔
    ("9", "와/과", "9와"),  # 구
    ("0", "은/는", "0은"),  # 영
    ("10", "은/는", "10은"),  # 십
    ("20", "으로/로", "20으로"),  # 이십
    ("100", "은/는", "100은"),  # 백
    ("1000", "은/는", "1000은"),  # 천
    ("1,000", "이/가", "1,000이"),
    ("10000", "은/는", "10000은"),  # 만
    ("12", "를/을", "12를"),  # 십이
    ("15", "와/과", "15와"),  # 십오
    ("21", "으로/로", "21로"),  # 이십일
    ("300000000", "이/가", "300000000이"),  # 삼억
    ("2000000000000", "는/은", "2000000000000는"),  # 이조
    # decimals: the last digit read decides
    ("1.5", "이/가", "1.5가"),  # 일점오
    ("2.3", "을/를", "2.3을"),  # 이점삼
    ("0.7", "로/으로", "0.7로"),  # 영점칠
    ("3.0", "은/는", "3.0은"),  # 삼점영
    # amounts as formatted
    ("9,800원", "이/가", "9,800원이"),
    ("1.2만 원", "으로/로", "1.2만 원으로"),
    ("12만 원", "을/를", "12만 원을"),
    ("45.3달러", "이/가", "45.3달러가"),
    ("15달러", "을/를", "15달러를"),
    ("1.2억 원", "은/는", "1.2억 원은"),
    ("1,234 EUR", "와/과", "1,234 EUR와"),  # 유로
    ("500 JPY", "이/가", "500 JPY이"),  # 엔
    # percent, symbols and Latin letters
    ("30%", "이/가", "30%가"),  # 퍼센트
    ("12.5%", "으로/로", "12.5%로"),
    ("VIP", "은/는", "VIP는"),  # 피
    ("URL", "으로/로", "URL로"),  # 엘 (ㄹ)
    ("CRM", "을/를", "CRM을"),  # 엠
    ("email", "으로/로", "email로"),
    ("app", "이/가", "app이"),
    ("apple", "을/를", "apple를"),  # 애플
    ("phone", "은/는", "phone은"),  # 폰
    # a particle after brackets or quotes follows the word before them
    ("서울(Seoul)", "은/는", "서울(Seoul)은"),
    ("'휴면'", "으로/로", "'휴면'으로"),
    ("1,903달러(주문당 30.2달러)", "을/를", "1,903달러(주문당 30.2달러)를"),
]


@pytest.mark.parametrize(("word", "particle", "expected"), JOSA_CASES)
def test_josa(word: str, particle: str, expected: str) -> None:
    assert josa(word, particle) == expected


def test_josa_has_enough_cases() -> None:
    assert len(JOSA_CASES) >= 40


def test_josa_accepts_numbers_and_rejects_unknown_particles() -> None:
    assert josa(10, "은/는") == "10은"
    with pytest.raises(ValueError, match="unknown particle"):
        josa("사과", "이(가)")


@pytest.mark.parametrize(
    ("word", "sound"),
    [("강", "other"), ("말", "rieul"), ("나", "none"), ("", "none"), ("!!", "none")],
)
def test_final_sound(word: str, sound: str) -> None:
    assert final_sound(word) == sound


AMOUNT_CASES = [
    (0, "KRW", "0원"),
    (800, "KRW", "800원"),
    (9_800, "KRW", "9,800원"),
    (9_999.6, "KRW", "1만 원"),  # rounds to a whole 10,000 won first
    (10_000, "KRW", "1만 원"),
    (12_000, "KRW", "1.2만 원"),
    (15_300, "KRW", "1.5만 원"),
    (30_000, "KRW", "3만 원"),
    (120_000, "KRW", "12만 원"),
    (153_000, "KRW", "15.3만 원"),
    (1_234_567, "KRW", "123만 원"),
    (12_345_678, "KRW", "1,235만 원"),
    (99_999_999, "KRW", "1억 원"),  # never 10,000만 원
    (100_000_000, "KRW", "1억 원"),
    (120_000_000, "KRW", "1.2억 원"),
    (0, "USD", "0달러"),
    (0.04, "USD", "0달러"),
    (15, "USD", "15달러"),
    (29.3, "USD", "29.3달러"),
    (29.96, "USD", "30달러"),
    (45.25, "USD", "45.3달러"),  # half-up from cents
    (99.96, "USD", "100달러"),
    (153.4, "USD", "153달러"),
    (1_234, "USD", "1,234달러"),
    (1_234.5, "eur", "1,235 EUR"),
    (12.5, "JPY", "12.5 JPY"),
    (-15.25, "USD", "-15.3달러"),
]


@pytest.mark.parametrize(("value", "currency", "expected"), AMOUNT_CASES)
def test_format_amount(value: float, currency: str, expected: str) -> None:
    assert format_amount(value, currency) == expected


def test_format_amount_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        format_amount(float("nan"), "KRW")


@pytest.mark.parametrize(
    ("total", "currency", "count", "expected"),
    [
        (70_036, "USD", 8, "87.5달러"),  # 87.545: rounded once, not to 87.55 and then 87.6
        (70_040, "USD", 8, "87.6달러"),  # 87.55: a tie goes up
        (7_511, "USD", 9, "8.3달러"),  # 8.3456 (8.35 after a first rounding to cents)
        (19_999, "USD", 2, "100달러"),  # 99.995 reads as a whole number
        (8_425, "KRW", 2, "4,213원"),  # 4,212.5
        (19_999, "KRW", 2, "1만 원"),  # 9,999.5 won
        (-7, "USD", 3, "0달러"),  # -0.0233 rounds to zero: no sign
        (-1_525, "USD", 1, "-15.3달러"),  # half away from zero
    ],
)
def test_format_minor_amount_of_a_mean(total: int, currency: str, count: int, expected: str) -> None:
    assert format_minor_amount(total, currency, count) == expected


def _dollars_oracle(total_cents: int, count: int) -> str:
    """The rule in decimal arithmetic: one decimal under 100 unless it is zero."""
    value = Decimal(total_cents) / Decimal(100 * count)
    tenths = value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    if tenths < 100 and tenths != tenths.to_integral_value():
        return f"{tenths}달러"
    return f"{value.quantize(Decimal('1'), rounding=ROUND_HALF_UP):,}달러"


@given(st.integers(0, 10**9), st.integers(1, 200))
def test_a_mean_in_dollars_is_its_exact_value_rounded_once_half_up(total_cents: int, count: int) -> None:
    assert format_minor_amount(total_cents, "USD", count) == _dollars_oracle(total_cents, count)


def P(text: str) -> pd.Period:
    return pd.Period(text, freq="M")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("1997-07", "1997-07", "1997년 7월"),
        ("1997-07", "1997-10", "1997년 7월~10월"),
        ("1997-11", "1998-02", "1997년 11월~1998년 2월"),
        ("1999-12", "2000-01", "1999년 12월~2000년 1월"),
    ],
)
def test_format_month_span(start: str, end: str, expected: str) -> None:
    assert format_month_span(P(start), P(end)) == expected


def test_month_without_year() -> None:
    assert format_month(P("1998-01")) == "1998년 1월"
    assert format_month(P("1998-01"), with_year=False) == "1월"
    assert format_month_span(P("1997-07"), P("1997-10"), with_year=False) == "7월~10월"
    assert format_month_span(P("1997-11"), P("1998-02"), with_year=False) == "11월~1998년 2월"
    with pytest.raises(ValueError, match="before it starts"):
        format_month_span(P("1998-02"), P("1997-11"))


def test_jinja_filters() -> None:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    install_filters(environment)
    template = environment.from_string(
        "{{ m | month | josa('으로/로') }} {{ v | amount('KRW') | josa('을/를') }} "
        "{{ a }}(평균){{ a | particle('이/가') }} {{ s | month_span(e) }}"
    )
    text = template.render(m=P("1997-07"), v=153_000, a="9,800원", s=P("1997-11"), e=P("1998-02"))
    assert text == "1997년 7월로 15.3만 원을 9,800원(평균)이 1997년 11월~1998년 2월"
