"""Korean formatting: amounts, months and particles (josa) chosen by the final sound.

Particles that alternate (이/가, 을/를, 은/는, 와/과, (으)로, 이다/다, 아/야) depend on whether
the preceding word, *as read aloud*, ends in a final consonant (받침), and for (으)로 on
whether that consonant is ㄹ (서울로, 집으로). The rules follow the standard grammar
(표준국어대사전; 국립국어원 「한글 맞춤법」): the final sound of a Hangul syllable is its
jongseong, ``(code - 0xAC00) % 28`` (0 = none, 8 = ㄹ); Arabic numerals are read as
Sino-Korean numbers (10 십, 100 백, 1000 천, 10000 만, 10^8 억...), so the last non-zero
digit and the place word after it decide; a decimal is read digit by digit, so its last
digit decides; ``%`` reads 퍼센트; Latin letters are read as English (acronyms by letter
name: VIP 브이아이피, URL 유알엘).

Everything here is a pure function over strings and numbers, cheap enough to be called for
every cell of every narrative.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import jinja2
import pandas as pd

# -- final sound ---------------------------------------------------------------------------

NONE, RIEUL, OTHER = "none", "rieul", "other"  # no 받침 / ㄹ 받침 / any other 받침

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_JONGSEONG_RIEUL = 8

# Sino-Korean readings: 영 일 이 삼 사 오 육 칠 팔 구
_DIGIT_FINAL = {
    "0": OTHER, "1": RIEUL, "2": NONE, "3": OTHER, "4": NONE,
    "5": NONE, "6": OTHER, "7": RIEUL, "8": RIEUL, "9": NONE,
}
# after the last non-zero digit comes a place word by the number of trailing zeros: 십(ㅂ)
# 백(ㄱ) 천(ㄴ) all end in a consonant; from 4 zeros on the group word 만(ㄴ) 억(ㄱ) 조(-)
# 경(ㅇ) ends the reading
_GROUP_FINAL = [OTHER, OTHER, NONE, OTHER]  # 만, 억, 조, 경 (every 4 zeros)

# English letter names as read in Korean (에이, 비, 씨 ... 엘, 엠, 엔, 알)
_LETTER_FINAL = {letter: NONE for letter in "ABCDEFGHIJKOPQSTUVWXYZ"}
_LETTER_FINAL.update({"L": RIEUL, "M": OTHER, "N": OTHER, "R": RIEUL})

# symbols read as words: % 퍼센트, $ 달러, ₩ 원, ℃ 도, & 앤드, + 플러스
_SYMBOL_FINAL = {"%": NONE, "$": NONE, "₩": OTHER, "℃": NONE, "&": NONE, "+": NONE}

# currency codes are read as the currency's name (유로, 엔), not letter by letter
_CODE_FINAL = {"KRW": OTHER, "USD": NONE, "EUR": NONE, "JPY": OTHER, "CNY": OTHER, "GBP": NONE}

# closing marks the particle is written after but that are not read
_SILENT_TRAILERS = "\"'”’」』》〉]}.,!?… \t"

_NUMBER_AT_END = re.compile(r"([0-9][0-9,]*)(?:\.([0-9]+))?$")
_PARENTHESIS_AT_END = re.compile(r"\s*\([^()]*\)$")
_LATIN_WORD_AT_END = re.compile(r"[A-Za-z]+$")
_VOWELS = "aeiou"


def _number_final(integer_part: str, decimals: str | None) -> str:
    """Final sound of a number read in Sino-Korean (decimals digit by digit)."""
    if decimals:
        return _DIGIT_FINAL[decimals[-1]]
    digits = integer_part.replace(",", "").lstrip("0")
    if not digits:
        return _DIGIT_FINAL["0"]  # 영
    stripped = digits.rstrip("0")
    zeros = len(digits) - len(stripped)
    if zeros == 0:
        return _DIGIT_FINAL[stripped[-1]]
    if zeros < 4:
        return OTHER
    return _GROUP_FINAL[min(zeros // 4, len(_GROUP_FINAL)) - 1]


def _latin_final(word: str) -> str:
    """Final sound of a Latin-letter word: acronyms (all capitals) by the last letter's
    name, currency codes by the currency's name; ordinary words by common English endings
    (zoom, phone, email, app, book)."""
    if word in _CODE_FINAL:
        return _CODE_FINAL[word]
    if word.isupper():
        return _LETTER_FINAL[word[-1]]
    w = word.lower()
    if w.endswith("ng") or w[-1] in "mn":
        return OTHER
    if w.endswith("le"):  # apple 애플, table 테이블
        return NONE
    if w[-1] == "l":  # email 이메일, mall 몰
        return RIEUL
    if w[-1] == "e" and len(w) > 2 and w[-2] in "mn":  # game 게임, phone 폰
        return OTHER
    # a short vowel before k/p/t gives a 받침 (chat 챗, app 앱, back 백, book 북); after a
    # long vowel a vowel is added instead (boat 보트, seat 시트)
    if w.endswith(("pp", "tt", "ck", "ook")):
        return OTHER
    if len(w) > 1 and w[-1] in "kpt" and w[-2] in _VOWELS and (len(w) == 2 or w[-3] not in _VOWELS):
        return OTHER
    return NONE


@lru_cache(maxsize=1 << 16)  # narratives repeat the same months and amounts
def final_sound(word: str) -> str:
    """``'none'``, ``'rieul'`` (ㄹ) or ``'other'``: the final consonant of ``word`` as read.

    Unreadable trailing marks (quotes, brackets, a parenthesised gloss) are skipped, since
    the particle follows the word before them. A word with nothing readable counts as
    vowel-final.
    """
    text = _PARENTHESIS_AT_END.sub("", word.rstrip(_SILENT_TRAILERS)) or word
    text = text.rstrip(_SILENT_TRAILERS)
    if not text:
        return NONE
    last = text[-1]
    code = ord(last)
    if _HANGUL_FIRST <= code <= _HANGUL_LAST:
        jong = (code - _HANGUL_FIRST) % 28
        return NONE if jong == 0 else RIEUL if jong == _JONGSEONG_RIEUL else OTHER
    if "0" <= last <= "9":
        match = _NUMBER_AT_END.search(text)
        return _number_final(match.group(1), match.group(2))
    if last in _SYMBOL_FINAL:
        return _SYMBOL_FINAL[last]
    latin = _LATIN_WORD_AT_END.search(text)
    if latin:
        return _latin_final(latin.group(0))
    return NONE


# -- particles ------------------------------------------------------------------------------

# (after a final consonant, after no final consonant); either spelling order is accepted
_PAIRS = [("이", "가"), ("을", "를"), ("은", "는"), ("과", "와"), ("으로", "로"), ("이다", "다"),
          ("아", "야"), ("이나", "나"), ("이랑", "랑"), ("으로서", "로서"), ("으로써", "로써")]
_PARTICLES = (
    {f"{a}/{b}": (a, b) for a, b in _PAIRS}
    | {f"{b}/{a}": (a, b) for a, b in _PAIRS}
    | {"(으)로": ("으로", "로")}
)
_RO_FAMILY = {"으로", "으로서", "으로써"}  # ㄹ-final words take the short form: 서울로


def particle_for(word: str, particle: str) -> str:
    """The form of ``particle`` (e.g. ``'이/가'``) that follows ``word``."""
    try:
        with_final, without_final = _PARTICLES[particle]
    except KeyError:
        raise ValueError(f"unknown particle '{particle}': use one of {', '.join(sorted(_PARTICLES))}") from None
    sound = final_sound(word)
    if sound == NONE or (sound == RIEUL and with_final in _RO_FAMILY):
        return without_final
    return with_final


def josa(word: object, particle: str) -> str:
    """``word`` followed by the right form of ``particle``: josa('서울', '으로/로') -> '서울로',
    josa('10', '은/는') -> '10은', josa('45.3달러', '이/가') -> '45.3달러가'."""
    text = str(word)
    return text + particle_for(text, particle)


# -- amounts --------------------------------------------------------------------------------

_MAN, _EOK = 10_000, 100_000_000


def minor_unit_scale(currency: str) -> int:
    """How many minor units make one unit: amounts are counted in whole won for KRW and in
    whole cents otherwise before anything is shown, so a formatted amount depends only on
    integers (a total, or a total and the count it is divided by)."""
    return 1 if currency.upper() == "KRW" else 100


def _scaled(minor: int, unit: int) -> str:
    """``minor / unit`` with one decimal when the decimal is not zero and the value is under
    100 (29.3, 1.2), else a whole number with thousands separators (15, 1,234). Integer
    half-up rounding straight from the exact fraction, so no value is rounded twice (a
    mean of 87.545 reads 87.5, never 87.55 and then 87.6)."""
    tenths = (20 * minor + unit) // (2 * unit)
    if tenths < 1000 and tenths % 10:
        return f"{tenths // 10}.{tenths % 10}"
    return f"{(2 * minor + unit) // (2 * unit):,}"


def format_minor_amount(minor: int, currency: str, count: int = 1) -> str:
    """:func:`format_amount` of ``minor / count`` minor units (won or cents): an amount
    already in minor units, or a mean given exactly as its total and its count (a positive
    int). The value shown is that exact fraction rounded once, half away from zero; one
    that rounds to zero reads without a sign."""
    if minor < 0:
        text = format_minor_amount(-minor, currency, count)
        return text if text == format_minor_amount(0, currency) else "-" + text
    code = currency.upper()
    if code != "KRW":
        number = _scaled(minor, 100 * count)
        return f"{number}달러" if code == "USD" else f"{number} {code}"
    won = (2 * minor + count) // (2 * count)
    if won < _MAN:
        return f"{won:,}원"
    # pick the unit after rounding, so 9,999.9만 원 reads 1억 원, never 10,000만 원
    if (2 * minor + _MAN * count) // (2 * _MAN * count) >= _EOK // _MAN:
        return f"{_scaled(minor, _EOK * count)}억 원"
    return f"{_scaled(minor, _MAN * count)}만 원"


def format_amount(value: float, currency: str) -> str:
    """A natural Korean amount: ``9,800원``, ``1.2만 원``, ``15.3만 원``, ``1.2억 원``,
    ``15달러``, ``29.3달러``, ``1,234달러``; other codes ``1,234 EUR``; zero ``0원``/``0달러``."""
    if not math.isfinite(value):
        raise ValueError(f"amount {value!r} is not a finite number")
    return format_minor_amount(round(value * minor_unit_scale(currency)), currency)


# -- months ---------------------------------------------------------------------------------


def format_month(period: pd.Period, *, with_year: bool = True) -> str:
    """``1997년 7월`` (``7월`` without the year)."""
    return f"{period.year}년 {period.month}월" if with_year else f"{period.month}월"


def format_month_span(start: pd.Period, end: pd.Period, *, with_year: bool = True) -> str:
    """``1997년 7월~10월`` within a year, ``1997년 11월~1998년 2월`` across years, and a
    single month when ``start == end``. ``with_year=False`` leaves out the start's year
    (``7월~10월``, ``11월~1998년 2월``) for lists where it was already said."""
    if end < start:
        raise ValueError(f"month span ends ({end}) before it starts ({start})")
    first = format_month(start, with_year=with_year)
    if start == end:
        return first
    return f"{first}~{format_month(end, with_year=end.year != start.year)}"


def install_filters(environment: jinja2.Environment) -> None:
    """Register the Jinja filters ``josa`` (word + particle), ``particle`` (the particle
    alone, for text set between a word and its particle), ``amount``, ``month`` and
    ``month_span``: ``{{ last_month | josa('으로/로') }}``, ``{{ 12300 | amount('KRW') }}``."""
    environment.filters.update(
        josa=josa,
        particle=lambda word, particle: particle_for(str(word), particle),
        amount=format_amount,
        month=format_month,
        month_span=format_month_span,
    )
