"""`forecaster batch`: every customer of one anchor through the forecaster and the trained
model. With an LLM provider a re-run after a kill resumes from the response cache: the
answers already received are not asked for again.

Every customer of the data gets a row. ``status`` is ``ok`` (forecast), ``failed`` (the LLM
gave no usable answer: ``reason`` is the typed failure, the model still scores the
customer with the forecaster features missing), ``no_history`` or ``no_purchase`` (not
forecast: ``reason`` says why in Korean; forecasts, decision and top-20% flag are empty).
The top-20% flag follows :mod:`forecaster.top_share`."""

from __future__ import annotations

import dataclasses
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from forecaster import artifact, destination, progress
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.pipeline import model_features
from forecaster.providers import Forecaster, ForecasterChoice, LLMForecaster, Provider, resolve
from forecaster.top_share import top_share
from models.arms import spend_from_probs
from models.repeat import RepeatContext
from models.season import SeasonContext
from models.timing import PurchaseDays
from narrator.korean import format_month
from narrator.panel import NOT_ACQUIRED, HistoryBatch, MonthlyPanel
from structurer.features import expected_spend_feature, probability_feature_names, records_to_features
from structurer.schema import ForecastRecord

OUTPUT_SUFFIXES = (".parquet", ".csv")
NO_HISTORY, NO_PURCHASE = "no_history", "no_purchase"
STATUS_NAMES = {"failed": "LLM 예측 실패", NO_HISTORY: "이전 기록 없음", NO_PURCHASE: "구매 기록 없음"}


def unforecast_rows(dataset: Dataset, ids: np.ndarray, first_idx: np.ndarray, anchor: pd.Period) -> pd.DataFrame:
    """Customers of the data without a history before ``anchor``, with the status and the
    Korean reason their batch row carries: ``no_history`` (first purchase in or after the
    anchor month, or only in months the panel leaves out, such as a dropped partial month)
    or ``no_purchase`` (no positive amount at all: only returns or zero amounts)."""
    panel = dataset.panel
    later = first_idx != NOT_ACQUIRED
    bought = _with_positive_day(dataset.purchase_days, ids)
    first = panel.months[np.where(later, first_idx, 0)]
    first_text = pd.Series(first.year.astype(str)) + "년 " + pd.Series(first.month.astype(str)) + "월"
    reason = np.where(
        later, ("첫 구매가 " + first_text + f"이라 {format_month(anchor)} 예측에 쓸 이전 기록이 없습니다").to_numpy(),
        np.where(bought, "구매가 모두 분석에 쓰지 않은 달(제외한 불완전한 달 등)에 있어 이전 기록이 없습니다",
                 "구매 기록이 없습니다(반품이나 0원 거래만 있음)"))
    return pd.DataFrame({"customer_id": ids, "anchor": str(anchor),
                         "status": np.where(later | bought, NO_HISTORY, NO_PURCHASE), "reason": reason})


