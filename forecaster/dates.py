"""Reading the date column of a user's file, and screening the dates of any dataset.

Parsing (``parse_dates``): every distinct text is parsed once (exports repeat dates).

- ``--date-format FMT`` applies one strptime format to every value; a value it does not fit
  is an error naming its row.
- Otherwise ISO-like and year-first text (``2024-03-15 14:30``, ``2024.03.15``,
  ``20240315``) is read as such. Day/month layouts (``04.06.2023``, ``6/4/2023``) get one
  order for the whole column, decided by the values: a first number above 12 means day
  first, a second number above 12 means month first. Values that need both orders, or a
  column where no value settles the order, are refused with one line naming a row and
  asking for ``--date-format`` (pandas alone reads such a column with two orders).
- Time-zone-aware text (``Z``, ``+09:00``, ``-0500``) is converted to Asia/Seoul, the
  shop's calendar, then made naive; ``... KST`` is shop time already.
- Integer columns are dates only as 8-digit ``YYYYMMDD``; epoch integers are refused with a
  line saying what they look like (seconds, milliseconds...) and what to do.

Screening (``screen_dates``), for files and built-in data alike: ``--date-range A..B``
drops (and counts) the rows outside it; ``--data-end DATE`` refuses rows after DATE; a
small group of rows (under 1% of them) separated from the bulk by 12 or more empty months
is refused with its rows named (a 1900 or 2099 typo would stretch the panel over
centuries); a span over ``MAX_PANEL_MONTHS`` months is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.errors import UserError
from forecaster.tables import Where
from narrator.panel import parse_month

SHOP_TIMEZONE = "Asia/Seoul"
MAX_PANEL_MONTHS = 600  # 50 years of months: beyond this the dates are wrong, not the shop old
OUTLIER_GAP_MONTHS = 12  # this many empty months or more cut a group of rows off the bulk
OUTLIER_SHARE = 0.01  # ... and a group this small (share of rows) is a typo, not history
SHOWN_ROWS = 3
_WORK_UNIT = "datetime64[us]"  # wide enough for 1900 or 9999 typos; ns only at the end
# what datetime64[ns] (the transactions' contract) holds, in whole years
_FIRST_OK, _STOP_OK = np.datetime64("1678-01-01", "us"), np.datetime64("2262-01-01", "us")

# plain pattern strings (inline flags), not compiled ones: pandas then runs them in
# pyarrow's regex engine over the whole column instead of Python's re value by value
_TZ_SUFFIX = r"(?i)\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"
_KST_SUFFIX = r"(?i)\s*KST$"
_DAY_MONTH = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$")
_DAY, _MONTH = r"\d{4}-\d{2}-\d{2}", r"\d{4}-\d{2}"
_RANGE = re.compile(rf"^\s*({_DAY}|{_MONTH})?\s*\.\.\s*({_DAY}|{_MONTH})?\s*$")
_EPOCH_UNITS = ((1e11, "seconds", "s"), (1e14, "milliseconds", "ms"), (1e17, "microseconds", "us"))


@dataclass(frozen=True)
class ParsedDates:
    ts: pd.Series  # datetime64[us], naive shop time, same index as the column
    converted: int  # rows converted from another time zone
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DateRange:
    text: str
    start: pd.Timestamp | None  # first instant kept
    stop: pd.Timestamp | None  # first instant dropped


def parse_date_range(text: str) -> DateRange:
    """``A..B`` with dates (YYYY-MM-DD) or months (YYYY-MM); either side may be empty."""
    match = _RANGE.fullmatch(text)
    if not match or not (match.group(1) or match.group(2)):
        raise UserError(f"--date-range '{text}' is not A..B with dates or months (e.g. 2023-01..2023-12 "
                        f"or 2023-01-15..2023-06-30; one side may be left empty)")
    try:
        start = pd.Timestamp(match.group(1)) if match.group(1) else None
        stop = _end_of(match.group(2)) if match.group(2) else None
    except ValueError:
        raise UserError(f"--date-range '{text}': not a real date; use e.g. 2023-01..2023-12") from None
    if start is not None and stop is not None and stop <= start:
        raise UserError(f"--date-range '{text}': the end comes before the start")
    return DateRange(text.strip(), start, stop)


def _end_of(text: str) -> pd.Timestamp:
    """First instant after the day or month ``text``."""
    if re.fullmatch(_MONTH, text):
        return (pd.Period(text, freq="M") + 1).to_timestamp()
    return pd.Timestamp(text) + pd.Timedelta(days=1)


def parse_data_end(text: str) -> pd.Timestamp:
    """``--data-end YYYY-MM-DD``: the last day the export covers (midnight of that day)."""
    try:
        if not re.fullmatch(_DAY, text.strip()):
            raise ValueError
        return pd.Timestamp(text.strip())
    except ValueError:
        raise UserError(f"--data-end '{text}' is not a date of the form YYYY-MM-DD (e.g. 2023-07-01)") from None


# -- parsing -------------------------------------------------------------------------------


def parse_dates(column: pd.Series, where: Where, name: str, date_format: str | None = None) -> ParsedDates:
    """The column as naive shop time (datetime64[us]); UserError naming a row otherwise."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        local = column.dt.tz_convert(SHOP_TIMEZONE).dt.tz_localize(None)
        return ParsedDates(local.astype(_WORK_UNIT), len(column))
    if pd.api.types.is_datetime64_dtype(column):
        return ParsedDates(column.astype(_WORK_UNIT), 0)
    if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
        _refuse_epoch_integers(column, where, name)
    text = column.astype("string").str.strip()  # also 20240131 stored as a number
    text = text.str.replace(_KST_SUFFIX, "", regex=True)  # KST is shop time already
    empty = (text.isna() | (text == "")).to_numpy()
    if empty.any():
        row = int(column.index[np.argmax(empty)])
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: the date is empty; fill it in or "
                        f"remove the row")
    codes, uniques = pd.factorize(text)
    values = pd.Series(uniques, dtype="string")
    first_row = np.full(len(values), len(codes), dtype=np.int64)
    np.minimum.at(first_row, codes, np.arange(len(codes)))  # file position of each value's first use
    rows = column.index.to_numpy()[first_row]
    if date_format is not None:
        parsed, aware, notes = _with_format(values, date_format)
    else:
        parsed, aware, notes = _inferred(values, where, name, rows)
    bad = parsed.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmin(rows[bad])])
        what = (f"'{uniques[k]}' does not match --date-format {date_format}" if date_format is not None else
                f"cannot read '{uniques[k]}' as a date; use e.g. 2024-03-15 or 2024-03-15 14:30")
        raise UserError(f"{where.file}: column '{name}', {where.row(int(rows[k]))}: {what}")
    ts = pd.Series(parsed.to_numpy()[codes], index=column.index)
    return ParsedDates(ts, int(aware[codes].sum()), notes)


