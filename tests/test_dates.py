"""Dates a user cannot see are wrong: day/month order, epoch integers, outlying years,
--date-format, --date-range and --data-end (forecaster.dates through load_dataset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.dates import MAX_PANEL_MONTHS
from forecaster.datasets import load_dataset
from forecaster.errors import UserError

HEADER = "customer_id,ts,amount\n"


def csv_file(tmp_path: Path, dates: list[str], name: str = "tx.csv") -> str:
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"c{i % 7},{d},{1000 + i}\n" for i, d in enumerate(dates)), encoding="utf-8")
    return str(path)


def load_error(src: str, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        load_dataset(src, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def days(data) -> list[str]:
    return data.transactions["ts"].dt.strftime("%Y-%m-%d").tolist()


# --- day/month order ----------------------------------------------------------------------


def test_one_day_above_twelve_settles_day_first_for_the_whole_column(tmp_path):
    # pandas alone reads 04.06.2023 as 6 April and 13.06.2023 as 13 June
    data = load_dataset(csv_file(tmp_path, ["04.06.2023", "13.06.2023", "01.07.2023 14:30"]))
    assert days(data) == ["2023-06-04", "2023-06-13", "2023-07-01"]
    assert data.transactions["ts"].iloc[2] == pd.Timestamp("2023-07-01 14:30")
    assert any("일·월·연도" in note and "13.06.2023" in note for note in data.cleaning.notes)


def test_one_day_above_twelve_settles_month_first(tmp_path):
    data = load_dataset(csv_file(tmp_path, ["06/04/2023", "06/13/2023", "7/1/2023"]))
    assert days(data) == ["2023-06-04", "2023-06-13", "2023-07-01"]
    assert any("월·일·연도" in note for note in data.cleaning.notes)


def test_two_orders_in_one_column_are_refused(tmp_path):
    message = load_error(csv_file(tmp_path, ["2023-06-01", "13.06.2023", "06.14.2023"]))
    assert "column 'ts' mixes day/month orders" in message
    assert "row 2 (line 3) '13.06.2023'" in message and "row 3 (line 4) '06.14.2023'" in message
    assert "--date-format %d.%m.%Y" in message


def test_a_column_no_date_settles_is_refused(tmp_path):
    message = load_error(csv_file(tmp_path, ["04.06.2023", "05.06.2023", "01.01.2023"]))
    assert "row 1 (line 2): '04.06.2023' reads as day/month or month/day" in message
    assert "--date-format %d.%m.%Y (day first) or --date-format %m.%d.%Y (month first)" in message


def test_date_format_decides_and_names_a_value_that_does_not_fit(tmp_path):
    path = csv_file(tmp_path, ["04.06.2023", "05.06.2023"])
    assert days(load_dataset(path, date_format="%m.%d.%Y")) == ["2023-04-06", "2023-05-06"]
    assert days(load_dataset(path, date_format="%d.%m.%Y")) == ["2023-06-04", "2023-06-05"]
    message = load_error(csv_file(tmp_path, ["04.06.2023", "2023-06-05"], "b.csv"), date_format="%d.%m.%Y")
    assert "column 'ts', row 2 (line 3): '2023-06-05' does not match --date-format %d.%m.%Y" in message


def test_date_format_with_a_zone_converts_to_shop_time(tmp_path):
    path = csv_file(tmp_path, ["2024/01/31 20:00 +0000"])
    data = load_dataset(path, date_format="%Y/%m/%d %H:%M %z")
    assert data.transactions["ts"].tolist() == [pd.Timestamp("2024-02-01 05:00")]
    assert data.cleaning.timezone_rows_converted == 1


def test_date_format_is_for_files_only():
    assert "--date-format" in load_error("cdnow", date_format="%Y")
    assert "--decimal-comma" in load_error("synthetic:100", decimal_comma=True)


def test_repeated_values_are_parsed_once_and_mapped_back(tmp_path):
    dates = ["13.06.2023", "04.06.2023"] * 50 + ["2023-06-20"]
    data = load_dataset(csv_file(tmp_path, dates))
    assert days(data)[:2] == ["2023-06-13", "2023-06-04"] and days(data)[-1] == "2023-06-20"
    assert len(set(days(data))) == 3


# --- integers in Parquet ---------------------------------------------------------------------


def parquet_file(tmp_path: Path, ts) -> str:
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a"] * len(ts), "ts": ts, "amount": [1.0] * len(ts)}).to_parquet(path)
    return str(path)


@pytest.mark.parametrize("scale, unit, code", [(1, "seconds", "s"), (1000, "milliseconds", "ms"),
                                               (10**9, "nanoseconds", "ns")])
def test_epoch_integers_get_one_clear_line(tmp_path, scale, unit, code):
    seconds = np.array([1_688_169_600, 1_688_256_000], dtype=np.int64)
    message = load_error(parquet_file(tmp_path, seconds * scale))
    assert "tx.parquet: column 'ts' holds whole numbers, not dates (row 1: " in message
    assert f"Unix time in {unit}" in message and f"unit='{code}'" in message


def test_yyyymmdd_integers_are_dates(tmp_path):
    data = load_dataset(parquet_file(tmp_path, np.array([20240131, 20240201], dtype=np.int64)))
    assert days(data) == ["2024-01-31", "2024-02-01"]


# --- outlying dates, the panel's size, --date-range ------------------------------------------


def bulk_dates(n: int = 200) -> list[str]:
    return [f"2023-{m:02d}-{d:02d}" for m, d in zip(np.arange(n) % 12 + 1, np.arange(n) % 28 + 1)]


@pytest.mark.parametrize("typo", ["1900-01-01", "2099-12-31"])
def test_a_lone_row_far_outside_the_bulk_is_refused(tmp_path, typo):
    dates = bulk_dates()
    dates.insert(57, typo)
    message = load_error(csv_file(tmp_path, dates))
    assert f"1 row(s) lie far outside the other dates (row 58 (line 59) '{typo}')" in message
    assert "--date-range 2023-01..2023-12" in message


def test_date_range_drops_counts_and_announces_the_rows_outside(tmp_path):
    dates = bulk_dates()
    dates[10:10] = ["1900-01-01", "2099-12-31"]
    data = load_dataset(csv_file(tmp_path, dates), date_range="2023-01..2023-12")
    assert len(data.transactions) == 200 and data.transactions["ts"].dt.year.unique().tolist() == [2023]
    assert data.cleaning.date_range_rows_dropped == 2 and data.cleaning.date_range == "2023-01..2023-12"
    assert "참고: --date-range 2023-01..2023-12 밖의 거래 2행을 제외했습니다." in data.notices
    assert str(data.panel.first_month) == "2023-01" and data.panel.n_months == 12


def test_date_range_with_days_and_an_open_side(tmp_path):
    path = csv_file(tmp_path, ["2023-01-01", "2023-01-15", "2023-01-31 23:59", "2023-02-01"])
    assert days(load_dataset(path, date_range="2023-01-15..2023-01-31")) == ["2023-01-15", "2023-01-31"]
    assert days(load_dataset(path, date_range="..2023-01")) == ["2023-01-01", "2023-01-15", "2023-01-31"]
    assert days(load_dataset(path, date_range="2023-02..")) == ["2023-02-01"]
    assert "no row falls in --date-range 2024-01.." in load_error(path, date_range="2024-01..")


@pytest.mark.parametrize("text", ["2023", "2023-13..", "..", "2023-05..2023-01", "2023-02-30..2023-03"])
def test_bad_date_range(tmp_path, text):
    assert f"--date-range '{text}'" in load_error(csv_file(tmp_path, ["2023-01-01"]), date_range=text)


def test_a_span_no_shop_has_is_refused(tmp_path):
    # half the rows in 1950, half in 2024: not a typo, but not a panel either
    message = load_error(csv_file(tmp_path, ["1950-01-05"] * 50 + ["2024-06-05"] * 50))
    assert f"the dates span 894 months (1950-01 to 2024-06), more than {MAX_PANEL_MONTHS}" in message
    assert "--date-range" in message


def test_dates_beyond_what_the_tool_can_hold_are_refused_not_a_traceback(tmp_path):
    message = load_error(csv_file(tmp_path, ["9999-12-01", "9999-12-02"]))
    assert "row 1 (line 2): '9999-12-01' is outside the years 1678-2261" in message


# --- --data-end ------------------------------------------------------------------------------


def test_rows_after_data_end_are_refused_naming_the_first(tmp_path):
    path = csv_file(tmp_path, ["2023-06-01", "2023-07-02", "2023-07-01 23:59", "2023-07-03"])
    message = load_error(path, data_end="2023-07-01")
    assert "column 'ts', row 2 (line 3): '2023-07-02' is after --data-end 2023-07-01" in message


@pytest.mark.parametrize("text", ["2023-07", "07/01/2023", "2023-02-30"])
def test_bad_data_end(tmp_path, text):
    message = load_error(csv_file(tmp_path, ["2023-06-01"]), data_end=text)
    assert f"--data-end '{text}' is not a date of the form YYYY-MM-DD" in message


def test_a_format_strptime_cannot_use_is_one_line(tmp_path):
    message = load_error(csv_file(tmp_path, ["2023-06-01"]), date_format="%Q")
    assert "--date-format '%Q' is not a usable strptime format ('Q' is a bad directive" in message