def _with_positive_day(days: PurchaseDays, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` (sorted) have a purchase day with a positive amount, i.e. a row with
    one (a day sums its rows of non-negative amount). Binary search on the sorted ids: no
    hash table or sort of every customer's id for the few customers without a forecast."""
    known = days.customer_ids.to_numpy()
    if not len(known):
        return np.zeros(len(ids), dtype=bool)
    positive = np.zeros(len(known), dtype=bool)
    positive[days.code[days.amount > 0]] = True
    at = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return (known[at] == ids) & positive[at]


def status_counts(frame: pd.DataFrame) -> str:
    """The closing line's tally, e.g. ``23,570명 중 23,502명 예측 완료 (구매 기록 없음 68명)``."""
    return status_line(Counter(frame["status"]))


def status_tally(chunks: Iterable[Mapping[str, int]]) -> Counter:
    """The status counts of a run, added up over its chunks."""
    total: Counter = Counter()
    for counts in chunks:
        total.update(counts)
    return total


def status_line(counts: Mapping[str, int]) -> str:
    """:func:`status_counts` from the counts per status."""
    rest = [f"{STATUS_NAMES[s]} {counts[s]:,}명" for s in STATUS_NAMES if counts.get(s, 0)]
    tally = f"{sum(counts.values()):,}명 중 {int(counts.get('ok', 0)):,}명 예측 완료"
    return tally + (f" ({', '.join(rest)})" if rest else "")


TEXT_COLUMNS = ("customer_id", "anchor", "status", "reason", "provider", "forecaster_model", "prompt_version",
                "segment", "trend", "rationale")
UNFORECAST = (NO_HISTORY, NO_PURCHASE)


def _text_dtype() -> pd.StringDtype:
    """pandas 3's default text dtype (a missing cell NaN); before pandas 2.3, ``string``."""
    try:
        return pd.StringDtype(na_value=np.nan)
    except TypeError:
        return pd.StringDtype()


TEXT = _text_dtype()


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with one dtype per column whatever its values: text as ``str`` (a missing
    cell NaN, never an all-None object column), model probabilities float32, the flags
    nullable boolean. A chunk of rows then has the dtypes of the whole output."""
    types = {c: TEXT for c in TEXT_COLUMNS}
    types.update({c: "boolean" for c in ("decision", "top20_target")})
    return frame.astype({c: t for c, t in types.items() if c in frame.columns})


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """Consecutive ``[lo, hi)`` ranges of at most ``size`` of ``n`` forecast customers."""
    if size < 1:
        raise UserError(f"--chunk-customers {size}: give a number of customers of at least 1")
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def flag_top(frame: pd.DataFrame, flags: np.ndarray) -> pd.DataFrame:
    """``frame`` with ``top20_target`` set from ``flags``, one per forecast row in order
    (rows with a status of :data:`UNFORECAST` keep NA)."""
    forecast = ~frame["status"].isin(UNFORECAST).to_numpy()
    top = pd.array(np.full(len(frame), pd.NA), dtype="boolean")
    top[forecast] = flags
    return frame.assign(top20_target=top)


def top_flags(frame: pd.DataFrame) -> np.ndarray:
    """The top-20% flag of every forecast row of the whole output (:mod:`forecaster.top_share`)."""
    forecast = ~frame["status"].isin(UNFORECAST).to_numpy()
    return top_share(frame["purchase_prob"].to_numpy()[forecast], frame["customer_id"].to_numpy()[forecast])[0]


@dataclass(frozen=True)
class WholeCut:
    """The population pieces of the whole cut panel: the forecaster fitted on it, its
    seasonal context and its repeat-purchase model. A batch made partition by partition
    hands every partition's job the pieces of all partitions summed
    (:mod:`forecaster.batch_partitioned`)."""

    fitted: Forecaster
    season: SeasonContext
    repeat: RepeatContext


def open_provider(art: artifact.Artifact, currency: str, forecaster: ForecasterChoice | None) -> Provider:
    """The trained model's forecaster for data in ``currency``; UserError when the currency,
    the provider or the prompt differ from the model's."""
    info = art.config["forecaster"]
    if currency != art.config["currency"]:
        raise UserError(f"{art.name} was trained on {art.config['currency']} amounts but the data is in "
                        f"{currency}; retrain on this data or pass the matching --currency")
    provider = Provider(info["provider"], art.scheme, trained_settings(art, forecaster),
                        empirical=artifact.empirical_settings(art.config))
    if provider.info["prompt_version"] != info["prompt_version"]:
        raise UserError(f"{art.name} was trained with prompt {info['prompt_version']!r}, the running code "
                        f"uses {provider.info['prompt_version']!r}; retrain with `forecaster train`")
    return provider


@dataclass
class BatchJob:
    """One anchor's batch: ``shown`` are the customers forecast (acquired before the anchor,
    in id order), ``unforecast`` the other customers of the data, who get a row with a
    status. The rows are made chunk by chunk (:meth:`chunk_rows`); only the top-20% flag
    needs every forecast row (:func:`top_flags`, then :func:`flag_top`)."""

    art: artifact.Artifact
    provider: Provider
    cut: MonthlyPanel
    days: PurchaseDays
    shown: MonthlyPanel
    anchor: pd.Period
    unforecast: pd.DataFrame
    whole: WholeCut | None = None  # given: the population pieces are not computed from ``cut``

    @classmethod
    def open(cls, art: artifact.Artifact, dataset: Dataset, anchor: pd.Period, limit: int | None = None,
             forecaster: ForecasterChoice | None = None, whole: WholeCut | None = None,
             provider: Provider | None = None) -> "BatchJob":
        """``limit``: only the first N customers of the data (by id), forecast or not.
        ``forecaster``: see :func:`trained_settings` (a provider that asks no one ignores the
        LLM settings). ``whole`` and ``provider``: a partition's job
        (:mod:`forecaster.batch_partitioned`)."""
        provider = provider or open_provider(art, dataset.currency, forecaster)
        panel = dataset.panel
        try:
            panel.check_anchor(anchor)
        except ValueError as exc:
            raise UserError(f"--anchor: {exc}") from exc
        cut = panel.before(anchor)
        chosen = slice(0, limit)  # ids are sorted, and the cut keeps the panel's order
        acquired = panel.first_idx[chosen] < panel.column(anchor)
        n = int(acquired.sum())  # the acquired among the first N are the cut's first n rows
        # --limit trims who is forecast, not what the forecaster learns its population rates from
        shown = cut if limit is None else cut.take(np.arange(n))
        unforecast = unforecast_rows(dataset, panel.customer_ids[chosen][~acquired], panel.first_idx[chosen][~acquired],
                                     anchor)
        return cls(art, provider, cut, dataset.purchase_days, shown, anchor, unforecast, whole)

    def __len__(self) -> int:
        """How many customers are forecast."""
        return len(self.shown.customer_ids)

    @cached_property
    def histories(self) -> HistoryBatch:
        """Every forecast customer's history at once (the LLM's dry run and batch jobs,
        explain's top-20% group); the chunks build their own."""
        return HistoryBatch.from_panel(self.shown, self.anchor, self.art.config["history_months"])

    def all_histories(self) -> Iterator[HistoryBatch]:
        """:attr:`histories`, built only when read (a forecaster that asks no one does not)."""
        yield self.histories

    def check_population(self) -> None:
        """UserError when nobody has a purchase before the anchor."""
        if not len(self):
            raise UserError(f"none of the {len(self.unforecast):,} customers has a purchase before {self.anchor}, "
                            f"so there is nobody to forecast; choose a later --anchor")

    @contextmanager
    def forecasting(self, bounds: list[tuple[int, int]], done: int = 0) -> Iterator[Callable[[int], pd.DataFrame]]:
        """``chunk_rows(k)`` for the chunks ``bounds`` under one progress bar (``done``
        customers already forecast by an earlier run); the LLM's usage is reported once at
        the end."""
        with progress.counted("예측 중", len(self)) as advance:
            advance(done)

            def chunk_rows(k: int) -> pd.DataFrame:
                lo, hi = bounds[k]
                answered = 0

                def one_more(record: ForecastRecord) -> None:
                    nonlocal answered
                    answered += 1
                    advance(lo + answered)

                self.provider.progress = one_more
                frame = self.chunk_rows(bounds, k)
                advance(hi)
                return frame

            yield chunk_rows
        if self.provider.forecaster.ledger is not None:
            progress.summary(self.provider.forecaster.ledger.render())

    def chunk_rows(self, bounds: list[tuple[int, int]], k: int) -> pd.DataFrame:
        """Chunk ``k``'s rows in id order: its forecast customers and the customers without a
        forecast whose ids fall between its first id and the next chunk's; ``top20_target``
        is left NA (it needs every chunk: :func:`top_flags`)."""
        lo, hi = bounds[k]
        return self.with_unforecast(self.forecast_rows(lo, hi), bounds, k)

    def with_unforecast(self, frame: pd.DataFrame, bounds: list[tuple[int, int]], k: int) -> pd.DataFrame:
        """Chunk ``k``'s forecast rows with the rows without a forecast that fall in its id range."""
        ids = self.unforecast["customer_id"].to_numpy()
        starts = self.shown.customer_ids[[b[0] for b in bounds]]
        first = 0 if k == 0 else int(np.searchsorted(ids, starts[k]))
        last = len(ids) if k == len(bounds) - 1 else int(np.searchsorted(ids, starts[k + 1]))
        if first == last:
            return canonical(frame)
        every = pd.concat([frame, self.unforecast.iloc[first:last]], ignore_index=True)
        return canonical(every.sort_values("customer_id", kind="stable", ignore_index=True)[frame.columns])

    def forecast_rows(self, lo: int, hi: int) -> pd.DataFrame:
        """The rows of forecast customers ``lo``..``hi - 1``: the provider's records, the
        baseline features (population pieces from the whole cut panel), the final model."""
        histories = HistoryBatch.from_panel(self.shown.take(np.arange(lo, hi)), self.anchor,
                                            self.art.config["history_months"])
        records = self.provider.records(histories, self.fitted)
        return score_rows(self.art, self.anchor, histories, records, days_of(self.days, histories.customer_ids),
                          self.season, self.repeat)

    @cached_property
    def fitted(self) -> Forecaster:
        """The forecaster fitted on the whole cut panel, once (a fit per chunk read every
        customer once per chunk: quadratic in the customers)."""
        return self.whole.fitted if self.whole is not None else self.provider.fitted(self.cut)

    @cached_property
    def season(self) -> SeasonContext:
        """The population's seasonal context at the anchor (:class:`models.season.SeasonContext`), once."""
        return self.whole.season if self.whole is not None else SeasonContext.from_cut(self.cut, self.anchor)

    @cached_property
    def repeat(self) -> RepeatContext:
        """The population's repeat-purchase model at the anchor (:class:`models.repeat.RepeatContext`), once."""
        return self.whole.repeat if self.whole is not None else RepeatContext.from_cut(self.cut, self.season.factors)

    def run(self, chunk_customers: int | None = None) -> pd.DataFrame:
        """One row per customer of the data (or of the first ``--limit``), in id order, made
        ``chunk_customers`` forecast customers at a time (default: all at once)."""
        self.check_population()
        bounds = chunk_bounds(len(self), chunk_customers or len(self))
        with self.forecasting(bounds) as chunk_rows:
            frames = [chunk_rows(k) for k in range(len(bounds))]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return flag_top(frame, top_flags(frame))


def score_rows(art: artifact.Artifact, anchor: pd.Period, histories: HistoryBatch, records: list[ForecastRecord],
               days: PurchaseDays, season: SeasonContext, repeat: RepeatContext) -> pd.DataFrame:
    """The rows of the customers of ``histories`` from their forecaster records, purchase
    days and the population's seasonal context and repeat-purchase model: the part of a batch
    that needs no other customer (the ``--dask`` engine runs it on the workers)."""
    scheme = art.scheme
    fc = records_to_features(records, scheme, index=histories.customer_ids)
    features = model_features(histories, None, days, fc, season=season, repeat=repeat)
    probs = art.models[artifact.AUGMENTED].predict_proba(features)
    purchase = 1.0 - probs[:, 0]
    frame = pd.DataFrame({
        "customer_id": histories.customer_ids,
        "anchor": str(anchor),
        "status": [r.status for r in records],
        "reason": [r.reason for r in records],
        "provider": [r.provider for r in records],
        "forecaster_model": [r.model for r in records],
        "prompt_version": [r.prompt_version for r in records],
    })
    for bid, column in zip(scheme.ids, probability_feature_names(scheme)):
        frame[f"forecaster_p_{bid}"] = fc[column].to_numpy()
    frame["forecaster_expected_spend"] = fc[expected_spend_feature()].to_numpy()
    frame["segment"] = [r.forecast.segment.value if r.forecast else None for r in records]
    frame["trend"] = [r.forecast.trend.value if r.forecast else None for r in records]
    frame["rationale"] = [r.forecast.rationale if r.forecast else None for r in records]
    for j, bid in enumerate(scheme.ids):
        frame[f"p_{bid}"] = probs[:, j]
    frame["purchase_prob"] = purchase
    # nullable: a customer without a forecast has no decision and no flag (NA, not False)
    frame["decision"] = pd.array(purchase >= art.threshold(artifact.AUGMENTED), dtype="boolean")
    frame["top20_target"] = pd.array(np.full(len(frame), pd.NA), dtype="boolean")
    frame["expected_spend"] = spend_from_probs(probs, art.representative_spend)
    return frame


def days_of(days: PurchaseDays, customer_ids: np.ndarray) -> PurchaseDays:
    """The purchase days of the consecutive (sorted) ``customer_ids`` only: a view of
    ``days``, so a chunk's timing features do not scan the whole log."""
    if not len(customer_ids):
        return days
    first, last = days.customer_ids.searchsorted([customer_ids[0], customer_ids[-1]], side="left")
    last += int(last < len(days.customer_ids) and days.customer_ids[last] == customer_ids[-1])
    lo, hi = np.searchsorted(days.code, [first, last], side="left")
    return PurchaseDays(days.customer_ids[first:last], days.code[lo:hi] - first, days.day[lo:hi], days.amount[lo:hi])


def trained_settings(art: artifact.Artifact, forecaster: ForecasterChoice | None) -> LLMForecaster:
    """The settings a trained model's forecaster is opened with: ``forecaster``'s (by default
    the environment's endpoint), the model name defaulting to the one it was trained with.
    UserError when ``forecaster`` names another provider than the model was trained with."""
    info = art.config["forecaster"]
    trained = info["provider"]
    name, settings = resolve(forecaster) if forecaster is not None else (trained, LLMForecaster())
    if name != trained:  # before an LLM client is set up for the wrong provider
        raise UserError(f"--provider {name}: the model in {art.name} was trained with the {trained} "
                        f"forecaster; pass --provider {trained} or a model trained with {name}")
    return dataclasses.replace(settings, provider=trained, model=settings.model or info["model"])


def check_output(out: Path, force: bool) -> None:
    """UserError unless ``out`` is a .parquet/.csv path that may be written (see
    :func:`forecaster.destination.check_file`)."""
    destination.check_file(out, OUTPUT_SUFFIXES, force)


def write_atomically(frame: pd.DataFrame, out: Path, force: bool) -> None:
    """Write next to ``out`` and rename (:func:`forecaster.destination.write_file`): a killed run
    never leaves a half-written file. CSV text cells that a spreadsheet would run as a formula
    are neutralised; Parquet keeps the values as they are."""
    check_output(out, force)  # again: the file may have appeared during the run
    if out.suffix.lower() == ".csv":
        safe = destination.neutralise_formulas(frame)
        destination.write_file(out, lambda tmp: safe.to_csv(tmp, index=False))
    else:
        destination.write_file(out, lambda tmp: frame.to_parquet(tmp, index=False))