def _with_format(values: pd.Series, date_format: str) -> tuple[pd.Series, np.ndarray, tuple[str, ...]]:
    """``values`` read with the user's strptime format (NaT where it does not fit); a format
    with a zone (%z, %Z) makes every value aware."""
    zone = "%z" in date_format or "%Z" in date_format
    try:
        parsed = pd.to_datetime(values, format=date_format, errors="coerce", utc=zone)
    except ValueError as exc:
        detail = str(exc).strip().splitlines()[0]
        raise UserError(f"--date-format '{date_format}' is not a usable strptime format ({detail}); "
                        f"use e.g. %d.%m.%Y or '%Y-%m-%d %H:%M'") from None
    if zone:
        parsed = parsed.dt.tz_convert(SHOP_TIMEZONE).dt.tz_localize(None)
    return parsed.astype(_WORK_UNIT), np.full(len(values), zone), ()


def _inferred(values: pd.Series, where: Where, name: str,
              rows: np.ndarray) -> tuple[pd.Series, np.ndarray, tuple[str, ...]]:
    """ISO-like and year-first text on pandas' fast path; what that misses gets one
    day/month order for the whole column, then value-by-value parsing. Aware values go to
    shop time. Returns the parsed values, which were aware, and a note on the order."""
    aware = values.str.contains(_TZ_SUFFIX).to_numpy(dtype=bool)
    parsed = _parse_parts(values, aware, "ISO8601")
    missed = parsed.isna().to_numpy()
    if not missed.any():  # the usual export: no regex pass over the values at all
        return parsed, aware, ()
    rewritten, notes = _day_month_to_iso(values[missed], where, name, rows[missed])
    again = _parse_parts(rewritten, aware[missed], "ISO8601")
    still = again.isna().to_numpy()
    if still.any():
        again[still] = _parse_parts(rewritten[still], aware[missed][still], "mixed")
    parsed[missed] = again.to_numpy()
    return parsed, aware, notes


