"""``forecaster train --dask ADDRESS --dask-training``: every XGBoost model of a training run
(the tuning grid's candidates and both arms) fitted with ``xgboost.dask`` on the cluster
(:func:`models.xgb_dask.fit`), on every training row instead of a client-side fit.

Where the rows come from: they are built on the client, by the same
:func:`forecaster.pipeline.build_rows` as every other run, and handed to the cluster once
(:class:`ClusterRows`) as a Dask DataFrame partitioned by customer (a hash of the id: all of
a customer's anchors in one partition), spread over the workers and kept there for the run.
Building them on the workers per customer partition is not cheap here: a row needs the
population pieces of its anchor (the bucket scheme, the empirical forecaster's rates fitted
on everyone's past at that anchor, the seasonal context), which would be computed on the client
and broadcast once per anchor, and the panel those come from is already on the client (the
Dataset the command and the API share). So the client must still hold the rows: what the
cluster takes over is XGBoost's part, the matrices of each fit and the boosting rounds.

Not the default (``--dask`` alone trains on the client, on the ``--sample-customers``
sample): a stratified sample gives training rows that fit one machine, where ``xgboost.dask``
only adds the scatter, a collective all-reduce per tree level and a tracker per booster.
Figures (``/usr/bin/time -v forecaster train --data shop100k --out m``
[``--sample-customers 20000``] [``--dask local:2 --dask-training``], ``shop100k`` written by
``synthetic.write_parquet(100000, 3, ...)``: 1,059,585 transactions over 36 months; 2 shared
cores, load average 3.4-7.4 from other jobs; "tree" is the summed RSS of the command and its
worker processes, sampled every 2 s, for the sample from 1:45 into the run only; the code of
commit 4692303, before the per-customer seasonal shift and its two features):

============================  =========  ====================  =====================
run                           wall time  peak RSS              validation RPS / log
                                                               loss, xgb_base
============================  =========  ====================  =====================
sample 20,000 (566,014 rows)  2:53       1.83 GB               0.031073 / 0.208790
same, ``--dask-training``     4:25       1.54 GB (tree >4.2)   0.031079 / 0.208807
all 100,000 (2,829,254 rows)  21:06      6.61 GB               0.031096 / 0.208936
same, ``--dask-training``     18:21      5.67 GB (tree 15.8)   0.031099 / 0.208977
============================  =========  ====================  =====================

The cluster fit scores as the client's (the augmented arm: RPS 0.031103 / 0.031104, log loss
0.209020 / 0.208994 on all rows; the tuning chose the same settings there, and on the
sample ``min_child_weight`` 20 against 5, a near tie of the grid). On the sample it took 1.5x
the time. On all rows it finished sooner, but with 29% more CPU time (1,109 s against
883 s): the single-machine fit got 70% of a core on the loaded machine, the two workers a
whole one; and on one machine the workers' copies of the rows and matrices raised the summed
memory to 2.4x. The client's own peak fell only from 6.61 to 5.67 GB, because it still
builds and holds the rows: the option pays on a cluster of several machines, for rows the
client can build but not also train on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import pandas as pd

from models.arms import Fit, hurdle
from models.xgb import DEFAULT_THREADS, HurdleXGB

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

LOOPBACK = "127.0.0.1"


def tracker_host(client: "Client") -> str | None:
    """Where XGBoost's tracker listens: loopback for a cluster on this machine (in-process
    workers or a scheduler on 127.0.0.1), so no port opens beyond it; None (``xgboost.dask``'s
    choice, the scheduler's address) for a remote cluster."""
    address = client.scheduler.address
    local = address.startswith("inproc://") or address.startswith(f"tcp://{LOOPBACK}:")
    return LOOPBACK if local else None


class ClusterRows:
    """A run's training rows held on the cluster, partitioned by customer; :meth:`fit` has
    :func:`models.arms.fit_xgb`'s signature, so the run passes it wherever that is used."""

    def __init__(self, client: "Client", rows: pd.DataFrame, parts_per_worker: int = 2) -> None:
        import dask.dataframe as dd

        workers = max(1, len(client.scheduler_info()["workers"]))
        parts = workers * parts_per_worker
        key = pd.util.hash_pandas_object(rows["customer_id"], index=False).to_numpy() % parts
        pieces = [rows[key == k] for k in range(parts)]
        futures = client.scatter([p for p in pieces if len(p)])  # spread over the workers
        self.client, self.rows, self.host = client, dd.from_delayed(futures, meta=rows.iloc[:0]), tracker_host(client)

    def _select(self, frame: pd.DataFrame) -> "dd.DataFrame":
        """The cluster's rows of the anchors ``frame`` holds: the same rows (counted)."""
        picked = self.rows[self.rows["anchor"].isin(sorted(frame["anchor"].unique()))]
        if len(picked) != len(frame):  # the run selects rows by anchor only
            raise AssertionError(f"the frame is not whole anchors of the rows: {len(frame)} rows, "
                                 f"{len(picked)} on the cluster")
        return picked

    def fit(self, train: pd.DataFrame, val: pd.DataFrame, cols: list[str], n_buckets: int, seed: int,
            n_threads: int = DEFAULT_THREADS, params: Mapping | None = None) -> HurdleXGB:
        from models.xgb_dask import fit

        return fit(self.client, hurdle(n_buckets, seed, n_threads, params), self._select(train), self._select(val),
                   cols, tracker_host=self.host)


def trainer(client: "Client") -> Callable[[pd.DataFrame], Fit]:
    """What :func:`forecaster.artifact.train` takes as ``trainer``: the run's rows sent to the
    cluster of ``client`` once, every model fitted there."""
    return lambda rows: ClusterRows(client, rows).fit
