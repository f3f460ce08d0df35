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

XGBoost's native log lines on the workers go to Python (:func:`route_native_log`): warnings
as UserWarning, the rest, e.g. the collective's "Task [xgboost.dask-0]:... got rank 0" at the
start of every booster on every worker, at DEBUG on this module's logger, not on stderr.

Imports dask and ``xgboost.dask`` only inside :func:`fit`.
"""

from __future__ import annotations

import ctypes
import logging
import warnings
from typing import TYPE_CHECKING

import pandas as pd
import xgboost as xgb

from models.xgb import EARLY_STOPPING, MAX_ROUNDS, PURCHASE_OBJECTIVE, HurdleXGB, check_buyers

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

LABEL = "label"
log = logging.getLogger(__name__)


def _native_line(message: bytes) -> None:
    """One log line of XGBoost's native library, on a worker's task thread: a warning is
    raised as XGBoost's own callback raises it (``xgboost.core._log_callback``), anything else
    goes to this module's logger at DEBUG."""
    text = message.decode("utf-8", "replace")
    if "WARNING:" in text:
        warnings.warn(text, UserWarning, stacklevel=2)
    else:
        log.debug(text)


# the library keeps only the callback's address: the ctypes object must live as long as the process
_NATIVE_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(_native_line)


def _register_native_log() -> None:
    """(A task on a worker.) This thread's native log lines go to :func:`_native_line`."""
    from xgboost.core import _LIB, _check_call  # the C API's registration has no Python wrapper

    _check_call(_LIB.XGBRegisterLogCallback(_NATIVE_CALLBACK))


def route_native_log(client: "Client") -> None:
    """Every worker's task thread sends XGBoost's native log lines through Python
    (:func:`_native_line`) instead of writing them to the worker's stderr.

    Why: XGBoost keeps its log callback per thread (``XGBRegisterLogCallback`` registers it
    for the calling thread only) and the Python package registers it on the thread that
    imported xgboost. A worker trains on its task thread, where the native default writes
    each line to stderr, and there the collective announces every booster's start on every
    worker: "Task [xgboost.dask-0]:tcp://127.0.0.1:43737 got rank 0", twice per worker and
    fit. That line is ``LOG(CONSOLE)``, which ``verbosity=0`` does not silence, and it is
    not a Python log record, so no logger level reaches it either. XGBoost's errors are
    exceptions, not log lines, and its warnings still show (as UserWarning).

    One task pinned to each worker reaches its one task thread (``--dask local:N`` starts
    single-threaded workers; the setting stays with the thread, and a repeat is harmless).
    A worker with several threads may still print from the others, to its own stderr."""
    client.gather([client.submit(_register_native_log, pure=False, workers=[address], allow_other_workers=False)
                   for address in client.nthreads()])


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

    route_native_log(client)
    model.feature_names_ = list(cols)
    bought, bought_val = train[LABEL] > 0, val[LABEL] > 0
    n_bought, n_bought_val = dask.compute(bought.sum(), bought_val.sum())
    model.purchase_ = _train(client, model, PURCHASE_OBJECTIVE, train, bought.astype(float), val,
                             bought_val.astype(float), True, tracker_host)
    check_buyers(int(n_bought), int(n_bought_val))
    model.bucket_ = _train(client, model, model.bucket_objective(), train[bought], train[LABEL][bought] - 1,
                           val[bought_val], val[LABEL][bought_val] - 1, False, tracker_host)
    return model