def _parse_parts(values: pd.Series, aware: np.ndarray, date_format: str) -> pd.Series:
    """``values`` parsed with pandas' ``date_format`` (NaT where it fails), aware ones
    converted to shop time."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype=_WORK_UNIT)
    for mask, utc in ((~aware, False), (aware, True)):
        if mask.any():
            got = pd.to_datetime(values[mask], format=date_format, errors="coerce", utc=utc)
            if utc:
                got = got.dt.tz_convert(SHOP_TIMEZONE).dt.tz_localize(None)
            parsed[mask] = got.astype(_WORK_UNIT)
    return parsed


def _day_month_to_iso(values: pd.Series, where: Where, name: str,
                      rows: np.ndarray) -> tuple[pd.Series, tuple[str, ...]]:
    """Day/month layouts rewritten as ISO text in the one order every value allows."""
    parts = values.str.extract(_DAY_MONTH)
    layout = parts[0].notna().to_numpy()
    if not layout.any():
        return values, ()
    first = parts.loc[layout, 0].astype(int).to_numpy()
    second = parts.loc[layout, 2].astype(int).to_numpy()
    at = np.flatnonzero(layout)
    sep = str(parts.loc[layout, 1].iloc[0])
    formats = f"--date-format %d{sep}%m{sep}%Y (day first) or --date-format %m{sep}%d{sep}%Y (month first)"

    def place(mask: np.ndarray) -> tuple[str, str]:
        k = at[mask][np.argmin(rows[at[mask]])]
        return where.row(int(rows[k])), str(values.iloc[k])

    # a value above 12 in both places is no date at all: left to fail as unreadable
    day_first, month_first = (first > 12) & (second <= 12), (second > 12) & (first <= 12)
    if day_first.any() and month_first.any():
        (row_d, value_d), (row_m, value_m) = place(day_first), place(month_first)
        raise UserError(f"{where.file}: column '{name}' mixes day/month orders: {row_d} '{value_d}' reads only "
                        f"day first, {row_m} '{value_m}' only month first; fix the column or pass {formats}")
    if not day_first.any() and not month_first.any() and (first != second).any():
        row, value = place(first != second)
        raise UserError(f"{where.file}: column '{name}', {row}: '{value}' reads as day/month or month/day and no "
                        f"date in the column settles which; pass {formats}")
    day, month = (first, second) if day_first.any() else (second, first)
    year = parts.loc[layout, 3].astype(int).to_numpy()
    year = np.where(year < 100, np.where(year < 69, 2000, 1900) + year, year)  # strptime's %y rule
    iso = (pd.Series(year).astype(str) + "-" + pd.Series(month).astype(str).str.zfill(2) + "-"
           + pd.Series(day).astype(str).str.zfill(2) + parts.loc[layout, 4].fillna("").to_numpy())
    rewritten = values.copy()
    rewritten.iloc[at] = iso.to_numpy()
    settled = day_first | month_first
    if not settled.any():  # every value has day == month: either order reads the same
        return rewritten, ()
    order = "일·월·연도" if day_first.any() else "월·일·연도"
    k = at[np.argmax(settled)]
    note = f"날짜는 {order} 순서로 읽었습니다 (예: {values.iloc[k]} → {rewritten.iloc[k][:10]}; 바꾸려면 --date-format)"
    return rewritten, (note,)


def _refuse_epoch_integers(column: pd.Series, where: Where, name: str) -> None:
    """Integers are dates only as YYYYMMDD (20240315); anything else is refused, saying
    which epoch unit the numbers look like."""
    values = column.to_numpy(dtype=np.int64, na_value=0)
    month, day = values // 100 % 100, values % 100
    yyyymmdd = (values >= 1900_01_01) & (values <= 2100_12_31) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    if yyyymmdd.all():
        return
    i = int(np.argmax(~yyyymmdd))
    magnitude = float(np.median(np.abs(values[~yyyymmdd])))
    unit, code = next(((u, c) for limit, u, c in _EPOCH_UNITS if magnitude < limit), ("nanoseconds", "ns"))
    raise UserError(f"{where.file}: column '{name}' holds whole numbers, not dates ({where.row(int(column.index[i]))}: "
                    f"{values[i]}); if they are Unix time in {unit}, convert them first (e.g. pandas.to_datetime"
                    f"(df['{name}'], unit='{code}')) or export the column as dates like 2024-03-15 14:30")


# -- screening -------------------------------------------------------------------------------


def screen_dates(ts: pd.Series, raw: pd.Series, where: Where, name: str, *,
                 date_range: DateRange | None = None, data_end: pd.Timestamp | None = None) -> np.ndarray:
    """Which rows to keep (``--date-range``); UserError for rows after ``--data-end``, for
    outlying dates and for a span no shop has. ``ts`` and ``raw`` share the file's row index."""
    keep = np.ones(len(ts), dtype=bool)
    values = ts.to_numpy(dtype=_WORK_UNIT)
    if date_range is not None:
        if date_range.start is not None:
            keep &= values >= _us(date_range.start)
        if date_range.stop is not None:
            keep &= values < _us(date_range.stop)
        if not keep.any():
            raise UserError(f"{where.file}: no row falls in --date-range {date_range.text} (the dates run from "
                            f"{ts.min():%Y-%m-%d} to {ts.max():%Y-%m-%d})")
    if data_end is not None:
        after = keep & (values >= _us(data_end + pd.Timedelta(days=1)))
        if after.any():
            i = int(np.argmax(after))
            raise UserError(f"{where.file}: column '{name}', {where.row(int(ts.index[i]))}: '{raw.iloc[i]}' is after "
                            f"--data-end {data_end:%Y-%m-%d}; correct --data-end or leave those rows out with "
                            f"--date-range")
    _refuse_outlying_dates(values, keep, raw, where, name)
    months = values[keep].astype("datetime64[M]")
    check_span(months.min(), months.max(), where, name)
    beyond = keep & outside_years(values)
    if beyond.any():
        i = int(np.argmax(beyond))
        refuse_beyond(where, name, int(ts.index[i]), raw.iloc[i])
    return keep


