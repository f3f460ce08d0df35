"""`forecaster batch` over a shop read in chunks, one spill file of customers at a time.

The whole-panel batch (:mod:`forecaster.batch_stream`) holds every customer's panel and
purchase days: about 1.5 GB per million customers, 16 GB for 10 million. Here the chunked
reader's spill files (:class:`~forecaster.ingest_chunked.ChunkedScan`: all of a customer's
rows in one file) are reduced one at a time, twice:

1. **summaries**: each file's panel gives the whole data's month totals (the coverage rule
   reads nothing else: :class:`~forecaster.coverage.MonthTotals`) and, cut at the anchor
   (without ``--anchor``, at both months the default anchor can be before the coverage is
   known), the population pieces as summaries that add up exactly over files
   (:class:`models.season.SeasonStats`, the forecaster's
   :meth:`~structurer.protocol.Forecaster.population`), and a digest of its data;
2. **scoring**: each file's customers go through that file's
   :class:`~forecaster.batch.BatchJob`, given the whole cut's pieces
   (:class:`~forecaster.batch.WholeCut`), and are written, in id order, as one part of the
   work folder (:class:`~forecaster.batch_stream.WorkFolder`: a killed run, rerun with the
   same arguments, goes on from the first file not finished);
3. **merge**: the parts are read a row group at a time and put into id order in blocks, the
   top-20% flag set from every part's purchase probabilities
   (:func:`forecaster.top_share.top_cutoff`), into a temporary file renamed over ``--out``.

The rows are the whole-panel batch's, bit for bit (``tests/test_batch_partitioned.py``).
Memory: one spill file's customers, the positive monthly spends of all customers (8 bytes
each, for the forecaster's mean and 80th percentile) and, in the merge, one row group per
part plus 12 bytes per customer. An LLM provider is not run this way: its run approves and
answers every prompt before the first row (:meth:`TrainedModel.write_predictions`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forecaster import artifact, destination, progress
from forecaster.batch import (UNFORECAST, BatchJob, WholeCut, canonical, check_output, chunk_bounds, flag_top,
                              status_tally)
from forecaster.columns import refuse_no_purchase
from forecaster.batch_stream import (PART_ROW_GROUP, WorkFolder, model_digest, resumed_state, update_digest,
                                     write_csv, write_parquet)
from forecaster.coverage import Coverage, MonthTotals, TimeSummary, judge_summary
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.ingest_chunked import ChunkedScan
from forecaster.ingest_reduce import Ingested, assemble_ingested, sorted_actual, sorted_guess
from forecaster.providers import Provider
from forecaster.top_share import tied_chosen, top_cutoff
from models.repeat import RepeatContext, RepeatSummary
from models.season import SeasonContext, SeasonStats
from narrator.panel import MonthlyPanel
from structurer.protocol import Population

MERGE_ROWS = 1 << 16  # output rows put into id order at a time (a block is copied a few times)


@dataclass
class Summary:
    """What pass 1 adds up over the spill files (module doc)."""

    anchors: list[pd.Period]
    digest: "hashlib._Hash"
    totals: MonthTotals | None = None
    customers: int = 0
    last_rows: int = 0
    outside_range: int = 0
    positive: bool = False
    kept_breaks: list[int] = field(default_factory=lambda: [0, 0])
    acquired: dict[pd.Period, int] = field(default_factory=dict)
    season: dict[pd.Period, SeasonStats] = field(default_factory=dict)
    repeat: dict[pd.Period, RepeatSummary] = field(default_factory=dict)
    population: dict[pd.Period, Population] = field(default_factory=dict)

    def add(self, ingested: Ingested, days: list[pa.Table], provider: Provider) -> None:
        """One spill file's customers."""
        panel = ingested.full_panel
        totals = MonthTotals.of(panel)
        self.totals = totals if self.totals is None else self.totals + totals
        self.customers += len(panel.customer_ids)
        self.last_rows += int(ingested.last_month_rows.sum())
        for anchor in self.anchors:
            if panel.first_month < anchor <= panel.last_month + 1:  # else refused once the coverage is known
                cut = panel.before(anchor)
                self._add(anchor, len(cut.customer_ids), SeasonStats.of(cut), RepeatSummary.of(cut),
                          provider.population(cut))
        self.digest.update(pd.util.hash_array(np.asarray(panel.customer_ids, dtype=object)).tobytes())
        update_digest(self.digest, (panel.spend, panel.orders, panel.first_idx))
        update_digest(self.digest, (t.column(c).to_numpy().view(np.int64) if c == "ts" else t.column(c).to_numpy()
                                    for t in days for c in ("code", "ts", "amount")))

    def release(self) -> None:
        """Drop the summaries once the population pieces are fitted from them."""
        for pieces in (self.season, self.repeat, self.population):
            pieces.clear()

    def _add(self, anchor: pd.Period, acquired: int, season: SeasonStats, repeat: RepeatSummary,
             population: Population) -> None:
        if anchor not in self.season:
            self.acquired[anchor], self.season[anchor], self.population[anchor] = acquired, season, population
            self.repeat[anchor] = repeat
            return
        self.acquired[anchor] += acquired
        self.season[anchor] = self.season[anchor] + season
        self.repeat[anchor] = self.repeat[anchor] + repeat
        self.population[anchor] = self.population[anchor] + population


