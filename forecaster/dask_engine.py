"""The ``--dask ADDRESS`` engine: the work that grows with the data on a Dask cluster.

``tcp://host:port`` connects to a running scheduler; ``local:N`` starts a ``LocalCluster`` of
N single-threaded workers on 127.0.0.1 (no dashboard). Only the ``dask_*`` modules import
dask, and only when the option is given.

What runs where:

- **the panel** (:mod:`forecaster.dask_panel`): read, cleaned and shuffled by customer on
  the workers. ``data`` and ``train`` (:func:`load_dataset`) gather it: the client merges the
  per-partition results into the same Dataset as the in-memory reader.
- **training** stays on the client by default, on a stratified customer sample
  (``--sample-customers``): the models see a few hundred thousand rows at most, which one
  machine fits in minutes, and the same rows give the same model whatever the engine.
  ``--dask-training`` fits every XGBoost model on the cluster instead, with ``xgboost.dask``
  on every training row (:mod:`forecaster.dask_train`: the rows built on the client, sent
  once partitioned by customer); it is for rows the client cannot also train on, and slower
  whenever they fit (the figures are in that module's doc).
- **batch scoring**: ``forecaster batch --dask`` never gathers the panel
  (:mod:`forecaster.dask_batch`): the shuffled partitions stay on the workers (:func:`shuffled`),
  each worker reduces its own, returns its summary piece, then, given the model and the whole
  cut's population pieces (broadcast once), its partition's output rows, which the client
  writes as resumable parts and merges in id order with the top-20% flag. The client holds
  the summaries and a few partitions' rows, not the panel. With ``--limit``, and in the Python
  API (:func:`predict`, :func:`write_batch`), the Dataset is gathered on the client, the
  population pieces computed there once and broadcast with the model (``client.scatter``),
  each worker scores chunks of customers from their own panel rows and purchase days only
  (:func:`forecaster.batch.score_rows`, the function the in-memory batch uses), and the client
  adds the rows without a forecast and the top-20% flag, which ranks everyone.
- **the LLM stage** never runs on a worker: ``--dask`` with ``--provider llm`` is refused, so
  no worker is ever sent an API key or a prompt.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import pandas as pd

from forecaster.errors import UserError

if TYPE_CHECKING:
    from distributed import Client, Future

    from forecaster.api.model import TrainedModel
    from forecaster.dask_panel import Shuffled
    from forecaster.datasets import Dataset
    from models.timing import PurchaseDays
    from narrator.panel import MonthlyPanel

_LOCAL = re.compile(r"local:(\d+)")
_TCP = re.compile(r"tcp://[^\s:/]+:\d+")
CONNECT_TIMEOUT = "10s"
DASK_HINT = "pip install 'llm-spend-forecaster[dask]'"
IN_FLIGHT_PER_WORKER = 2  # chunks of a batch submitted ahead per worker: one running, one waiting


def parse_address(address: str) -> str | int:
    """``local:N`` -> N workers; ``tcp://host:port`` as given; UserError otherwise."""
    text = address.strip()
    local = _LOCAL.fullmatch(text)
    if local and int(local.group(1)) >= 1:
        return int(local.group(1))
    if _TCP.fullmatch(text):
        return text
    raise UserError(f"--dask {address!r}: give tcp://HOST:PORT of a running Dask scheduler "
                    f"(e.g. tcp://10.0.0.5:8786) or local:N for N workers on this machine (e.g. local:2)")


