"""The Forecaster protocol every provider implements (LLM or not)."""

from __future__ import annotations

from typing import Iterable, Protocol

from narrator.panel import CustomerHistory
from structurer.schema import ForecastRecord


class Forecaster(Protocol):
    provider: str  # "empirical" (never presented as an LLM) or "llm"

    def forecast_many(self, histories: Iterable[CustomerHistory]) -> list[ForecastRecord]:
        """One record per history, in order; a failure is a ``failed`` record, never a gap."""
        ...
