"""`forecaster batch`: every customer of one anchor through the forecaster and the trained
model. With an LLM provider a re-run after a kill resumes from the response cache: the
answers already received are not asked for again."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from forecaster import artifact
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.providers import LLMOptions, Provider
from models.arms import spend_from_probs
from models.features import baseline_features
from narrator.panel import HistoryBatch, MonthlyPanel
from structurer.features import records_to_features
from structurer.schema import ForecastRecord

TOP_SHARE = 0.2


@dataclass
class BatchJob:
    art: artifact.Artifact
    provider: Provider
    cut: MonthlyPanel
    histories: HistoryBatch
    anchor: pd.Period

    @classmethod
    def open(cls, model_dir: Path, dataset: Dataset, anchor: pd.Period, limit: int | None,
             llm_model: str | None, base_url: str | None, concurrency: int, cache_dir: Path | None) -> "BatchJob":
        art = artifact.load(model_dir)
        info = art.config["forecaster"]
        if dataset.currency != art.config["currency"]:
            raise UserError(f"{model_dir} was trained on {art.config['currency']} amounts but the data is in "
                            f"{dataset.currency}; retrain on this data or pass the matching --currency")
        provider = Provider(info["provider"], art.scheme,
                            LLMOptions(model=llm_model or (info["model"] if info["provider"] == "llm" else None),
                                       base_url=base_url, concurrency=concurrency, cache_dir=cache_dir))
        if provider.info["prompt_version"] != info["prompt_version"]:
            raise UserError(f"{model_dir} was trained with prompt {info['prompt_version']!r}, the running code "
                            f"uses {provider.info['prompt_version']!r}; retrain with `forecaster train`")
        panel = dataset.panel
        try:
            panel.check_anchor(anchor)
        except ValueError as exc:
            raise UserError(f"--anchor: {exc}") from exc
        cut = panel.before(anchor)
        shown = cut if limit is None else MonthlyPanel(
            cut.customer_ids[:limit], cut.start, cut.spend[:limit], cut.orders[:limit], cut.first_idx[:limit],
            cut.currency)
        # --limit trims who is forecast, not what the forecaster learns its population rates from
        histories = HistoryBatch.from_panel(shown, anchor, art.config["history_months"])
        return cls(art, provider, cut, histories, anchor)

    def _records(self, console: Console) -> list[ForecastRecord]:
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                      TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("예측 중", total=len(self.histories))
            self.provider.progress = lambda record: bar.advance(task)
            records = self.provider.records(self.histories, self.cut)
            bar.update(task, completed=len(self.histories))
        if self.provider.llm_forecaster is not None:
            console.print(self.provider.llm_forecaster.ledger.render())
        return records

    def run(self, console: Console) -> pd.DataFrame:
        records = self._records(console)
        scheme = self.art.scheme
        base = baseline_features(self.histories)
        fc = records_to_features(records, scheme)
        fc.index = base.index
        features = base.join(fc)
        final = self.art.models[artifact.AUGMENTED]
        probs = final.predict_proba(features)
        purchase = 1.0 - probs[:, 0]
        threshold = self.art.threshold(artifact.AUGMENTED)
        cutoff = np.quantile(purchase, 1 - TOP_SHARE) if len(purchase) else 0.0
        frame = pd.DataFrame({
            "customer_id": self.histories.customer_ids,
            "anchor": str(self.anchor),
            "status": [r.status for r in records],
            "reason": [r.reason for r in records],
            "provider": [r.provider for r in records],
            "forecaster_model": [r.model for r in records],
            "prompt_version": [r.prompt_version for r in records],
        })
        for j, bid in enumerate(scheme.ids):
            frame[f"forecaster_p_{bid}"] = fc[f"fc_p_{bid}"].to_numpy()
        frame["forecaster_expected_spend"] = fc["fc_expected_spend"].to_numpy()
        frame["segment"] = [r.forecast.segment.value if r.forecast else None for r in records]
        frame["trend"] = [r.forecast.trend.value if r.forecast else None for r in records]
        frame["rationale"] = [r.forecast.rationale if r.forecast else None for r in records]
        for j, bid in enumerate(scheme.ids):
            frame[f"p_{bid}"] = probs[:, j]
        frame["purchase_prob"] = purchase
        frame["decision"] = purchase >= threshold
        frame["top20_target"] = purchase >= cutoff
        frame["expected_spend"] = spend_from_probs(probs, self.art.representative_spend)
        return frame


def write_atomically(frame: pd.DataFrame, out: Path) -> None:
    """Write next to ``out`` and rename: a killed run never leaves a half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        if out.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