@contextmanager
def connect(address: str, *, processes: bool = True) -> Iterator["Client"]:
    """A client of the cluster ``address`` names (:func:`parse_address`), closed on exit
    (with the local cluster it started). ``processes=False`` runs local workers as threads of
    this process (the tests)."""
    target = parse_address(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError(f"--dask needs the optional dask packages, which are not installed; {DASK_HINT}") from None
    # distributed logs each shuffle at WARNING on stderr, where the CLI's own lines go; set
    # after the import, which configures its loggers (to INFO) when it first runs
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if isinstance(target, int):
        # worker processes listen on loopback only; in-process workers talk through memory (inproc://)
        where = {"host": "127.0.0.1"} if processes else {}
        with LocalCluster(n_workers=target, threads_per_worker=1, processes=processes, dashboard_address=None,
                          **where) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(target, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UserError(f"--dask {address}: no Dask scheduler answered within {CONNECT_TIMEOUT} "
                        f"({type(exc).__name__}); start one (dask scheduler) or check the address") from None
    with client:
        yield client


def refuse_llm(provider: str) -> None:
    """UserError for an LLM provider: its stage keeps its own concurrency and batch-job controls
    on the client, and no worker may hold its key."""
    if provider != "empirical":
        raise UserError(f"--dask with --provider {provider}: the LLM stage does not run on a Dask cluster; "
                        f"run without --dask (the LLM's own limits set its pace), or use --provider empirical")


def load_dataset(client: "Client", src: str, *, customer: str | None = None, date: str | None = None,
                 amount: str | None = None, order: str | None = None, currency: str | None = None,
                 date_format: str | None = None, decimal_comma: bool = False, date_range: str | None = None,
                 data_end: str | None = None, keep_partial_month: bool = False, _build: Callable | None = None):
    """``fc.load_dataset`` of a CSV, Parquet file or Parquet folder, its panel built on the
    cluster (:mod:`forecaster.dask_panel`): the same Dataset, gathered on the client.
    ``_build``: what the source is given to instead (:func:`shuffled`)."""
    from forecaster import datasets
    from forecaster.dask_panel import load_dataset as build

    path = Path(src.strip())
    if not (path.is_dir() or path.suffix.lower() in (".csv", ".parquet", ".pq")):
        raise UserError(f"--dask reads a .csv or .parquet file or a folder of Parquet files, not {src!r}; "
                        f"drop --dask for the built-in data, or write it out (forecaster.synthetic.write_parquet)")
    code = datasets.check_currency(currency or datasets.USER_FILE_CURRENCY)
    months = datasets.month_options(date_range, data_end, keep_partial_month)
    return (_build or build)(client, path, customer_col=customer, date_col=date, amount_col=amount, order_col=order,
                             currency=code, date_format=date_format, decimal_comma=decimal_comma, months=months)


def shuffled(client: "Client", src: str, **options: Any) -> "Shuffled":
    """:func:`load_dataset`'s rows (same options) cleaned and shuffled by customer, left on
    the workers, not gathered (:func:`forecaster.dask_panel.shuffle`; what ``forecaster batch
    --dask`` scores, :mod:`forecaster.dask_batch`)."""
    from forecaster.dask_panel import shuffle

    return load_dataset(client, src, **options, _build=shuffle)


@dataclass(frozen=True)
class Scorer:
    """What every worker holds once (broadcast): the model and its scheme, the forecaster
    with the population's rates already fitted, the seasonal context, the repeat-purchase
    model. No API key: the
    empirical forecaster asks no one."""

    art: object
    forecaster: object
    anchor: pd.Period
    history_months: int
    season: object  # models.season.SeasonContext
    repeat: object  # models.repeat.RepeatContext


def score_chunk(scorer: Scorer, shown: "MonthlyPanel", days: "PurchaseDays") -> pd.DataFrame:
    """On a worker: the forecast rows of the customers of ``shown`` (their panel rows only)."""
    from forecaster.batch import score_rows
    from narrator.panel import HistoryBatch

    histories = HistoryBatch.from_panel(shown, scorer.anchor, scorer.history_months)
    records = scorer.forecaster.forecast_many(histories)
    return score_rows(scorer.art, scorer.anchor, histories, records, days, scorer.season, scorer.repeat)


def predict(client: "Client", model: "TrainedModel", dataset: "Dataset", anchor: str | pd.Period | None = None,
            *, chunk_customers: int = 200_000, limit: int | None = None) -> pd.DataFrame:
    """``model.predict(dataset)``'s rows, scored on the cluster ``chunk_customers`` at a time."""
    from forecaster.batch import chunk_bounds, days_of, flag_top, top_flags

    job = model._job(dataset, anchor, limit, None)
    refuse_llm(job.provider.name)
    job.check_population()
    # the population pieces the in-memory batch uses, made once on the client
    scorer = Scorer(job.art, job.fitted, job.anchor, job.art.config["history_months"], job.season, job.repeat)
    shared = client.scatter(scorer, broadcast=True)
    bounds = chunk_bounds(len(job), chunk_customers)

    def submit(lo: int, hi: int) -> "Future":
        shown = job.shown.take(np.arange(lo, hi))
        return client.submit(score_chunk, shared, shown, days_of(job.days, shown.customer_ids), pure=False)

    scored = in_order_bounded(submit, bounds, IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info()["workers"])))
    frames = [job.with_unforecast(rows, bounds, k) for k, rows in enumerate(scored)]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return flag_top(frame, top_flags(frame))


def in_order_bounded(submit: Callable[[int, int], "Future"], bounds: list[tuple[int, int]],
                     in_flight: int) -> Iterator[pd.DataFrame]:
    """Each chunk's result in order, at most ``in_flight`` chunks submitted and not yet
    collected: submitting every chunk at once put every chunk's panel rows and purchase days
    in flight together (the client's and the workers' memory doubled the batch's)."""
    pending: deque = deque()
    for lo, hi in bounds:
        pending.append(submit(lo, hi))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def write_batch(client: "Client", model: "TrainedModel", dataset: "Dataset", out: Path, anchor: str | None, *,
                force: bool, chunk_customers: int, limit: int | None) -> Counter:
    """:func:`predict`'s rows written atomically to ``out``; the count of rows per status."""
    from forecaster.batch import check_output, write_atomically

    check_output(out, force)
    frame = predict(client, model, dataset, anchor, chunk_customers=chunk_customers, limit=limit)
    write_atomically(frame, out, force)
    for line in model.warnings_:
        from forecaster import progress
        progress.warning(line)
    return Counter(frame["status"])
