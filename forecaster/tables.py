"""Reading a user's CSV/Parquet file into a raw table of text cells, and naming its rows.

- CSV: UTF-8 (with or without BOM) or CP949 (Korean spreadsheet exports). The separator is
  read off the header line: the most frequent of ``,`` ``;`` tab ``|`` outside quotes (a
  tie keeps the comma), so a European ``;`` export is read correctly and announced.
- A header that repeats a column name is refused: pandas would silently rename the second
  copy (``amount`` -> ``amount.1``) and one of them would be ignored.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecaster.errors import UserError
from narrator.korean import josa

CSV_ENCODINGS = ("utf-8-sig", "cp949")  # Korean spreadsheet exports are often CP949
SEPARATORS = (",", ";", "\t", "|")  # comma first: it wins a tie
SEPARATOR_NAMES = {",": "쉼표(,)", ";": "세미콜론(;)", "\t": "탭", "|": "세로 막대(|)"}
_HEADER_BYTES = 1 << 16
_QUOTED = re.compile(r'"[^"]*"')


@dataclass(frozen=True)
class Where:
    """Names a place in the user's file the way the user sees it."""

    file: str
    is_csv: bool

    def row(self, position: int) -> str:
        """1-based data row (and, for CSV, the file line: the header is line 1)."""
        line = f" (line {position + 2})" if self.is_csv else ""
        return f"row {position + 1}{line}"


@dataclass(frozen=True)
class RawTable:
    table: pd.DataFrame  # every CSV cell as text; columns stripped of spaces
    where: Where
    notices: tuple[str, ...] = ()  # one-line Korean notes on how the file was read


def read_table(path: Path) -> RawTable:
    """The raw table of ``path`` (.csv, .csv.gz, .parquet, .pq); UserError otherwise."""
    if not path.is_file():
        raise UserError(
            f"file not found: {path}; give cdnow, synthetic[:N[:SEED]] or the path of an "
            f"existing .csv or .parquet file"
        )
    name = path.name.lower()
    notices: tuple[str, ...] = ()
    if name.endswith((".csv", ".csv.gz")):
        table, separator = _read_csv(path)
        if separator != ",":
            notices = (f"참고: {josa(path.name, '은/는')} "
                       f"{josa(SEPARATOR_NAMES[separator], '으로/로')} 구분된 파일로 읽었습니다.",)
    elif name.endswith((".parquet", ".pq")):
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise UserError(f"{path.name}: cannot read it as Parquet ({type(exc).__name__}); "
                            f"check the file or export it again as .parquet or .csv") from exc
        refuse_repeated_columns(path.name, [str(c) for c in table.columns])
    else:
        raise UserError(f"{path.name}: unknown file type '{path.suffix or '(none)'}'; "
                        f"give a .csv or .parquet file of transactions")
    if table.empty:
        raise UserError(f"{path.name}: no data rows; give a file with one row per transaction")
    table.columns = [str(c).strip() for c in table.columns]
    return RawTable(table.reset_index(drop=True), Where(path.name, name.endswith((".csv", ".csv.gz"))), notices)


def _read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    for encoding in CSV_ENCODINGS:
        try:
            header = _header_line(path, encoding)
            separator = detect_separator(header)
            refuse_repeated_columns(path.name, next(csv.reader([header], delimiter=separator), []))
            table = pd.read_csv(path, dtype=str, encoding=encoding, sep=separator, skipinitialspace=True)
            return table, separator
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise UserError(f"{path.name}: the file is empty; give a CSV with a header row "
                            f"and one row per transaction") from None
        except (pd.errors.ParserError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[-1]
            raise UserError(f"{path.name}: cannot read it as CSV ({detail}); check the "
                            f"quoting and that every row has the header's columns") from None
    raise UserError(f"{path.name}: text is neither UTF-8 nor CP949; save it as UTF-8 CSV")


def _header_line(path: Path, encoding: str) -> str:
    """The first line of the file (UnicodeDecodeError when ``encoding`` does not fit)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(_HEADER_BYTES)
    # a multi-byte character may be cut at the end of the sample: decode whole lines only
    first = head.split(b"\n", 1)[0]
    return first.decode(encoding).rstrip("\r")


def detect_separator(header: str) -> str:
    """The separator the header line uses most (outside quotes); comma when none or a tie."""
    bare = _QUOTED.sub("", header)
    counts = {sep: bare.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # max keeps the first on a tie
    return best if counts[best] > counts[","] else ","


def refuse_repeated_columns(file: str, names: list[str]) -> None:
    stripped = [str(n).strip() for n in names]
    repeated = [n for n, count in Counter(stripped).items() if count > 1 and n]
    if repeated:
        name = repeated[0]
        places = [str(i + 1) for i, n in enumerate(stripped) if n == name]
        raise UserError(f"{file}: the header repeats the column '{name}' (columns {' and '.join(places)}); "
                        f"rename or remove one copy so it is clear which one to use")
