"""Loading: the bundled CDNOW file, synthetic specs, and user CSV/Parquet files with their
validation errors and cleaning policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.dates import SHOP_TIMEZONE
from forecaster.datasets import load_dataset
from forecaster.errors import UserError


def write_csv(tmp_path: Path, text: str, name: str = "tx.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return str(path)


def load_error(src: str, **kwargs: str) -> str:
    with pytest.raises(UserError) as info:
        load_dataset(src, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- CDNOW ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow():
    return load_dataset("cdnow")


def test_cdnow_counts_and_contract(cdnow):
    tx = cdnow.transactions
    assert cdnow.currency == "USD" and cdnow.latent is None
    assert len(tx) == 69_659
    assert tx["customer_id"].nunique() == 23_570
    assert tx["ts"].dtype == np.dtype("datetime64[ns]")
    assert tx["amount"].dtype == np.float64
    assert tx["customer_id"].iloc[0] == "00001"  # leading zeros kept
    assert str(cdnow.panel.first_month) == "1997-01" and str(cdnow.panel.last_month) == "1998-06"
    assert cdnow.panel.customer_ids.size == 23_570
    assert cdnow.cleaning.rows_read == 69_659 and cdnow.cleaning.duplicate_rows_dropped == 0
    assert any("255" in note for note in cdnow.cleaning.notes)


def test_panel_is_cached(cdnow):
    assert cdnow.panel is cdnow.panel


def test_mapping_options_rejected_for_builtin_data():
    message = load_error("cdnow", customer_col="id")
    assert "--customer-col" in message and "cdnow" in message
    assert "--currency" in load_error("synthetic:100", currency="USD")


@pytest.mark.parametrize("spec", ["synthetic:abc", "synthetic:0", "synthetic:10:-1", "synthetic:1:2:3"])
def test_bad_synthetic_spec(spec):
    message = load_error(spec)
    assert spec in message and "synthetic:N:SEED" in message


def test_synthetic_spec_names_size_and_seed():
    data = load_dataset("synthetic:150:4")
    assert data.name == "synthetic:150:4" and data.currency == "KRW"
    assert data.latent is not None and len(data.latent) == 150


# --- user files: happy paths and policies -----------------------------------------------


def test_default_columns_and_currency(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\n001,2024-01-05,1000\n002,2024-02-07,2500.5\n")
    data = load_dataset(path)
    assert data.currency == "KRW" and data.name == "tx.csv"
    assert list(data.transactions.columns) == ["customer_id", "ts", "amount"]
    assert data.transactions["customer_id"].tolist() == ["001", "002"]
    assert data.transactions["ts"].dtype == np.dtype("datetime64[ns]")
    assert data.transactions["amount"].tolist() == [1000.0, 2500.5]
    assert load_dataset(path, currency="usd").currency == "USD"


def test_common_column_names_are_found_case_insensitively(tmp_path):
    path = write_csv(tmp_path, "CustomerID,InvoiceDate,Amount,InvoiceNo\n7,2024-01-05,10,A\n7,2024-01-05,20,B\n")
    data = load_dataset(path)
    assert data.transactions["order_id"].tolist() == ["A", "B"]
    # two invoices on one day are two orders
    assert data.panel.orders.tolist() == [[2]]


def test_korean_column_names_and_explicit_mapping(tmp_path):
    path = write_csv(tmp_path, "회원번호,주문일시,결제금액,비고\nm1,2024-03-01 12:00,\"12,300원\",x\n")
    data = load_dataset(path)
    assert data.transactions["amount"].tolist() == [12300.0]
    mapped = load_dataset(path, customer_col="비고", date_col="주문일시", amount_col="결제금액")
    assert mapped.transactions["customer_id"].tolist() == ["x"]


def test_amount_text_with_separators_and_currency_signs(tmp_path):
    path = write_csv(tmp_path, 'customer_id,ts,amount\na,2024-01-01,"₩12,300"\na,2024-01-02,"$1,234.50"\na,2024-01-03, 500 \n')
    assert load_dataset(path).transactions["amount"].tolist() == [12300.0, 1234.5, 500.0]


def test_cp949_csv(tmp_path):
    path = write_csv(tmp_path, "고객번호,날짜,금액\n가,2024-01-01,100\n", encoding="cp949")
    assert load_dataset(path).transactions["customer_id"].tolist() == ["가"]


def test_negative_amounts_are_returns_netted_and_floored(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\n"
                     "a,2024-01-03,10000\na,2024-01-20,-4000\n"  # partial return: January nets 6000
                     "a,2024-02-10,-9000\n"  # a February return of a January order: floored at 0
                     "b,2024-02-11,5000\n")
    data = load_dataset(path)
    c = data.cleaning
    assert (c.return_rows, c.return_total, c.months_floored) == (2, -13000.0, 1)
    panel = data.panel
    assert panel.spend.tolist() == [[6000.0, 0.0], [0.0, 5000.0]]
    assert panel.orders.tolist() == [[1, 0], [0, 1]]  # returns are not orders


def test_exact_duplicates_dropped_and_counted(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount,order_id\n"
                     "a,2024-01-03,100,o1\na,2024-01-03,100,o1\na,2024-01-03,100,o1\n"
                     "a,2024-01-03,100,o2\n")  # same amount and day but another order: kept
    data = load_dataset(path)
    assert data.cleaning.duplicate_rows_dropped == 2
    assert len(data.transactions) == 2 and data.panel.spend.tolist() == [[200.0]]


def test_rows_without_customer_id_dropped_and_counted(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\n,2024-01-01,5\n  ,not a date,x\na,2024-01-02,7\n")
    data = load_dataset(path)  # the dropped rows' bad date/amount are not validated
    assert data.cleaning.null_customer_rows_dropped == 2
    assert data.transactions["customer_id"].tolist() == ["a"]


def test_timezone_aware_strings_with_mixed_offsets_become_seoul_time(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\n"
                     "a,2024-01-31T20:00:00Z,1\n"  # 05:00 on 1 February in Seoul
                     "a,2024-01-31T23:30:00+09:00,2\n"
                     "a,2024-01-31 10:00:00-0500,3\n"  # 00:00 on 1 February in Seoul
                     "a,2024-01-15 08:00,4\n"  # naive: taken as shop time
                     "a,2024-01-16 09:00:00 KST,5\n")
    data = load_dataset(path)
    assert data.transactions["ts"].dt.tz is None
    assert data.transactions["ts"].astype(str).tolist() == [
        "2024-02-01 05:00:00", "2024-01-31 23:30:00", "2024-02-01 00:00:00", "2024-01-15 08:00:00",
        "2024-01-16 09:00:00"]
    assert (data.cleaning.timezone_rows_converted, data.cleaning.timezone) == (3, SHOP_TIMEZONE)
    assert data.panel.spend.tolist() == [[11.0, 4.0]]


def test_mixed_date_formats(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\na,2024-01-05,1\na,2024.03.15,1\na,20240420,1\n")
    assert load_dataset(path).transactions["ts"].dt.month.tolist() == [1, 3, 4]


def test_parquet_with_tz_aware_column_and_integer_ids(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({
        "customer_id": [17850.0, 17850.0, np.nan],
        "ts": pd.to_datetime(["2024-01-31 16:00", "2024-03-01 00:00", "2024-03-02 00:00"]).tz_localize("UTC"),
        "amount": [1.0, 2.0, 3.0],
    }).to_parquet(path)
    data = load_dataset(str(path))
    assert data.transactions["customer_id"].tolist() == ["17850", "17850"]
    assert data.transactions["ts"].astype(str).tolist() == ["2024-02-01 01:00:00", "2024-03-01 09:00:00"]
    assert data.cleaning.null_customer_rows_dropped == 1 and data.cleaning.timezone == SHOP_TIMEZONE


def test_empty_order_id_falls_back_to_the_day(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount,order_id\na,2024-01-03,1,\na,2024-01-03,2,\na,2024-01-04,3,\n")
    assert load_dataset(path).panel.orders.tolist() == [[2]]


# --- user files: validation errors --------------------------------------------------------


def test_missing_file():
    message = load_error("/no/such/file.csv")
    assert "file not found: /no/such/file.csv" in message and "cdnow" in message


def test_unknown_extension(tmp_path):
    message = load_error(write_csv(tmp_path, "a,b\n1,2\n", name="tx.xlsx"))
    assert "tx.xlsx" in message and ".xlsx" in message and ".csv or .parquet" in message


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "tx.parquet"
    path.write_bytes(b"this is not parquet")
    assert "tx.parquet: cannot read it as Parquet" in load_error(str(path))


def test_malformed_csv(tmp_path):
    message = load_error(write_csv(tmp_path, 'customer_id,ts,amount\na,2024-01-01,1\n"b,2024-01-02,2\n'))
    assert message.startswith("tx.csv: cannot read it as CSV")


@pytest.mark.parametrize("text", ["", "customer_id,ts,amount\n"])
def test_empty_data(tmp_path, text):
    message = load_error(write_csv(tmp_path, text))
    assert message.startswith("tx.csv:") and ("empty" in message or "no data rows" in message)


def test_missing_column_lists_available_columns(tmp_path):
    path = write_csv(tmp_path, "customer_id,when,amount\na,2024-01-01,1\n")
    message = load_error(path)
    assert "no date column 'ts'" in message and "customer_id, when, amount" in message
    assert "--date-col" in message
    message = load_error(path, date_col="when", amount_col="price")
    assert "no column 'price' (--amount-col)" in message and "customer_id, when, amount" in message


def test_ambiguous_common_names(tmp_path):
    message = load_error(write_csv(tmp_path, "CustomerID,user_id,ts,amount\n1,2,2024-01-01,1\n"))
    assert "CustomerID, user_id" in message and "--customer-col" in message


def test_unparseable_date_names_row_and_value(tmp_path):
    message = load_error(write_csv(tmp_path, "customer_id,ts,amount\na,2024-01-01,1\nb,2024-02-01,1\nc,31/31/2024,1\n"))
    assert message.startswith("tx.csv: column 'ts', row 3 (line 4): cannot read '31/31/2024' as a date")


def test_empty_date(tmp_path):
    message = load_error(write_csv(tmp_path, "customer_id,ts,amount\na,2024-01-01,1\nb,,1\n"))
    assert "column 'ts', row 2 (line 3): the date is empty" in message


def test_non_numeric_amount_names_row_and_value(tmp_path):
    message = load_error(write_csv(tmp_path, "customer_id,ts,amount\na,2024-01-01,1\nb,2024-01-01,12 apples\n"))
    assert "column 'amount', row 2 (line 3): '12 apples' is not a number" in message


def test_empty_amount_in_parquet_names_data_row(tmp_path):
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a", "b"], "ts": ["2024-01-01", "2024-01-02"],
                  "amount": [1.0, None]}).to_parquet(path)
    message = load_error(str(path))
    assert "tx.parquet: column 'amount', row 2: the amount is empty" in message


def test_all_customer_ids_empty(tmp_path):
    message = load_error(write_csv(tmp_path, "customer_id,ts,amount\n,2024-01-01,1\n,2024-01-02,2\n"))
    assert "column 'customer_id' has no customer ids" in message and "--customer-col" in message


def test_bad_currency(tmp_path):
    path = write_csv(tmp_path, "customer_id,ts,amount\na,2024-01-01,1\n")
    assert "--currency '원화' is not a 3-letter currency code" in load_error(path, currency="원화")


# --- amounts and columns: decimal commas, repeated headers, separators ----------------------


@pytest.mark.parametrize("value, row", [("46,30", 2), ("1.234,56", 2), ("7,5 €", 2)])
def test_decimal_comma_is_refused_not_read_as_thousands(tmp_path, value, row):
    path = write_csv(tmp_path, f'customer_id,ts,amount\na,2024-01-01,"12,300원"\nb,2024-01-02,"{value}"\n')
    message = load_error(path)
    assert f"column 'amount', row {row} (line {row + 1}): '{value}' has a decimal comma" in message
    assert "--decimal-comma" in message


def test_decimal_comma_option_reads_european_amounts(tmp_path):
    path = write_csv(tmp_path, 'customer_id,ts,amount\na,2024-01-01,"46,30"\nb,2024-01-02,"1.234,56"\n'
                     'c,2024-01-03,-5\n')
    data = load_dataset(path, decimal_comma=True)
    assert data.transactions["amount"].tolist() == [46.3, 1234.56, -5.0]


def test_thousands_separators_still_read_without_the_option(tmp_path):
    path = write_csv(tmp_path, 'customer_id,ts,amount\na,2024-01-01,"12,300원"\na,2024-01-02,"1,234,567"\n')
    assert load_dataset(path).transactions["amount"].tolist() == [12300.0, 1234567.0]


@pytest.mark.parametrize("text, name, places", [
    ("customer_id,ts,amount,amount\na,2024-01-01,5,6\n", "amount", "columns 3 and 4"),
    ("customer_id,memo,ts,amount, memo\na,x,2024-01-01,5,y\n", "memo", "columns 2 and 5"),
])
def test_repeated_header_column_is_refused(tmp_path, text, name, places):
    # pandas would rename the second copy (amount.1) and one of them would be ignored
    message = load_error(write_csv(tmp_path, text))
    assert f"tx.csv: the header repeats the column '{name}' ({places})" in message


@pytest.mark.parametrize("sep, name", [(";", "세미콜론(;)으로"), ("\t", "탭으로"), ("|", "세로 막대(|)로")])
def test_other_separators_are_detected_and_announced(tmp_path, sep, name):
    rows = [["customer_id", "ts", "amount"], ["a", "2024-01-01 10:00", "1200"], ["b", "2024-01-02", "300"]]
    path = write_csv(tmp_path, "".join(sep.join(r) + "\n" for r in rows))
    data = load_dataset(path)
    assert data.transactions["amount"].tolist() == [1200.0, 300.0]
    assert data.transactions["customer_id"].tolist() == ["a", "b"]
    assert f"참고: tx.csv는 {name} 구분된 파일로 읽었습니다." in data.notices


def test_semicolon_file_with_decimal_commas(tmp_path):
    path = write_csv(tmp_path, "customer_id;ts;amount\na;2024-01-01;46,30\nb;2024-01-02;\"1.234,56\"\n")
    assert "'46,30' has a decimal comma" in load_error(path)
    assert load_dataset(path, decimal_comma=True).transactions["amount"].tolist() == [46.3, 1234.56]


def test_a_comma_inside_quotes_does_not_make_a_comma_file(tmp_path):
    path = write_csv(tmp_path, 'customer_id;"ts, local";amount\na;2024-01-01;5\n')
    data = load_dataset(path, date_col="ts, local")
    assert data.transactions["amount"].tolist() == [5.0] and data.notices[0].startswith("참고: tx.csv는 세미콜론")


def test_a_separator_the_header_does_not_settle_is_named(tmp_path):
    message = load_error(write_csv(tmp_path, "customer_id,ts;amount;memo,x\na,2024-01-01;5;m,y\n"))
    assert "no date column 'ts'; the file looks ';'-separated (columns: customer_id, ts;amount;memo, x)" in message
