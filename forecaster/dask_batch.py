"""``forecaster batch --dask`` without the panel on the client: the batch one partition at a
time (:mod:`forecaster.batch_partitioned`) with the Dask partitions after the shuffle by
customer (:func:`forecaster.dask_panel.shuffle`) in place of the spill files.

Where things live:

- **the panel** never exists whole anywhere. The rows, cleaned and shuffled so that every
  customer's rows are in one partition, stay on the workers, one Arrow table per partition
  (:meth:`forecaster.dask_panel.Shuffled.into_tables`, as a spill file holds them); each worker
  reduces its own partitions to their customers' panel rows and purchase days
  (:func:`forecaster.dask_panel.reduce_table`), twice, and drops them after each task.
- **pass 1** (:func:`partition_summary`): a worker returns its partition's
  :class:`~forecaster.batch_partitioned.Summary` piece only (month totals, counts, the
  seasonal and repeat-purchase summaries, the forecaster's population -- for the empirical
  forecaster the positive monthly spends, as on one machine -- and a 16-byte digest of the
  partition's data); the client adds the pieces up in partition order and fits the whole
  cut's pieces once (:class:`~forecaster.batch.WholeCut`).
- **pass 2** (:func:`partition_rows`): the model, the provider, the coverage and the whole
  cut are broadcast once (:class:`~forecaster.batch_partitioned.PartJob`,
  ``client.scatter(..., broadcast=True)``); a worker returns its partition's output rows
  in id order, and the client writes each frame as one part of the resumable work folder
  as it arrives, at most ``IN_FLIGHT_PER_WORKER`` partitions a worker submitted and not yet
  written (:func:`forecaster.dask_engine.in_order_bounded`): a killed run, rerun with the
  same arguments, scores only the partitions not written.
- **pass 3**: the client merges the parts into ``--out`` (:mod:`forecaster.batch_merge`).

So the client holds the scan's totals, the summed summaries (until the whole cut is fitted)
and a few partitions' output rows; the merge then holds what it holds on one machine (a row
group per part and 12 bytes a customer). Nothing sent to a worker holds an API key: the
empirical forecaster asks no one, and an LLM provider is refused
(:func:`forecaster.dask_engine.refuse_llm`). Only ``dask_*`` modules import dask.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pandas as pd
import pyarrow as pa

from forecaster import progress
from forecaster.batch_partitioned import PartJob, Summary, part_frame, summary_piece, write_parts
from forecaster.coverage import Coverage
from forecaster.dask_engine import IN_FLIGHT_PER_WORKER, in_order_bounded, refuse_llm
from forecaster.dask_panel import Shuffled, reduce_table
from forecaster.ingest import Roles, ScanTotals
from forecaster.ingest_reduce import Reduced, reduced_dataset
from forecaster.providers import Provider
from forecaster.tables import Where

if TYPE_CHECKING:
    from distributed import Client

    from forecaster.api.model import TrainedModel
    from forecaster.datasets import Dataset, _MonthOptions


@dataclass(frozen=True)
class PartitionSource:
    """What a partition's Dataset reads of the source: where it is, what reading it said."""

    where: Where
    notices: tuple[str, ...]


@dataclass(frozen=True)
class PartitionPlan:
    """What a worker reads its partitions' reductions with (broadcast once; no rows, no key):
    a :class:`~forecaster.batch_partitioned.Scanned`, as the chunked reader's scan is."""

    source: PartitionSource
    roles: Roles
    totals: ScanTotals
    month_range: tuple[int, int]
    months: "_MonthOptions"
    currency: str

    @classmethod
    def of(cls, shuffled: Shuffled) -> "PartitionPlan":
        return cls(PartitionSource(shuffled.source.where, shuffled.source.notices), shuffled.roles, shuffled.totals,
                   shuffled.month_range, shuffled.months, shuffled.currency)

    def dataset(self, out: Reduced, judged: Coverage | None = None) -> "Dataset":
        return reduced_dataset(self.source, self.roles, self.totals, out, self.month_range, self.months,
                               self.currency, judged)


def partition_summary(table: pa.Table | None, plan: PartitionPlan, provider: Provider, anchors: list[pd.Period],
                      keys: tuple[bool, bool]) -> Summary:
    """On a worker: pass 1 of one shuffled partition (its Summary piece)."""
    return summary_piece(plan, reduce_table(table, plan.month_range, plan.currency, keys), provider, anchors)


def partition_rows(table: pa.Table | None, plan: PartitionPlan, job: PartJob) -> pd.DataFrame:
    """On a worker: pass 2 of one shuffled partition (its output rows in id order)."""
    return part_frame(plan, reduce_table(table, plan.month_range, plan.currency, job.keys), job)


class DaskPartitions:
    """The shuffled partitions of a cluster as :class:`~forecaster.batch_partitioned.Partitions`."""

    def __init__(self, client: "Client", shuffled: Shuffled):
        self.client, self.shuffled = client, shuffled
        self.source, self.roles, self.totals = shuffled.source, shuffled.roles, shuffled.totals
        self.month_range, self.months, self.currency = shuffled.month_range, shuffled.months, shuffled.currency
        self.parts = shuffled.parts
        self._guess = shuffled.sorted_guess()
        self._tables = shuffled.into_tables(client)  # one per partition, in the memory of the worker holding it
        self._plan: Any = None

    def sorted_guess(self) -> tuple[bool, bool]:
        return self._guess

    def summaries(self, provider: Provider, anchors: list[pd.Period], keys: tuple[bool, bool]) -> Iterator[Summary]:
        refuse_llm(provider.name)
        shared = self.client.scatter(provider, broadcast=True)
        yield from self._each(range(self.parts), partition_summary, shared, anchors, keys)

    def scored(self, todo: list[int], job: PartJob) -> Iterator[tuple[int, pd.DataFrame]]:
        refuse_llm(job.provider.name)
        yield from zip(todo, self._each(todo, partition_rows, self.client.scatter(job, broadcast=True)))

    def _each(self, parts, run, *args: Any) -> Iterator[Any]:
        """``run(partition, plan, *args)`` of each of ``parts`` on the worker holding it, the
        results in order, a bounded number in flight."""
        import dask

        if self._plan is None:
            self._plan = self.client.scatter(PartitionPlan.of(self.shuffled), broadcast=True)

        def submit(p: int, _: int) -> Any:
            return self.client.compute(dask.delayed(run)(self._tables[p], self._plan, *args))

        workers = max(1, len(self.client.scheduler_info()["workers"]))
        return in_order_bounded(submit, [(p, p + 1) for p in parts], IN_FLIGHT_PER_WORKER * workers)


def write_batch(client: "Client", model: "TrainedModel", shuffled: Shuffled, out: Path, anchor: pd.Period | None,
                *, force: bool, chunk_customers: int) -> Counter:
    """Every customer's row into ``out``, scored partition by partition on the cluster
    (module doc); the count of rows per status."""
    from forecaster.batch import open_provider

    art = model._check_fitted()
    provider = open_provider(art, shuffled.currency, None)
    refuse_llm(provider.name)
    counts = write_parts(art, DaskPartitions(client, shuffled), provider, Path(out), anchor, force, chunk_customers)
    for line in model.warnings_:
        progress.warning(line)
    return counts
