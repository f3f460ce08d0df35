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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import artifact, destination, progress
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.pipeline import model_features
from forecaster.providers import ForecasterChoice, LLMForecaster, Provider, resolve
from forecaster.top_share import top_share
from models.arms import spend_from_probs
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
    tx = dataset.transactions
    bought = np.isin(ids, tx.loc[tx["amount"] > 0, "customer_id"].unique())
    first = panel.months[np.where(later, first_idx, 0)]
    first_text = pd.Series(first.year.astype(str)) + "년 " + pd.Series(first.month.astype(str)) + "월"
    reason = np.where(
        later, ("첫 구매가 " + first_text + f"이라 {format_month(anchor)} 예측에 쓸 이전 기록이 없습니다").to_numpy(),
        np.where(bought, "구매가 모두 분석에 쓰지 않은 달(제외한 불완전한 달 등)에 있어 이전 기록이 없습니다",
                 "구매 기록이 없습니다(반품이나 0원 거래만 있음)"))
    return pd.DataFrame({"customer_id": ids, "anchor": str(anchor),
                         "status": np.where(later | bought, NO_HISTORY, NO_PURCHASE), "reason": reason})


def status_counts(frame: pd.DataFrame) -> str:
    """The closing line's tally, e.g. ``23,570명 중 23,502명 예측 완료 (구매 기록 없음 68명)``."""
    counts = frame["status"].value_counts()
    rest = [f"{STATUS_NAMES[s]} {counts[s]:,}명" for s in STATUS_NAMES if counts.get(s, 0)]
    tally = f"{len(frame):,}명 중 {int(counts.get('ok', 0)):,}명 예측 완료"
    return tally + (f" ({', '.join(rest)})" if rest else "")


@dataclass
class BatchJob:
    """One anchor's batch: ``histories`` are the customers forecast (acquired before the
    anchor), ``unforecast`` the other customers of the data, who get a row with a status."""

    art: artifact.Artifact
    provider: Provider
    cut: MonthlyPanel
    days: PurchaseDays
    histories: HistoryBatch
    anchor: pd.Period
    unforecast: pd.DataFrame

    @classmethod
    def open(cls, art: artifact.Artifact, dataset: Dataset, anchor: pd.Period, limit: int | None = None,
             forecaster: ForecasterChoice | None = None) -> "BatchJob":
        """``limit``: only the first N customers of the data (by id), forecast or not.
        ``forecaster``: see :func:`trained_settings` (a provider that asks no one ignores the
        LLM settings)."""
        info = art.config["forecaster"]
        if dataset.currency != art.config["currency"]:
            raise UserError(f"{art.name} was trained on {art.config['currency']} amounts but the data is in "
                            f"{dataset.currency}; retrain on this data or pass the matching --currency")
        provider = Provider(info["provider"], art.scheme, trained_settings(art, forecaster),
                            empirical=artifact.empirical_settings(art.config))
        if provider.info["prompt_version"] != info["prompt_version"]:
            raise UserError(f"{art.name} was trained with prompt {info['prompt_version']!r}, the running code "
                            f"uses {provider.info['prompt_version']!r}; retrain with `forecaster train`")
        panel = dataset.panel
        try:
            panel.check_anchor(anchor)
        except ValueError as exc:
            raise UserError(f"--anchor: {exc}") from exc
        cut = panel.before(anchor)
        chosen = slice(0, limit)  # ids are sorted, and the cut keeps the panel's order
        acquired = panel.first_idx[chosen] < panel.column(anchor)
        n = int(acquired.sum())  # the acquired among the first N are the cut's first n rows
        shown = cut if limit is None else cut.take(np.arange(n))
        # --limit trims who is forecast, not what the forecaster learns its population rates from
        histories = HistoryBatch.from_panel(shown, anchor, art.config["history_months"])
        unforecast = unforecast_rows(dataset, panel.customer_ids[chosen][~acquired], panel.first_idx[chosen][~acquired],
                                     anchor)
        return cls(art, provider, cut, PurchaseDays.from_transactions(dataset.transactions), histories, anchor,
                   unforecast)

    def _records(self) -> list[ForecastRecord]:
        answered = 0
        with progress.counted("예측 중", len(self.histories)) as advance:
            def one_more(record: ForecastRecord) -> None:
                nonlocal answered
                answered += 1
                advance(answered)

            self.provider.progress = one_more
            records = self.provider.records(self.histories, self.cut)
            advance(len(self.histories))
        if self.provider.forecaster.ledger is not None:
            progress.summary(self.provider.forecaster.ledger.render())
        return records

    def run(self) -> pd.DataFrame:
        """One row per customer of the data (or of the first ``--limit``), in id order."""
        if not len(self.histories):
            raise UserError(f"none of the {len(self.unforecast):,} customers has a purchase before {self.anchor}, "
                            f"so there is nobody to forecast; choose a later --anchor")
        records = self._records()
        scheme = self.art.scheme
        fc = records_to_features(records, scheme, index=self.histories.customer_ids)
        features = model_features(self.histories, self.cut, self.days, fc)
        final = self.art.models[artifact.AUGMENTED]
        probs = final.predict_proba(features)
        purchase = 1.0 - probs[:, 0]
        threshold = self.art.threshold(artifact.AUGMENTED)
        top, _ = top_share(purchase, self.histories.customer_ids)
        frame = pd.DataFrame({
            "customer_id": self.histories.customer_ids,
            "anchor": str(self.anchor),
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
        frame["decision"] = pd.array(purchase >= threshold, dtype="boolean")
        frame["top20_target"] = pd.array(top, dtype="boolean")
        frame["expected_spend"] = spend_from_probs(probs, self.art.representative_spend)
        if self.unforecast.empty:
            return frame
        every = pd.concat([frame, self.unforecast], ignore_index=True)
        return every.sort_values("customer_id", kind="stable", ignore_index=True)[frame.columns]


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
