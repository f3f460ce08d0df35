"""`forecaster batch` over a shop whose customers come in partitions, one partition at a time.

The whole-panel batch (:mod:`forecaster.batch_stream`) holds every customer's panel and
purchase days: about 1.5 GB per million customers, 16 GB for 10 million. Here the customers
come in partitions, all of a customer's rows in one: the chunked reader's spill files
(:class:`~forecaster.ingest_chunked.ChunkedScan`, reduced one at a time in this process,
:class:`SpillPartitions`) or the Dask partitions after the shuffle by customer
(:mod:`forecaster.dask_batch`, each reduced on the worker that holds it). Both are
:class:`Partitions`: each partition is reduced twice, by the same functions
(:func:`summary_piece`, :func:`part_frame`):

1. **summaries**: each partition's panel gives the whole data's month totals (the coverage
   rule reads nothing else: :class:`~forecaster.coverage.MonthTotals`) and, cut at the anchor
   (without ``--anchor``, at both months the default anchor can be before the coverage is
   known), the population pieces as summaries that add up exactly over partitions
   (:class:`models.season.SeasonStats`, the forecaster's
   :meth:`~structurer.protocol.Forecaster.population`), and a digest of its data; the pieces
   are added up in partition order (:class:`Summary`), the digests chained in that order;
2. **scoring**: each partition's customers go through that partition's
   :class:`~forecaster.batch.BatchJob`, given the whole cut's pieces
   (:class:`~forecaster.batch.WholeCut`), and are written, in id order, as one part of the
   work folder (:class:`~forecaster.batch_stream.WorkFolder`: a killed run, rerun with the
   same arguments, goes on from the partitions not finished);
3. **merge**: :mod:`forecaster.batch_merge`.

The rows are the whole-panel batch's, bit for bit (``tests/test_batch_partitioned.py``,
``tests/test_dask_batch.py``). Memory here: one partition's customers, the positive monthly
spends of all customers (8 bytes each, for the forecaster's mean and 80th percentile) and,
in the merge, one row group per part plus 12 bytes per customer. An LLM provider is not run
this way: its run approves and answers every prompt before the first row
(:meth:`TrainedModel.write_predictions`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import pandas as pd

from forecaster import artifact, progress
from forecaster.batch import UNFORECAST, BatchJob, WholeCut, canonical, check_output, chunk_bounds
from forecaster.batch_merge import forecast_mask, write_merged
from forecaster.batch_stream import WorkFolder, model_digest, resumed_state, update_digest
from forecaster.columns import refuse_no_purchase
from forecaster.coverage import Coverage, MonthTotals, TimeSummary, judge_summary
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.ingest import ScanTotals
from forecaster.ingest_chunked import ChunkedScan
from forecaster.ingest_reduce import Reduced, assemble_ingested, sorted_actual, sorted_guess
from forecaster.providers import Provider
from forecaster.threads import ordered
from models.repeat import RepeatContext, RepeatSummary
from models.season import SeasonContext, SeasonStats
from narrator.panel import MonthlyPanel
from structurer.protocol import Population


@dataclass
class Summary:
    """What pass 1 adds up over the partitions (module doc): one partition's piece
    (:func:`summary_piece`, small and picklable: it crosses from a Dask worker) or their sum."""

    anchors: list[pd.Period]
    digest: bytes = b""  # a piece's data; the sum: the pieces' digests chained in partition order
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

    def add(self, piece: "Summary") -> None:
        """The next partition's piece."""
        if piece.totals is not None:
            self.totals = piece.totals if self.totals is None else self.totals + piece.totals
        self.customers += piece.customers
        self.last_rows += piece.last_rows
        self.outside_range += piece.outside_range
        self.positive |= piece.positive
        self.kept_breaks = [a + b for a, b in zip(self.kept_breaks, piece.kept_breaks)]
        self.digest = hashlib.blake2b(self.digest + piece.digest, digest_size=16).digest()
        for anchor, acquired in piece.acquired.items():
            if anchor not in self.acquired:
                self.acquired[anchor], self.season[anchor] = acquired, piece.season[anchor]
                self.repeat[anchor], self.population[anchor] = piece.repeat[anchor], piece.population[anchor]
                continue
            self.acquired[anchor] += acquired
            self.season[anchor] = self.season[anchor] + piece.season[anchor]
            self.repeat[anchor] = self.repeat[anchor] + piece.repeat[anchor]
            self.population[anchor] = self.population[anchor] + piece.population[anchor]

    def release(self) -> None:
        """Drop the summaries once the population pieces are fitted from them."""
        for pieces in (self.season, self.repeat, self.population):
            pieces.clear()