def summarise(chunked: ChunkedScan, provider: Provider, anchors: list[pd.Period], keys: tuple[bool, bool],
              digest: "hashlib._Hash") -> Summary:
    """Pass 1 over every spill file (module doc)."""
    summary = Summary(anchors, digest)
    with progress.counted("고객 묶음 요약 중", chunked.spill.parts) as advance:
        for p in range(chunked.spill.parts):
            out = chunked.reduce_file(p, keys)
            summary.kept_breaks = [a + b for a, b in zip(summary.kept_breaks, out.kept_breaks)]
            summary.positive |= out.positive
            summary.outside_range += out.outside_range
            if out.pieces:
                summary.add(assemble_ingested(out, chunked.totals, chunked.month_range, chunked.currency), out.days,
                            provider)
            advance(p + 1)
    return summary


def judged(chunked: ChunkedScan, summary: Summary) -> Coverage:
    """The whole data's coverage (:func:`forecaster.coverage.judge_summary`)."""
    totals = chunked.totals
    times = TimeSummary(pd.Timestamp(totals.first_ts), pd.Timestamp(totals.last_ts), totals.date_only,
                        summary.last_rows)
    return judge_summary(summary.totals, times, data_end=chunked.months.data_end,
                         keep_partial=chunked.months.keep_partial_month)


def _notices(chunked: ChunkedScan, summary: Summary, coverage: Coverage) -> None:
    """What loading the data would have said (:attr:`forecaster.datasets.Dataset.notices`)."""
    clipped = (f"참고: --date-range {chunked.months.date_range.text} 밖의 거래 {summary.outside_range:,}행을 "
               f"제외했습니다.",) if summary.outside_range else ()
    for line in chunked.source.notices + clipped + coverage.notices():
        progress.notice(line)


def _months_of(chunked: ChunkedScan) -> MonthlyPanel:
    """The scanned data's months, without customers (what the anchor check reads)."""
    first, n = chunked.month_range
    return MonthlyPanel(np.array([], dtype=object), 1970 * 12 + first, np.zeros((0, n)), np.zeros((0, n), np.int32),
                        np.zeros(0, np.int32), chunked.currency)


def _check_anchor(panel: MonthlyPanel, anchor: pd.Period) -> None:
    try:
        panel.check_anchor(anchor)
    except ValueError as exc:
        raise UserError(f"--anchor: {exc}") from exc


