"""``forecaster train --dask ADDRESS --dask-training``: every XGBoost model of a training run
(the tuning grid's candidates and both arms) fitted with ``xgboost.dask`` on the cluster
(:func:`models.xgb_dask.fit`), on every training row instead of a client-side fit.

Where the rows come from: they are built on the client, by the same
:func:`forecaster.pipeline.build_rows` as every other run, and handed to the cluster once
(:class:`ClusterRows`) as a Dask DataFrame partitioned by customer (a hash of the id: all of
a customer's anchors in one partition), spread over the workers and kept there for the run.
Building them on the workers per customer partition is not cheap here: a row needs the
population pieces of its anchor (the bucket scheme, the empirical forecaster's rates fitted
on everyone's past at that anchor, the seasonal index), which would be computed on the client
and broadcast once per anchor, and the panel those come from is already on the client (the
Dataset the command and the API share). What the cluster takes over is the part that grows
fastest with the rows: XGBoost's quantised matrices, gradients and histograms (several times
the rows' own size), and their boosting rounds.

Not the default (``--dask`` alone trains on the client, on the ``--sample-customers``
sample): a stratified sample of a few hundred thousand customers gives training rows that fit
one machine, and ``xgboost.dask`` pays for the scatter, a collective all-reduce per tree level
and a tracker per booster, so on a 2-core machine it is slower than the single-machine fit of
the same rows (figures in docs/design-notes.md). It is for rows the client can build but
cannot also train on.
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
