"""Transactions already in memory (``from_table``: a DataFrame or a pyarrow Table) load exactly
as a file with the same cells does, leave the caller's frame alone and fail with one clear
line; ``Dataset.summary()`` is what ``forecaster data`` prints, and ``_repr_html_`` shows it."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import clitools
from forecaster.data_summary import describe
from forecaster.dates import SHOP_TIMEZONE
from forecaster.datasets import from_table, load_dataset
from forecaster.errors import UserError

# One of each policy: a double export, a guest checkout, a return, a UTC timestamp, a ₩ sign,
# an id with spaces and a day-first date (a note).
KOREAN_SHOP = pd.DataFrame({
    "고객번호": ["a", "a", "a", None, "b", "b", " c ", "c"],
    "주문일시": ["2024-01-03", "2024-01-03", "2024-02-10", "2024-02-11", "2024-01-31T20:00:00Z",
             "2024-03-05 14:30", "15/03/2024", "2024-04-01"],
    "결제금액": ["10,000원", "10,000원", "-12,000원", "5,000원", "7,000원", "₩8,000", "12,300원", "9,000원"],
})


def as_csv(frame: pd.DataFrame, directory: Path, name: str = "shop.csv") -> str:
    path = directory / name
    frame.to_csv(path, index=False)
    return str(path)


def busy_shop_cut_off() -> pd.DataFrame:
    """Ten orders a day from January to March 2023, then an export cut at 04:12 on 1 April."""
    ts = pd.date_range("2023-01-01 09:00", "2023-03-31 21:00", freq="72min").append(
        pd.DatetimeIndex(["2023-04-01 01:30", "2023-04-01 04:12"]))
    n = len(ts)
    return pd.DataFrame({"customer_id": [f"c{i % 40}" for i in range(n)], "ts": ts,
                         "amount": 10_000.0 + np.arange(n)})


def load_error(table: object, **options) -> str:
    with pytest.raises(UserError) as info:
        from_table(table, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the same as a file ------------------------------------------------------------------


def test_a_korean_frame_loads_as_the_same_rows_in_a_csv(tmp_path):
    framed = from_table(KOREAN_SHOP, name="shop")
    filed = load_dataset(as_csv(KOREAN_SHOP, tmp_path))
    assert framed.name == "shop" and framed.currency == "KRW"
    pd.testing.assert_frame_equal(framed.transactions, filed.transactions)
    assert framed.cleaning == filed.cleaning
    np.testing.assert_array_equal(framed.panel.customer_ids, filed.panel.customer_ids)
    np.testing.assert_array_equal(framed.panel.spend, filed.panel.spend)
    # and the policies did act: they are not merely equally absent
    c = framed.cleaning
    assert (c.rows_read, c.duplicate_rows_dropped, c.null_customer_rows_dropped, c.return_rows) == (8, 1, 1, 1)
    assert c.timezone_rows_converted == 1 and len(c.notes) == 1
    assert framed.transactions["customer_id"].tolist() == ["a", "a", "b", "b", "c", "c"]
    assert framed.transactions["amount"].tolist() == [10_000.0, -12_000.0, 7_000.0, 8_000.0, 12_300.0, 9_000.0]


def test_a_pyarrow_table_loads_as_the_frame_does():
    framed = from_table(KOREAN_SHOP)
    arrowed = from_table(pa.Table.from_pandas(KOREAN_SHOP, preserve_index=False))
    pd.testing.assert_frame_equal(arrowed.transactions, framed.transactions)
    assert arrowed.cleaning == framed.cleaning and arrowed.name == "transactions"


def test_the_callers_frame_is_left_as_it_was():
    frame = KOREAN_SHOP.rename(columns={"결제금액": " 결제금액 "}).set_axis(range(100, 108))
    frame["주문일시"] = frame["주문일시"].astype("string")
    before = frame.copy(deep=True)
    data = from_table(frame, name="shop")
    assert data.cleaning.rows_read == 8  # read, stripped label and all
    pd.testing.assert_frame_equal(frame, before)


def test_typed_columns_aware_times_float_amounts_and_integer_ids():
    frame = pd.DataFrame({
        "customer_id": np.array([1, 2, 2, 3], dtype=np.int64),
        "ts": pd.to_datetime(["2024-01-31 20:00", "2024-02-10 01:00", "2024-03-01 12:00",
                              "2024-03-05 00:00"]).tz_localize("UTC"),
        "amount": [1_000.5, 2_500.0, -300.0, 4_000.25],
        "order_id": np.array([11, 12, 13, 14], dtype=np.int64),
    })
    data = from_table(frame)
    tx = data.transactions
    assert tx["customer_id"].tolist() == ["1", "2", "2", "3"]
    assert tx["ts"].dtype == np.dtype("datetime64[ns]") and tx["amount"].dtype == np.float64
    assert tx["ts"].iloc[0] == pd.Timestamp("2024-02-01 05:00")  # 20:00 UTC is 05:00 in Seoul
    assert data.cleaning.timezone_rows_converted == 4 and data.cleaning.timezone == SHOP_TIMEZONE
    assert tx["order_id"].tolist() == ["11", "12", "13", "14"]
    assert data.cleaning.return_rows == 1 and tx["amount"].iloc[0] == 1_000.5


def test_float_ids_with_a_gap_lose_their_point_and_the_gap_row():
    frame = pd.DataFrame({"customer_id": [7.0, np.nan, 8.0],
                          "ts": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-02-07"]),
                          "amount": [1_000.0, 2_000.0, 3_000.0]})
    data = from_table(frame)
    assert data.transactions["customer_id"].tolist() == ["7", "8"]
    assert data.cleaning.null_customer_rows_dropped == 1 and data.cleaning.timezone is None


# --- errors --------------------------------------------------------------------------------

BASIC = pd.DataFrame({"customer_id": ["a", "b"], "ts": ["2024-01-05", "2024-02-07"], "amount": [1.0, 2.0]})


@pytest.mark.parametrize("table, options, expected", [
    (BASIC, {"customer_col": "고객"},
     ["shop: no column '고객' (--customer-col); available columns: customer_id, ts, amount"]),
    (BASIC.drop(columns="ts"), {}, ["shop: no date column 'ts'", "--date-col"]),
    (BASIC.assign(customer_id=["", None]), {}, ["shop: column 'customer_id' has no customer ids", "--customer-col"]),
    (BASIC.assign(total=[1.0, 2.0]).set_axis(["customer_id", "ts", "amount", "amount"], axis=1), {},
     ["shop: the header repeats the column 'amount' (columns 3 and 4)"]),
    (BASIC.assign(x=[1.0, 2.0]).set_axis(["customer_id", "ts", "amount", " amount"], axis=1), {},
     ["shop: the header repeats the column 'amount' (columns 3 and 4)"]),
    (BASIC.iloc[:0], {}, ["shop: no data rows", "one row per transaction"]),
    ([{"customer_id": "a", "ts": "2024-01-05", "amount": 1}], {},
     ["shop: a list is not a table", "pandas DataFrame", "pyarrow Table"]),
    ({"customer_id": ["a"]}, {}, ["shop: a dict is not a table"]),
    ("shop.csv", {}, ["shop: a str is not a table", "load_dataset"]),
    (BASIC, {"currency": "원화"}, ["--currency '원화' is not a 3-letter currency code"]),
], ids=["missing-mapped", "missing-default", "no-ids", "repeated", "repeated-after-strip", "empty", "list",
        "dict", "path", "currency"])
def test_bad_tables_are_one_clear_line(table, options, expected):
    message = load_error(table, name="shop", **options)
    for part in expected:
        assert part in message


def test_messages_name_the_table_transactions_by_default():
    assert load_error(BASIC, amount_col="price").startswith("transactions: no column 'price' (--amount-col)")


# --- months --------------------------------------------------------------------------------


def test_a_partial_last_month_is_dropped_as_for_a_file(tmp_path):
    frame = busy_shop_cut_off()
    framed = from_table(frame, name="shop.csv")
    filed = load_dataset(as_csv(frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%d %H:%M")), tmp_path))
    assert str(framed.coverage.dropped_month) == "2023-04" and str(framed.panel.last_month) == "2023-03"
    assert framed.notices == filed.notices and len(framed.notices) == 1
    np.testing.assert_array_equal(framed.panel.spend, filed.panel.spend)


def test_keep_partial_month_keeps_it():
    data = from_table(busy_shop_cut_off(), keep_partial_month=True)
    assert data.coverage.dropped_month is None and str(data.panel.last_month) == "2023-04"
    assert "--keep-partial-month에 따라 온전한 달로 보고 포함했습니다" in data.notices[0]


def test_date_range_and_data_end_apply_to_a_frame():
    data = from_table(KOREAN_SHOP, date_range="2024-01-05..")
    assert data.cleaning.date_range_rows_dropped == 1 and data.transactions["ts"].min() >= pd.Timestamp("2024-01-05")
    assert "after --data-end 2024-03-31" in load_error(KOREAN_SHOP, data_end="2024-03-31")


# --- summary and notebook view -------------------------------------------------------------


def cli_rows(out: str) -> list[tuple[str, str]]:
    """The ``(item, value)`` rows of the overview and cleaning tables (the monthly table has
    five columns; the memory estimate after them is a plan for the runs, not the data)."""
    data_part = out.split("예상 최대 메모리")[0]
    return [(line.split("│")[1].strip(), line.split("│")[2].strip()) for line in data_part.splitlines()
            if line.count("│") == 3]


def test_summary_rows_are_what_forecaster_data_prints(tmp_path, monkeypatch, capsys):
    path = as_csv(KOREAN_SHOP, tmp_path)
    monkeypatch.setenv("COLUMNS", "200")  # rich: no wrapping inside the cells
    code, out, err = clitools.run_cli(["data", "--data", path, "--date-range", "2024-01-05.."], monkeypatch, capsys)
    assert code == 0, err
    summary = load_dataset(path, date_range="2024-01-05..").summary()
    assert list(summary.columns) == ["section", "item", "value"]
    assert list(zip(summary["item"], summary["value"])) == cli_rows(out)
    assert summary["section"].tolist() == ["overview"] * 7 + ["cleaning"] * 7  # date range and a note too
    framed = from_table(KOREAN_SHOP, name="shop.csv", date_range="2024-01-05..").summary()
    pd.testing.assert_frame_equal(framed, summary)


def test_monthly_is_the_monthly_table():
    data = from_table(busy_shop_cut_off())
    monthly = data.monthly()
    pd.testing.assert_frame_equal(monthly, describe(data).monthly)
    assert monthly["month"].astype(str).tolist() == ["2023-01", "2023-02", "2023-03"]


def test_html_view_escapes_the_name_and_holds_the_table_and_notices():
    data = from_table(busy_shop_cut_off(), name="<b>shop</b>")
    view = data._repr_html_()
    assert "<h4>데이터 &lt;b&gt;shop&lt;/b&gt; (KRW)</h4>" in view and "<b>shop</b>" not in view
    assert view.count("<li>") == 1 and "<li>참고: 마지막 달 2023년 4월은" in view
    assert "<table" in view and "</table>" in view and "<html" not in view
    for value in data.summary()["value"]:
        assert f"<td>{html.escape(value)}</td>" in view