def write_partitioned(art: artifact.Artifact, chunked: ChunkedScan, provider: Provider, out: Path,
                      anchor: pd.Period | None, force: bool, chunk_customers: int) -> Counter:
    """Every customer's row into ``out``, one spill file at a time (module doc); the status
    counts. ``out`` is checked before any work and again before it is replaced."""
    out = Path(out)
    check_output(out, force)
    months_known = anchor is not None
    if months_known:  # before any file is read; the coverage may still drop the last month (checked below)
        _check_anchor(_months_of(chunked), anchor)
    last = pd.Period("1970-01", "M") + (sum(chunked.month_range) - 1)  # the data's last month
    anchors = [anchor] if months_known else [last + 1, last]
    keys = sorted_guess(chunked.totals)
    digest = model_digest(art, provider, anchor or last, chunk_customers)
    summary = summarise(chunked, provider, anchors, keys, digest.copy())
    if sorted_actual(keys, summary.kept_breaks) != keys:  # out-of-order rows were all duplicates
        keys = sorted_actual(keys, summary.kept_breaks)
        summary = summarise(chunked, provider, anchors, keys, digest.copy())
    if not summary.positive:
        refuse_no_purchase(chunked.source.where, chunked.roles.amount)
    coverage = judged(chunked, summary)
    _notices(chunked, summary, coverage)
    panel = coverage.apply(summary.totals.months)
    anchor = anchor if months_known else panel.last_month + 1
    _check_anchor(panel, anchor)
    if not summary.acquired.get(anchor):
        raise UserError(f"none of the {summary.customers:,} customers has a purchase before {anchor}, "
                        f"so there is nobody to forecast; choose a later --anchor")
    season = SeasonContext.from_stats(summary.season[anchor], anchor)
    whole = WholeCut(provider.fitted_from(summary.population[anchor]), season,
                     RepeatContext.fit(summary.repeat[anchor], season.factors))
    summary.release()  # the positive spends of everyone, at each candidate anchor: no longer needed
    summary.digest.update(f"{anchor} {keys}".encode())
    work = WorkFolder.beside(out, summary.digest.hexdigest(), chunked.spill.parts)
    state = resumed_state(work)
    _score_parts(art, chunked, provider, coverage, whole, anchor, keys, work, state, summary.acquired[anchor],
                 chunk_customers)
    top = TopRule.of_parts(work, summary.acquired[anchor])
    check_output(out, force)  # again: the file may have appeared during the run
    if out.suffix.lower() == ".csv":
        destination.write_file(out, lambda tmp: write_csv(merged(work, top), tmp))
    else:
        destination.write_file(out, lambda tmp: write_parquet(merged(work, top), tmp, top.schema))
    work.remove()
    return status_tally(done["status"] for done in state["done"].values())


def _score_parts(art: artifact.Artifact, chunked: ChunkedScan, provider: Provider, coverage: Coverage,
                 whole: WholeCut, anchor: pd.Period, keys: tuple[bool, bool], work: WorkFolder, state: dict,
                 acquired: int, chunk_customers: int) -> None:
    """Pass 2: every spill file not finished by an earlier run, scored into its part."""
    done = sum(sum(n for s, n in d["status"].items() if s not in UNFORECAST) for d in state["done"].values())
    with progress.counted("예측 중", acquired) as advance:
        advance(done)
        for p in range(chunked.spill.parts):
            if str(p) in state["done"]:
                continue
            reduced = chunked.reduce_file(p, keys)
            frame = _part_rows(art, chunked.dataset(reduced, coverage), provider, whole, anchor, chunk_customers) \
                if reduced.pieces else pd.DataFrame({"customer_id": [], "status": []}, dtype=object)
            work.record(state, p, frame)
            done += int(_forecast(frame).sum())
            advance(done)


def _forecast(frame: pd.DataFrame) -> pd.Series:
    return ~frame["status"].isin(UNFORECAST)


def _part_rows(art: artifact.Artifact, dataset: Dataset, provider: Provider, whole: WholeCut, anchor: pd.Period,
               chunk_customers: int) -> pd.DataFrame:
    """One spill file's rows in id order (its forecast customers in chunks)."""
    job = BatchJob.open(art, dataset, anchor, whole=whole, provider=provider)
    if not len(job):
        return canonical(job.unforecast)
    bounds = chunk_bounds(len(job), chunk_customers)
    frames = [job.chunk_rows(bounds, k) for k in range(len(bounds))]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


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
        rows = frame[_forecast(frame).to_numpy()]
        if self.cutoff is None:
            return np.zeros(len(rows), dtype=bool)
        prob = rows["purchase_prob"].to_numpy()
        return (prob > self.cutoff) | ((prob == self.cutoff) & np.isin(rows["customer_id"].to_numpy(), self.chosen))


def _tied_ids(part: Path, cutoff: float) -> np.ndarray:
    if "purchase_prob" not in pq.read_schema(part).names:
        return np.array([], dtype=object)
    frame = pd.read_parquet(part, columns=["customer_id", "status", "purchase_prob"])
    at = _forecast(frame).to_numpy() & (frame["purchase_prob"].to_numpy() == cutoff)
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