def check_span(first: np.datetime64, last: np.datetime64, where: Where, name: str) -> None:
    """Refuse dates whose first and last month (datetime64[M]) span over MAX_PANEL_MONTHS."""
    span = int((last - first).astype(np.int64)) + 1
    if span > MAX_PANEL_MONTHS:
        raise UserError(f"{where.file}: column '{name}': the dates span {span:,} months ({first} to "
                        f"{last}), more than {MAX_PANEL_MONTHS}; check the dates or keep a part "
                        f"with --date-range A..B")


def outside_years(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` (datetime64[us]) datetime64[ns] cannot hold."""
    return (values < _FIRST_OK) | (values >= _STOP_OK)


def refuse_beyond(where: Where, name: str, row: int, value: object) -> None:
    raise UserError(f"{where.file}: column '{name}', {where.row(row)}: '{value}' is outside "
                    f"the years 1678-2261 this tool handles; fix the date or leave it out with --date-range")


def _us(moment: pd.Timestamp) -> np.datetime64:
    """``moment`` in the working unit: comparing with ns would overflow for year 9999."""
    return np.datetime64(moment.to_datetime64(), "us")


def _refuse_outlying_dates(values: np.ndarray, keep: np.ndarray, raw: pd.Series, where: Where, name: str) -> None:
    """Refuse a small group of rows (under OUTLIER_SHARE) that OUTLIER_GAP_MONTHS or more
    empty months separate from the bulk of the data."""
    months = values.astype("datetime64[M]").astype(np.int64)
    occupied, counts = np.unique(months[keep], return_counts=True)
    bulk_months = outlying_bulk(occupied, counts)
    if bulk_months is None:
        return
    outlying = keep & ~np.isin(months, bulk_months)
    shown = np.flatnonzero(outlying)[:SHOWN_ROWS]
    refuse_outliers(where, name, [(int(raw.index[i]), raw.iloc[i]) for i in shown], int(outlying.sum()), bulk_months)


def outlying_bulk(occupied: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """The months (since 1970-01; ``occupied`` sorted, with their row ``counts``) of the
    bulk when a group under OUTLIER_SHARE of the rows lies OUTLIER_GAP_MONTHS or more empty
    months away from it; None when nothing is outlying."""
    if len(occupied) < 2:
        return None
    group = np.r_[0, np.cumsum(np.diff(occupied) > OUTLIER_GAP_MONTHS)]  # diff 13 = 12 empty months
    rows_per_group = np.bincount(group, weights=counts)
    bulk = int(np.argmax(rows_per_group))
    outside = int(counts.sum() - rows_per_group[bulk])
    if outside == 0 or outside >= OUTLIER_SHARE * counts.sum():
        return None
    return occupied[group == bulk]


def refuse_outliers(where: Where, name: str, shown: list[tuple[int, object]], outside: int,
                    bulk_months: np.ndarray) -> None:
    """The outlying-dates error; ``shown``: (file row, raw value) of the first outlying rows."""
    listed = ", ".join(f"{where.row(row)} '{value}'" for row, value in shown)
    more = f" and {outside - len(shown):,} more" if outside > len(shown) else ""
    first, last = (pd.Period(ordinal=int(m), freq="M") for m in (bulk_months.min(), bulk_months.max()))
    raise UserError(f"{where.file}: column '{name}': {outside:,} row(s) lie far outside the other dates "
                    f"({listed}{more}); fix them or keep the bulk with --date-range {first}..{last}")


def parse_anchor(text: str | pd.Period) -> pd.Period:
    """``--anchor YYYY-MM`` (or a month) as a month, the same one-line error everywhere."""
    try:
        return parse_month(text)
    except ValueError:
        raise UserError(f"--anchor '{text}' is not a month of the form YYYY-MM (e.g. 1998-01)") from None
