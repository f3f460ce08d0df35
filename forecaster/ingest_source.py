"""The chunks of a large transaction file or of a folder of Parquet files, for
:mod:`forecaster.ingest`.

A :class:`Source` yields the file's rows as pandas frames of at most ``chunk_rows`` rows,
only the columns asked for, each frame indexed by the rows' positions in the whole data
(0-based, files of a folder in name order), so that every error names the row the user
sees, as the in-memory reader does. Parquet goes through ``pyarrow.dataset`` (the column
projection and the batch size are pushed into the scan); CSV through pandas' chunked
reader with exactly the options :func:`forecaster.tables.read_table` uses, so the cells are
the same text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from forecaster.errors import UserError
from forecaster.tables import (CSV_ENCODINGS, SEPARATOR_NAMES, Where, _header_line, detect_separator,
                               refuse_repeated_columns)
from narrator.korean import josa

PARQUET_SUFFIXES = (".parquet", ".pq")
_PANDAS_INDEX = "__index_level_"  # a frame's index stored by to_parquet: not a column of the data


@dataclass(frozen=True)
class Source:
    path: Path
    where: Where
    columns: list[str]  # stripped names, as read_table gives them
    raw_names: list[str]  # the names in the file
    rows: int  # exact for Parquet, an estimate for CSV
    notices: tuple[str, ...] = ()
    encoding: str = ""
    separator: str = ","
    dataset: pads.Dataset | None = None

    @property
    def is_csv(self) -> bool:
        return self.dataset is None

    def batches(self, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The rows in order, ``chunk_rows`` at most per frame, only ``columns``."""
        positions = [self.columns.index(c) for c in columns]
        frames = (self._parquet([self.raw_names[i] for i in positions], chunk_rows) if self.dataset is not None
                  else self._csv(positions, chunk_rows))
        offset = 0
        for frame in frames:
            frame.columns = columns
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            if len(frame):
                yield frame

    def column_type(self, column: str) -> pa.DataType:
        """The Arrow type of a Parquet column."""
        return self.dataset.schema.field(self.raw_names[self.columns.index(column)]).type

    def cells(self, column: str, rows: list[int]) -> list[object]:
        """The raw cells of ``column`` at file ``rows`` (error messages only: reads again)."""
        wanted = np.asarray(sorted(set(rows)), dtype=np.int64)
        found: dict[int, object] = {}
        for frame in self.batches([column], 1 << 20):
            hit = wanted[(wanted >= frame.index[0]) & (wanted <= frame.index[-1])]
            found.update(zip(hit.tolist(), frame[column].loc[hit].tolist()))
        return [found[r] for r in rows]

    def _parquet(self, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
        # one batch and one file read ahead: Arrow's defaults (16 batches, 4 files) hold
        # dozens of chunks at once, which would make the chunk size no bound on memory
        for batch in self.dataset.to_batches(columns=columns, batch_size=chunk_rows, batch_readahead=1,
                                             fragment_readahead=1):
            yield batch.to_pandas()

    def _csv(self, positions: list[int], chunk_rows: int) -> Iterator[pd.DataFrame]:
        # by position: pandas' own header names may differ from the stripped ones
        with pd.read_csv(self.path, dtype=str, encoding=self.encoding, sep=self.separator, skipinitialspace=True,
                         usecols=positions, chunksize=chunk_rows) as reader:
            for frame in reader:
                yield frame.iloc[:, np.argsort(np.argsort(positions))]


def open_source(path: Path) -> Source:
    """A folder of Parquet files, a Parquet file or a CSV file; UserError otherwise."""
    name = path.name.lower()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES))
        if not files:
            raise UserError(f"{path.name}: the folder holds no .parquet file; give a folder of Parquet files "
                            f"or one .csv / .parquet file")
        return _parquet_source(path, [str(f) for f in files])
    if not path.is_file():
        raise UserError(f"file not found: {path}; give cdnow, synthetic[:N[:SEED]] or the path of an "
                        f"existing .csv or .parquet file, or a folder of Parquet files")
    if name.endswith(PARQUET_SUFFIXES):
        return _parquet_source(path, [str(path)])
    if name.endswith(".csv"):
        return _csv_source(path)
    raise UserError(f"{path.name}: the chunked reader reads .parquet files, folders of them and plain .csv "
                    f"files, not '{path.suffix or '(none)'}'; give one of those")


def _parquet_source(path: Path, files: list[str]) -> Source:
    try:
        dataset = pads.dataset(files, format="parquet")
        rows = dataset.count_rows()
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path.name}: cannot read it as Parquet ({type(exc).__name__}); "
                        f"check the files or export them again") from exc
    raw = [n for n in dataset.schema.names if not n.startswith(_PANDAS_INDEX)]
    refuse_repeated_columns(path.name, raw)
    if rows == 0:
        raise UserError(f"{path.name}: no data rows; give a file with one row per transaction")
    return Source(path, Where(path.name, is_csv=False), [n.strip() for n in raw], raw, rows, dataset=dataset)


def _csv_source(path: Path) -> Source:
    for encoding in CSV_ENCODINGS:
        try:
            header = _header_line(path, encoding)
        except UnicodeDecodeError:
            continue
        separator = detect_separator(header)
        raw = next(csv.reader([header], delimiter=separator), [])
        refuse_repeated_columns(path.name, raw)
        if not [n for n in raw if n.strip()]:
            raise UserError(f"{path.name}: the file is empty; give a CSV with a header row "
                            f"and one row per transaction")
        notices = () if separator == "," else (
            f"참고: {josa(path.name, '은/는')} {josa(SEPARATOR_NAMES[separator], '으로/로')} 구분된 파일로 읽었습니다.",)
        rows = max(1, path.stat().st_size // 40)  # sizes the spill's partitions only
        return Source(path, Where(path.name, is_csv=True), [n.strip() for n in raw], raw, rows, notices,
                      encoding, separator)
    raise UserError(f"{path.name}: text is neither UTF-8 nor CP949; save it as UTF-8 CSV")
