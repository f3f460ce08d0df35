"""Which forecaster sits in the LLM's seat: the offline ``empirical`` one (NOT an LLM) or an
OpenAI-compatible ``llm``. Both are turned into the same feature columns and records.

This is where the LLM stage's own errors (``llm.errors.LLMError``: no model or key, quota,
an endpoint that never answers) become the command line's one-line :class:`UserError`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from forecaster.errors import UserError
from forecaster.pipeline import ForecastFn, empirical_forecast_fn
from llm.errors import LLMError
from models import empirical
from models.empirical import EmpiricalForecaster
from narrator.panel import HistoryBatch, MonthlyPanel
from structurer.features import records_to_features
from structurer.schema import BucketScheme, ForecastRecord

PROVIDERS = ("empirical", "llm")
EMPIRICAL_NOTE = "통계 규칙 기반 예측기(EmpiricalForecaster)이며 LLM이 아닙니다."


@dataclass
class LLMOptions:
    """The command line's LLM settings (flags over OPENAI_* / FORECASTER_MODEL)."""

    model: str | None = None
    base_url: str | None = None
    concurrency: int = 8
    cache_dir: Path | None = None
    timeout_s: float = 60.0


@contextmanager
def _llm_errors_as_user_errors() -> Iterator[None]:
    """``llm`` never imports ``forecaster``: its errors become the one-line user error here."""
    try:
        yield
    except LLMError as exc:
        raise UserError(str(exc)) from exc


@dataclass
class Provider:
    """A forecaster factory for one scheme, plus what every report must say about it."""

    name: str
    scheme: BucketScheme
    llm: LLMOptions = field(default_factory=LLMOptions)
    progress: Callable[[ForecastRecord], None] | None = None  # called once per answered customer

    def __post_init__(self) -> None:
        if self.name not in PROVIDERS:
            raise UserError(f"--provider {self.name}: choose one of {', '.join(PROVIDERS)}")
        self._llm = self._make_llm() if self.name == "llm" else None

    def _make_llm(self):
        from llm.forecaster import LLMForecaster

        with _llm_errors_as_user_errors():
            return LLMForecaster(self.scheme, model=self.llm.model, base_url=self.llm.base_url,
                                 concurrency=self.llm.concurrency, cache_dir=self.llm.cache_dir,
                                 timeout=self.llm.timeout_s)

    @property
    def info(self) -> dict:
        if self._llm is None:
            return {"provider": "empirical", "model": empirical.MODEL_NAME,
                    "prompt_version": empirical.PROMPT_VERSION, "note": EMPIRICAL_NOTE}
        return {"provider": "llm", "model": self._llm.model, "prompt_version": self._llm.prompt_version,
                "endpoint": self._llm.config.endpoint}

    @property
    def ledger(self) -> dict | None:
        return None if self._llm is None else self._llm.ledger.summary()

    @property
    def llm_forecaster(self):
        return self._llm

    def records(self, batch: HistoryBatch, cut: MonthlyPanel) -> list[ForecastRecord]:
        """One record per customer of the batch, in order."""
        if self._llm is None:
            return EmpiricalForecaster(self.scheme).fit(cut).forecast_many(batch)
        with _llm_errors_as_user_errors():
            return self._llm.forecast_many(batch, progress=self.progress)

    def forecast_fn(self) -> ForecastFn:
        """Anchor -> feature frame, the forecaster refitted/asked with that anchor's past only."""

        if self._llm is None:  # vectorised fast path, same numbers as the records
            return empirical_forecast_fn(self.scheme)

        def forecast(anchor: pd.Period, batch: HistoryBatch, cut: MonthlyPanel) -> pd.DataFrame:
            frame = records_to_features(self.records(batch, cut), self.scheme)
            frame.index = pd.Index(batch.customer_ids, name="customer_id")
            return frame

        return forecast
