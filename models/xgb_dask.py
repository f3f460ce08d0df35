"""The hurdle model of :mod:`models.xgb` fitted with ``xgboost.dask`` on a Dask cluster.

:func:`fit` is :meth:`HurdleXGB.fit <models.xgb.HurdleXGB.fit>` with the rows in Dask
DataFrames: each booster is trained by ``xgboost.dask.train`` on a ``DaskDMatrix`` of the
workers' partitions (Chen & Guestrin 2016; the workers build one histogram index between
them and agree on every split through XGBoost's collective, so no worker holds all the rows).
The same pieces as the single-machine fit, taken from :class:`HurdleXGB`: the parameters
(:meth:`~models.xgb.HurdleXGB.train_params`), the purchase booster's ``base_margin`` (the
model's own offset of each row, computed partition by partition), early stopping on the
validation rows after :data:`~models.xgb.EARLY_STOPPING` rounds without gain, and the bucket
booster on the rows that bought. The result is the same :class:`HurdleXGB` (plain
``xgboost.Booster`` objects, saved and explained as any other).

What differs: each worker runs with its own thread count (``nthread`` is left to
``xgboost.dask``), and the quantile sketch and the row subsampling are per worker, so the
trees are not bit-identical to a single-machine fit on the same rows. Their scores differ by
the order of a seed change: on synthetic:3000's last anchor, without subsampling, RPS by 7e-5 and
log loss by 3e-4 (``tests/test_dask_train.py`` asserts 1e-3); with the default subsampling the
log loss moved by 1.3e-3, where another seed moves the single-machine fit by 6e-4.

Imports dask and ``xgboost.dask`` only inside :func:`fit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import xgboost as xgb

from models.xgb import EARLY_STOPPING, MAX_ROUNDS, PURCHASE_OBJECTIVE, HurdleXGB, check_buyers

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

LABEL = "label"


def _margin(part: pd.DataFrame, model: HurdleXGB) -> pd.Series:
    """A partition's purchase offsets (on a worker)."""
    return pd.Series(model._offset(part), index=part.index, dtype=float)


def _matrix(client: "Client", model: HurdleXGB, frame: "dd.DataFrame", label: "dd.Series", offset: bool):
    from xgboost.dask import DaskDMatrix

    X = frame[model.feature_names_]
    margin = None
    if offset and model._offset(X._meta) is not None:
        margin = X.map_partitions(_margin, model, meta=pd.Series([], dtype=float))
    return DaskDMatrix(client, X, label, base_margin=margin, feature_names=model.feature_names_)


def _train(client: "Client", model: HurdleXGB, objective: dict, train: "dd.DataFrame", y: "dd.Series",
           val: "dd.DataFrame", y_val: "dd.Series", offset: bool, tracker_host: str | None) -> xgb.Booster:
    import xgboost.dask as dxgb
    from xgboost.collective import Config

    params = model.train_params(objective)
    params.pop("nthread")  # each worker trains on its own threads
    out = dxgb.train(client, params, _matrix(client, model, train, y, offset), num_boost_round=MAX_ROUNDS,
                     evals=[(_matrix(client, model, val, y_val, offset), "validation")],
                     early_stopping_rounds=EARLY_STOPPING, verbose_eval=False,
                     coll_cfg=Config(tracker_host_ip=tracker_host) if tracker_host else None)
    return out["booster"]


def fit(client: "Client", model: HurdleXGB, train: "dd.DataFrame", val: "dd.DataFrame", cols: list[str], *,
        tracker_host: str | None = None) -> HurdleXGB:
    """``model`` (unfitted) fitted on the cluster of ``client``, returned.

    Parameters: ``train`` and ``val`` (Dask DataFrames holding ``cols`` and ``label``, the
    bucket index, 0 = no purchase; the validation rows from an anchor before every anchor
    the model will score), ``cols`` (the features, in order), ``tracker_host`` (the address
    XGBoost's collective tracker listens on: 127.0.0.1 for a cluster on this machine; None
    lets ``xgboost.dask`` choose the scheduler's).

    Raises: InsufficientData when the training or validation rows hold no purchase."""
    import dask

    model.feature_names_ = list(cols)
    bought, bought_val = train[LABEL] > 0, val[LABEL] > 0
    n_bought, n_bought_val = dask.compute(bought.sum(), bought_val.sum())
    model.purchase_ = _train(client, model, PURCHASE_OBJECTIVE, train, bought.astype(float), val,
                             bought_val.astype(float), True, tracker_host)
    check_buyers(int(n_bought), int(n_bought_val))
    model.bucket_ = _train(client, model, model.bucket_objective(), train[bought], train[LABEL][bought] - 1,
                           val[bought_val], val[LABEL][bought_val] - 1, False, tracker_host)
    return model
