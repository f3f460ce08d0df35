"""The chunked reader's entry points (:mod:`forecaster.ingest`): :func:`load_chunked`, the
whole data's Dataset, and :class:`ChunkedScan`, a scanned source whose spill files are
reduced one at a time (:mod:`forecaster.batch_partitioned`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forecaster.coverage import Coverage
from forecaster.ingest import Roles, ScanTotals, partitions, resolve_roles, scan
from forecaster.ingest_reduce import Reduced, _reduce_exact, check_dates, reduce_file, reduced_dataset
from forecaster.ingest_source import Source, open_source
from forecaster.ingest_spill import Spill

if TYPE_CHECKING:
    from forecaster.datasets import Dataset, _MonthOptions


@dataclass
class ChunkedScan:
    """A source scanned and spilled (pass 1 and the whole data's date rules), its spill
    files kept for reductions: all at once (:func:`load_chunked`) or one at a time
    (:mod:`forecaster.batch_partitioned`). A context manager that removes the spill files."""

    source: Source
    roles: Roles
    totals: ScanTotals
    spill: Spill
    month_range: tuple[int, int]
    months: "_MonthOptions"
    currency: str

    @classmethod
    def open(cls, path: Path, *, customer_col: str | None, date_col: str | None, amount_col: str | None,
             order_col: str | None, currency: str, date_format: str | None, decimal_comma: bool,
             months: "_MonthOptions", chunk_rows: int, spill_dir: Path | None = None) -> "ChunkedScan":
        source = open_source(path)
        roles = resolve_roles(source, customer_col, date_col, amount_col, order_col)
        spill = Spill(partitions(source.rows, chunk_rows), spill_dir)
        try:
            totals = scan(source, roles, spill, chunk_rows=chunk_rows, date_format=date_format,
                          decimal_comma=decimal_comma, date_range=months.date_range, data_end=months.data_end)
            spill.close()
            range_text = months.date_range.text if months.date_range else None
            month_range = check_dates(source, roles, totals, spill, range_text, months.data_end, currency)
        except BaseException:
            spill.close()
            spill.remove()
            raise
        return cls(source, roles, totals, spill, month_range, months, currency)

    def __enter__(self) -> "ChunkedScan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.spill.close()
        self.spill.remove()

    def whole(self) -> "Dataset":
        """Every spill file reduced at once: the Dataset :func:`load_chunked` gives."""
        return self.dataset(_reduce_exact(self.spill, self.month_range, self.currency, self.totals))

    def reduce_file(self, p: int, sorted_keys: tuple[bool, bool]) -> Reduced:
        return reduce_file(self.spill, p, self.month_range, self.currency, sorted_keys)

    def dataset(self, out: Reduced, judged: Coverage | None = None) -> "Dataset":
        """The Dataset of ``out``: the whole data's, or with ``judged`` (the whole data's
        coverage) one spill file's customers."""
        return reduced_dataset(self.source, self.roles, self.totals, out, self.month_range, self.months,
                               self.currency, judged)


def load_chunked(path: Path, *, customer_col: str | None, date_col: str | None, amount_col: str | None,
                 order_col: str | None, currency: str, date_format: str | None, decimal_comma: bool,
                 months: "_MonthOptions", chunk_rows: int, spill_dir: Path | None = None) -> "Dataset":
    """A Parquet folder, Parquet file or CSV file read in chunks (module doc of
    :mod:`forecaster.ingest`) into the Dataset the in-memory reader would give."""
    with ChunkedScan.open(path, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                          order_col=order_col, currency=currency, date_format=date_format,
                          decimal_comma=decimal_comma, months=months, chunk_rows=chunk_rows,
                          spill_dir=spill_dir) as chunked:
        return chunked.whole()


def open_scan(src: str, *, customer_col: str | None = None, date_col: str | None = None,
              amount_col: str | None = None, order_col: str | None = None, currency: str | None = None,
              date_format: str | None = None, decimal_comma: bool = False, date_range: str | None = None,
              data_end: str | None = None, keep_partial_month: bool = False,
              chunk_rows: int | None = None) -> ChunkedScan | None:
    """The source ``src`` (as ``load_dataset`` takes it) scanned into spill files, or None
    when it is not read in chunks (the built-in data, a file small enough to read whole)."""
    from forecaster.datasets import USER_FILE_CURRENCY, check_currency, month_options, reads_in_chunks
    from forecaster.ingest import DEFAULT_CHUNK_ROWS, check_chunk_rows

    kind = src.strip().lower()
    path = Path(src.strip())
    if kind == "cdnow" or kind.split(":")[0] == "synthetic" or not reads_in_chunks(path, chunk_rows):
        return None
    return ChunkedScan.open(path, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                            order_col=order_col, currency=check_currency(currency or USER_FILE_CURRENCY),
                            date_format=date_format, decimal_comma=decimal_comma,
                            months=month_options(date_range, data_end, keep_partial_month),
                            chunk_rows=check_chunk_rows(DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows))