class Scanned(Protocol):
    """What a partition's reduction is read with: the whole scan's totals and months and the
    Dataset of one reduced partition (:meth:`ChunkedScan.dataset`; a Dask worker's
    :class:`forecaster.dask_batch.PartitionPlan`)."""

    totals: ScanTotals
    month_range: tuple[int, int]
    currency: str

    def dataset(self, out: Reduced, judged: Coverage | None = None) -> Dataset: ...


def summary_piece(scanned: Scanned, reduced: Reduced, provider: Provider, anchors: list[pd.Period]) -> Summary:
    """Pass 1 of one reduced partition (module doc)."""
    piece = Summary(anchors, kept_breaks=list(reduced.kept_breaks), positive=reduced.positive,
                    outside_range=reduced.outside_range)
    if not reduced.pieces:
        return piece
    days = list(reduced.days)
    ingested = assemble_ingested(reduced, scanned.totals, scanned.month_range, scanned.currency)
    panel = ingested.full_panel
    piece.totals = MonthTotals.of(panel)
    piece.customers = len(panel.customer_ids)
    piece.last_rows = int(ingested.last_month_rows.sum())
    for anchor in anchors:
        if panel.first_month < anchor <= panel.last_month + 1:  # else refused once the coverage is known
            cut = panel.before(anchor)
            piece.acquired[anchor], piece.season[anchor] = len(cut.customer_ids), SeasonStats.of(cut)
            piece.repeat[anchor], piece.population[anchor] = RepeatSummary.of(cut), provider.population(cut)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(pd.util.hash_array(np.asarray(panel.customer_ids, dtype=object)).tobytes())
    update_digest(digest, (panel.spend, panel.orders, panel.first_idx))
    update_digest(digest, (t.column(c).to_numpy().view(np.int64) if c == "ts" else t.column(c).to_numpy()
                           for t in days for c in ("code", "ts", "amount")))
    piece.digest = digest.digest()
    return piece


@dataclass(frozen=True)
class PartJob:
    """What pass 2 scores every partition with (broadcast once to Dask workers; the
    provider asks no one, so no key is in it)."""

    art: artifact.Artifact
    provider: Provider
    coverage: Coverage
    whole: WholeCut
    anchor: pd.Period
    keys: tuple[bool, bool]
    chunk_customers: int


def part_frame(scanned: Scanned, reduced: Reduced, job: PartJob) -> pd.DataFrame:
    """Pass 2 of one reduced partition: its rows in id order (its forecast customers in chunks)."""
    if not reduced.pieces:
        return pd.DataFrame({"customer_id": [], "status": []}, dtype=object)
    return _part_rows(job.art, scanned.dataset(reduced, job.coverage), job.provider, job.whole, job.anchor,
                      job.chunk_customers)


def _part_rows(art: artifact.Artifact, dataset: Dataset, provider: Provider, whole: WholeCut, anchor: pd.Period,
               chunk_customers: int) -> pd.DataFrame:
    job = BatchJob.open(art, dataset, anchor, whole=whole, provider=provider)
    if not len(job):
        return canonical(job.unforecast)
    bounds = chunk_bounds(len(job), chunk_customers)
    frames = [job.chunk_rows(bounds, k) for k in range(len(bounds))]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


class Partitions(Protocol):
    """A scanned source whose customers come in ``parts`` partitions (module doc): the scan's
    ``source``, ``roles``, ``totals``, ``month_range``, ``months`` and ``currency`` (as
    :class:`ChunkedScan` names them), each partition's pass-1 piece and pass-2 rows, in order."""

    parts: int

    def sorted_guess(self) -> tuple[bool, bool]: ...

    def summaries(self, provider: Provider, anchors: list[pd.Period], keys: tuple[bool, bool]) -> Iterator[Summary]: ...

    def scored(self, todo: list[int], job: PartJob) -> Iterator[tuple[int, pd.DataFrame]]: ...


@dataclass
class SpillPartitions:
    """The chunked reader's spill files as :class:`Partitions`, reduced in this process, two
    files at a time (:func:`forecaster.threads.ordered`: numpy's, Arrow's and XGBoost's work
    releases the GIL; the empirical provider and the fitted pieces are only read)."""

    chunked: ChunkedScan

    def __getattr__(self, name: str):  # source, roles, totals, month_range, months, currency
        return getattr(self.chunked, name)

    @property
    def parts(self) -> int:
        return self.chunked.spill.parts

    def sorted_guess(self) -> tuple[bool, bool]:
        return sorted_guess(self.chunked.totals)

    def summaries(self, provider: Provider, anchors: list[pd.Period], keys: tuple[bool, bool]) -> Iterator[Summary]:
        def piece(p: int) -> Summary:
            return summary_piece(self.chunked, self.chunked.reduce_file(p, keys), provider, anchors)
        return ordered(piece, range(self.parts))

    def scored(self, todo: list[int], job: PartJob) -> Iterator[tuple[int, pd.DataFrame]]:
        def frame(p: int) -> tuple[int, pd.DataFrame]:
            return p, part_frame(self.chunked, self.chunked.reduce_file(p, job.keys), job)
        return ordered(frame, todo)


