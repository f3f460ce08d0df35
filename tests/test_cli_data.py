"""``forecaster data`` through the real entry point ``forecaster.cli.main``: the figures it
prints for CDNOW (they must match the data README), synthetic data and a user file, and
one clear stderr line with exit status 2 for every bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import clitools
import pytest



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
