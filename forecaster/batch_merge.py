"""Pass 3 of the batch made partition by partition (:mod:`forecaster.batch_partitioned`,
:mod:`forecaster.dask_batch`): the parts of the work folder, each in id order, merged into
one file in id order with the top-20% flag, which ranks every forecast customer.

The parts are read a row group at a time and put into id order in blocks of
:data:`MERGE_ROWS` (the ids of all parts sorted once: 12 bytes a customer); the flag's
cut-off comes from every part's purchase probabilities (:func:`forecaster.top_share.top_cutoff`;
the customers tied at the cut-off chosen by the same hash rule as the whole-panel batch);
the file is written to a temporary sibling renamed over ``--out``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forecaster import destination
from forecaster.batch import UNFORECAST, canonical, check_output, flag_top, status_tally
from forecaster.batch_stream import PART_ROW_GROUP, WorkFolder, write_csv, write_parquet
from forecaster.errors import UserError
from forecaster.top_share import tied_chosen, top_cutoff

MERGE_ROWS = 1 << 16  # output rows put into id order at a time (a block is copied a few times)


def forecast_mask(frame: pd.DataFrame) -> pd.Series:
    """Which rows of ``frame`` have a forecast."""
    return ~frame["status"].isin(UNFORECAST)


def write_merged(work: WorkFolder, state: dict, out: Path, force: bool, acquired: int) -> Counter:
    """Every part of ``work`` merged into ``out`` (module doc), the work folder removed; the
    status counts. ``acquired``: how many customers the parts must forecast."""
    top = TopRule.of_parts(work, acquired)
    check_output(out, force)  # again: the file may have appeared during the run
    if out.suffix.lower() == ".csv":
        destination.write_file(out, lambda tmp: write_csv(merged(work, top), tmp))
    else:
        destination.write_file(out, lambda tmp: write_parquet(merged(work, top), tmp, top.schema))
    work.remove()
    return status_tally(done["status"] for done in state["done"].values())


@dataclass(frozen=True)
class TopRule:
    """The top-20% flag of the whole output: the cut-off purchase probability and the ids of
    the customers at exactly that probability who are flagged; ``schema``: the output's
    columns, from a part with forecast rows."""

    cutoff: float | None
    chosen: np.ndarray  # sorted ids
    schema: pa.Schema

    @classmethod
    def of_parts(cls, work: WorkFolder, acquired: int) -> "TopRule":
        scores, schema = [], None
        for k in range(work.chunks):
            part_schema = pq.read_schema(work.part(k))
            if "purchase_prob" not in part_schema.names:  # no forecast customer in that spill file
                continue
            schema = schema or part_schema
            table = pq.read_table(work.part(k), columns=["status", "purchase_prob"])
            status = table.column("status").to_numpy(zero_copy_only=False)
            scores.append(table.column("purchase_prob").to_numpy()[~np.isin(status, UNFORECAST)])
        all_scores = np.concatenate(scores) if scores else np.zeros(0)
        if len(all_scores) != acquired or schema is None:
            raise UserError(f"작업 폴더 {work.folder}의 중간 결과가 이 실행과 맞지 않습니다; 폴더를 지우고 다시 실행하세요")
        cutoff, slots = top_cutoff(all_scores)
        tied = [] if cutoff is None else [_tied_ids(work.part(k), cutoff) for k in range(work.chunks)]
        ids = np.concatenate(tied) if tied else np.array([], dtype=object)
        return cls(cutoff, np.sort(ids[tied_chosen(ids, slots)]), schema)

    def flags(self, frame: pd.DataFrame) -> np.ndarray:
        """The flag of each forecast row of ``frame``."""
        rows = frame[forecast_mask(frame).to_numpy()]
        if self.cutoff is None:
            return np.zeros(len(rows), dtype=bool)
        prob = rows["purchase_prob"].to_numpy()
        return (prob > self.cutoff) | ((prob == self.cutoff) & np.isin(rows["customer_id"].to_numpy(), self.chosen))


def _tied_ids(part: Path, cutoff: float) -> np.ndarray:
    if "purchase_prob" not in pq.read_schema(part).names:
        return np.array([], dtype=object)
    frame = pd.read_parquet(part, columns=["customer_id", "status", "purchase_prob"])
    at = forecast_mask(frame).to_numpy() & (frame["purchase_prob"].to_numpy() == cutoff)
    return frame["customer_id"].to_numpy()[at].astype(object)


class _PartReader:
    """A part's rows in order, a row group at a time."""

    def __init__(self, path: Path):
        self.batches = pq.ParquetFile(path).iter_batches(batch_size=PART_ROW_GROUP)
        self.buffer, self.at = pd.DataFrame(), 0

    def take(self, n: int) -> list[pd.DataFrame]:
        pieces = []
        while n:
            if self.at == len(self.buffer):
                self.buffer, self.at = next(self.batches).to_pandas(), 0
            k = min(n, len(self.buffer) - self.at)
            pieces.append(self.buffer.iloc[self.at:self.at + k])
            self.at, n = self.at + k, n - k
        return pieces


def merged(work: WorkFolder, top: TopRule) -> Iterator[pd.DataFrame]:
    """Pass 3: every part's rows in id order, flagged, MERGE_ROWS at a time (module doc)."""
    ids = [pq.read_table(work.part(k), columns=["customer_id"]).column("customer_id") for k in range(work.chunks)]
    sizes = np.array([len(c) for c in ids])
    every = pa.chunked_array([c.cast(pa.large_string()) for c in ids if len(c)], type=pa.large_string())
    order = pc.sort_indices(every).to_numpy()  # UTF-8 byte order: the whole-panel batch's id order
    del every
    part_of = np.repeat(np.arange(work.chunks, dtype=np.int32), sizes)[order]
    del order
    readers = {k: _PartReader(work.part(k)) for k in np.flatnonzero(sizes)}
    columns = top.schema.names
    for lo in range(0, len(part_of), MERGE_ROWS):
        seq = part_of[lo:lo + MERGE_ROWS]
        by_part = np.argsort(seq, kind="stable")  # the block's rows grouped by part, each part's in order
        counts = np.bincount(seq, minlength=work.chunks)
        pieces = [piece for k in np.flatnonzero(counts) for piece in readers[k].take(int(counts[k]))]
        frame = pd.concat(pieces, ignore_index=True).reindex(columns=columns)
        placed = np.empty(len(seq), dtype=np.int64)
        placed[by_part] = np.arange(len(seq))
        frame = canonical(frame.take(placed).reset_index(drop=True))
        yield flag_top(frame, top.flags(frame))
