"""``forecaster data`` through the real entry point ``forecaster.cli.main``: the figures it
prints for CDNOW (they must match the data README), synthetic data and a user file, a
partial last month and a ';' file announced on stderr, the date options on every verb, and
one clear stderr line with exit status 2 for every bad input."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import clitools
import pytest

from forecaster.verbs.options import DateOptions
from forecaster.verbs.options import with_options as with_date_options



def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", "200")  # rich: no wrapping inside the figures
    return clitools.run_cli(args, monkeypatch, capsys)


def test_cdnow_figures_match_the_readme(monkeypatch, capsys):
    code, out, err = run_cli(["data"], monkeypatch, capsys)
    assert code == 0 and err == ""
    assert "23,570명" in out and "69,659행" in out
    assert "1997-01-01 ~ 1998-06-30" in out and "18개월 (1997-01 ~ 1998-06)" in out
    # README: 33-41% of all 23,570 customers buy in Jan-Mar 1997, 6-12% from April 1997
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ 199")}
    assert "33.2%" in lines["1997-01"] and "100.0%" in lines["1997-01"]  # of acquired so far
    assert "40.8%" in lines["1997-02"] and "40.3%" in lines["1997-03"]
    assert "12.0%" in lines["1997-04"] and "6.1%" in lines["1998-04"]
    # README quantiles $15.0 / $29.3 / $53.3 / $91.4
    assert "15달러 / 29.3달러 / 53.3달러 / 91.4달러 (25/50/75/90%)" in out
    assert "동일한 행 255개는 원본 그대로 유지" in out


def test_synthetic_data(monkeypatch, capsys):
    code, out, _ = run_cli(["data", "--data", "synthetic:2000"], monkeypatch, capsys)
    assert code == 0
    assert "데이터 synthetic:2000:0 (KRW)" in out and "2,000명" in out
    assert "36개월 (2022-01 ~ 2024-12)" in out and "만 원" in out


def test_user_file_cleaning_is_reported(tmp_path, monkeypatch, capsys):
    path = tmp_path / "shop.csv"
    path.write_text("고객번호,주문일시,결제금액\n"
                    "a,2024-01-03,10000\na,2024-01-03,10000\n"
                    "a,2024-02-10,-12000\n"
                    ",2024-02-11,5000\n"
                    "b,2024-01-31T20:00:00Z,7000\n", encoding="utf-8")
    code, out, err = run_cli(["data", "--data", str(path)], monkeypatch, capsys)
    assert code == 0, err
    assert "데이터 shop.csv (KRW)" in out
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines()
            if line.count("│") == 3}
    assert rows["중복 행 제거 (duplicate rows dropped)"] == "1"
    assert rows["고객 ID 없는 행 제거 (rows without customer id)"] == "1"
    assert rows["읽은 행 (rows read)"] == "5"
    assert "1행, 합계 -1.2만 원" in out and "0으로 처리한 고객-월 1개" in out
    assert "1행을 Asia/Seoul 기준으로 변환" in out


def parquet_without_amount(tmp_path: Path) -> str:
    path = tmp_path / "tx.parquet"
    pd.DataFrame({"customer_id": ["a"], "ts": ["2024-01-01"], "price": [1.0]}).to_parquet(path)
    return str(path)


CSV = "customer_id,ts,amount\n"
ERROR_CASES = {
    "missing file": (lambda d: str(d / "nope.csv"), [], "file not found"),
    "unknown extension": (lambda d: write(d, "tx.xlsx", CSV), [], "unknown file type '.xlsx'"),
    "unreadable parquet": (lambda d: write(d, "tx.parquet", "garbage"), [], "cannot read it as Parquet"),
    "empty file": (lambda d: write(d, "tx.csv", ""), [], "tx.csv: the file is empty"),
    "header only": (lambda d: write(d, "tx.csv", CSV), [], "tx.csv: no data rows"),
    "missing column": (parquet_without_amount, [], "no amount column 'amount'; available columns: customer_id, ts, price"),
    "mapped column missing": (lambda d: write(d, "tx.csv", CSV + "a,2024-01-01,1\n"),
                              ["--customer-col", "member"], "no column 'member' (--customer-col)"),
    "bad date": (lambda d: write(d, "tx.csv", CSV + "a,2024-01-01,1\na,yesterday,1\n"), [],
                 "column 'ts', row 2 (line 3): cannot read 'yesterday' as a date"),
    "bad amount": (lambda d: write(d, "tx.csv", CSV + "a,2024-01-01,free\n"), [],
                   "column 'amount', row 1 (line 2): 'free' is not a number"),
    "no purchases": (lambda d: write(d, "tx.csv", CSV + "a,2024-01-01,-5\nb,2024-01-02,0\n"), [],
                     "column 'amount' has no purchase (every amount is zero or negative)"),
    "no customer ids": (lambda d: write(d, "tx.csv", CSV + ",2024-01-01,1\n"), [],
                        "column 'customer_id' has no customer ids"),
    "bad currency": (lambda d: write(d, "tx.csv", CSV + "a,2024-01-01,1\n"), ["--currency", "₩"],
                     "is not a 3-letter currency code"),
    "column option with cdnow": (lambda d: "cdnow", ["--amount-col", "x"], "only apply to a CSV/Parquet file"),
    "bad synthetic spec": (lambda d: "synthetic:many", [], "'synthetic:many' is not a synthetic data spec"),
}


def write(directory: Path, name: str, text: str) -> str:
    (directory / name).write_text(text, encoding="utf-8")
    return str(directory / name)


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys):
    make_src, extra, expected = ERROR_CASES[case]
    code, out, err = run_cli(["data", "--data", make_src(tmp_path), *extra], monkeypatch, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("오류: ") and "Traceback" not in err
    assert expected in err


# --- partial months, dates, amounts and separators through the command line ---------------


def busy_shop_cut_off(directory: Path, sep: str = ",") -> str:
    """Ten orders a day from January to March 2023, then an export cut at 04:12 on 1 April."""
    ts = pd.date_range("2023-01-01 09:00", "2023-03-31 21:00", freq="72min").append(
        pd.DatetimeIndex(["2023-04-01 01:30", "2023-04-01 04:12"]))
    lines = [sep.join(["customer_id", "ts", "amount"])] + [
        sep.join([f"c{i % 40}", f"{t:%Y-%m-%d %H:%M}", str(10_000 + i)]) for i, t in enumerate(ts)]
    path = directory / "shop.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def overview_rows(out: str) -> dict[str, str]:
    return {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines()
            if line.count("│") == 3}


def test_data_announces_and_shows_a_dropped_partial_month(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["data", "--data", busy_shop_cut_off(tmp_path)], monkeypatch, capsys)
    assert code == 0
    assert err.count("\n") == 1 and err.startswith("참고: 마지막 달 2023년 4월은 4월 1일 04:12까지만 기록되어 있어")
    rows = overview_rows(out)
    assert rows["개월 (months)"] == "3개월 (2023-01 ~ 2023-03)"
    assert rows["기간 (date range)"] == "2023-01-01 ~ 2023-04-01"
    assert rows["첫 달 기록 (first month coverage)"] == "2023년 1월: 1월 1일 09:00부터 (98.8%), 온전한 달"
    assert rows["마지막 달 기록 (last month coverage)"] == (
        "2023년 4월: 4월 1일 04:12까지 (0.6%), 불완전 → 패널에서 제외 (거래 2행, 구매 고객 2명)")


def test_keep_partial_month_through_the_command_line(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["data", "--data", busy_shop_cut_off(tmp_path), "--keep-partial-month"],
                             monkeypatch, capsys)
    assert code == 0 and "--keep-partial-month에 따라 온전한 달로 보고 포함했습니다" in err
    assert overview_rows(out)["개월 (months)"] == "4개월 (2023-01 ~ 2023-04)"


def test_a_semicolon_file_is_read_and_announced(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["data", "--data", busy_shop_cut_off(tmp_path, ";"), "--data-end", "2023-04-30"],
                             monkeypatch, capsys)
    assert code == 0 and err == "참고: shop.csv는 세미콜론(;)으로 구분된 파일로 읽었습니다.\n"
    assert overview_rows(out)["개월 (months)"] == "4개월 (2023-01 ~ 2023-04)"  # --data-end: April is complete


VERBS = ["data", "narrate", "train", "batch", "evaluate", "explain"]
DATE_FLAGS = ["--keep-partial-month", "--data-end", "--date-format", "--date-range", "--decimal-comma"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_takes_the_date_options(verb, monkeypatch, capsys):
    code, out, _ = run_cli([verb, "--help"], monkeypatch, capsys)
    assert code == 0 and all(flag in out for flag in DATE_FLAGS)


def test_with_date_options_adds_the_options_and_bundles_them():
    def verb(out: str, limit: int = 3, date_options: DateOptions = DateOptions()) -> tuple:
        return out, limit, date_options

    command = with_date_options(verb)
    assert list(inspect.signature(command).parameters) == ["out", "limit", "keep_partial_month", "data_end",
                                                           "date_format", "date_range", "decimal_comma"]
    assert command("x", data_end="2023-06-30", keep_partial_month=True) == (
        "x", 3, DateOptions(keep_partial_month=True, data_end="2023-06-30"))


def test_narrate_passes_the_date_options_through(tmp_path, monkeypatch, capsys):
    shop = busy_shop_cut_off(tmp_path)
    code, out, err = run_cli(["narrate", "c1", "--anchor", "2023-04", "--data", shop], monkeypatch, capsys)
    assert code == 0 and "2023년 3월" in out and "불완전한 달로 보고 패널에서 제외했습니다" in err
    code, _, err = run_cli(["narrate", "c1", "--anchor", "2023-05", "--data", shop], monkeypatch, capsys)
    assert code == 2 and "anchor 2023-05 is outside the data" in err  # April left the panel
    code, _, err = run_cli(["narrate", "c1", "--anchor", "2023-05", "--data", shop, "--keep-partial-month"],
                           monkeypatch, capsys)
    assert code == 0


DATE_AND_AMOUNT_ERRORS = {
    "day/month orders mixed": (lambda d: write(d, "tx.csv", CSV + "a,13.06.2023,1\nb,06.14.2023,1\n"), [],
                               "column 'ts' mixes day/month orders"),
    "day/month order unknown": (lambda d: write(d, "tx.csv", CSV + "a,04.06.2023,1\n"), [],
                                "pass --date-format %d.%m.%Y (day first)"),
    "date format mismatch": (lambda d: write(d, "tx.csv", CSV + "a,2023-06-04,1\n"), ["--date-format", "%d.%m.%Y"],
                             "'2023-06-04' does not match --date-format %d.%m.%Y"),
    "epoch integers": (lambda d: epoch_parquet(d), [], "column 'ts' holds whole numbers, not dates"),
    "outlying date": (lambda d: write(d, "tx.csv", CSV + "".join(f"c{k % 9},2023-05-{k % 28 + 1:02d},{k}\n"
                                                             for k in range(150)) + "b,2099-12-31,1\n"), [],
                      "1 row(s) lie far outside the other dates (row 151 (line 152) '2099-12-31')"),
    "bad date range": (lambda d: "cdnow", ["--date-range", "1998"], "--date-range '1998' is not A..B"),
    "bad data end": (lambda d: "cdnow", ["--data-end", "June"], "--data-end 'June' is not a date"),
    "rows after data end": (lambda d: "cdnow", ["--data-end", "1998-06-15"], "is after --data-end 1998-06-15"),
    "date format with cdnow": (lambda d: "cdnow", ["--date-format", "%Y"], "--date-format only apply to a CSV"),
    "decimal comma": (lambda d: write(d, "tx.csv", CSV + 'a,2023-06-04,"46,30"\n'), [],
                      "'46,30' has a decimal comma (it is not 4630)"),
    "repeated column": (lambda d: write(d, "tx.csv", "customer_id,ts,amount,amount\na,2023-06-04,1,2\n"), [],
                        "the header repeats the column 'amount' (columns 3 and 4)"),
}


def epoch_parquet(directory: Path) -> str:
    path = directory / "tx.parquet"
    pd.DataFrame({"customer_id": ["a"], "ts": [1_688_169_600], "amount": [1.0]}).to_parquet(path)
    return str(path)


@pytest.mark.parametrize("case", list(DATE_AND_AMOUNT_ERRORS))
def test_date_and_amount_errors_are_one_line(case, tmp_path, monkeypatch, capsys):
    make_src, extra, expected = DATE_AND_AMOUNT_ERRORS[case]
    code, out, err = run_cli(["data", "--data", make_src(tmp_path), *extra], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("오류: ") and "Traceback" not in err
    assert expected in err