def summarise(partitions: Partitions, provider: Provider, anchors: list[pd.Period],
              keys: tuple[bool, bool]) -> Summary:
    """Pass 1 over every partition, the pieces added up in partition order (module doc)."""
    summary = Summary(anchors)
    with progress.counted("고객 묶음 요약 중", partitions.parts) as advance:
        for p, piece in enumerate(partitions.summaries(provider, anchors, keys)):
            summary.add(piece)
            advance(p + 1)
    return summary


def judged(partitions: Partitions, summary: Summary) -> Coverage:
    """The whole data's coverage (:func:`forecaster.coverage.judge_summary`)."""
    totals = partitions.totals
    times = TimeSummary(pd.Timestamp(totals.first_ts), pd.Timestamp(totals.last_ts), totals.date_only,
                        summary.last_rows)
    return judge_summary(summary.totals, times, data_end=partitions.months.data_end,
                         keep_partial=partitions.months.keep_partial_month)


def _notices(partitions: Partitions, summary: Summary, coverage: Coverage) -> None:
    """What loading the data would have said (:attr:`forecaster.datasets.Dataset.notices`)."""
    clipped = (f"참고: --date-range {partitions.months.date_range.text} 밖의 거래 {summary.outside_range:,}행을 "
               f"제외했습니다.",) if summary.outside_range else ()
    for line in partitions.source.notices + clipped + coverage.notices():
        progress.notice(line)


def _months_of(partitions: Partitions) -> MonthlyPanel:
    """The scanned data's months, without customers (what the anchor check reads)."""
    first, n = partitions.month_range
    return MonthlyPanel(np.array([], dtype=object), 1970 * 12 + first, np.zeros((0, n)), np.zeros((0, n), np.int32),
                        np.zeros(0, np.int32), partitions.currency)


def _check_anchor(panel: MonthlyPanel, anchor: pd.Period) -> None:
    try:
        panel.check_anchor(anchor)
    except ValueError as exc:
        raise UserError(f"--anchor: {exc}") from exc


def write_partitioned(art: artifact.Artifact, chunked: ChunkedScan, provider: Provider, out: Path,
                      anchor: pd.Period | None, force: bool, chunk_customers: int) -> Counter:
    """Every customer's row into ``out``, one spill file at a time (module doc); the status counts."""
    return write_parts(art, SpillPartitions(chunked), provider, out, anchor, force, chunk_customers)


def write_parts(art: artifact.Artifact, partitions: Partitions, provider: Provider, out: Path,
                anchor: pd.Period | None, force: bool, chunk_customers: int) -> Counter:
    """Every customer's row into ``out``, one partition at a time (module doc); the status
    counts. ``out`` is checked before any work and again before it is replaced."""
    out = Path(out)
    check_output(out, force)
    months_known = anchor is not None
    if months_known:  # before any partition is read; the coverage may still drop the last month (checked below)
        _check_anchor(_months_of(partitions), anchor)
    last = pd.Period("1970-01", "M") + (sum(partitions.month_range) - 1)  # the data's last month
    anchors = [anchor] if months_known else [last + 1, last]
    keys = partitions.sorted_guess()
    summary = summarise(partitions, provider, anchors, keys)
    if sorted_actual(keys, summary.kept_breaks) != keys:  # out-of-order rows were all duplicates
        keys = sorted_actual(keys, summary.kept_breaks)
        summary = summarise(partitions, provider, anchors, keys)
    if not summary.positive:
        refuse_no_purchase(partitions.source.where, partitions.roles.amount)
    coverage = judged(partitions, summary)
    _notices(partitions, summary, coverage)
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
    digest = model_digest(art, provider, anchor, chunk_customers)
    digest.update(summary.digest + f"{anchor} {keys} {partitions.parts}".encode())
    work = WorkFolder.beside(out, digest.hexdigest(), partitions.parts)
    state = resumed_state(work)
    job = PartJob(art, provider, coverage, whole, anchor, keys, chunk_customers)
    _score_parts(partitions, job, work, state, summary.acquired[anchor])
    return write_merged(work, state, out, force, summary.acquired[anchor])


def _score_parts(partitions: Partitions, job: PartJob, work: WorkFolder, state: dict, acquired: int) -> None:
    """Pass 2: every partition not finished by an earlier run, scored into its part as it comes."""
    done = sum(sum(n for s, n in d["status"].items() if s not in UNFORECAST) for d in state["done"].values())
    todo = [p for p in range(partitions.parts) if str(p) not in state["done"]]
    with progress.counted("예측 중", acquired) as advance:
        advance(done)
        for p, frame in partitions.scored(todo, job):
            work.record(state, p, frame)
            done += int(forecast_mask(frame).sum())
            advance(done)
