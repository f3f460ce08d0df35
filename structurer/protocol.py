"""The ``Forecaster`` protocol every provider in the LLM's seat implements (an LLM or not).

The application (``forecaster/``) fits a provider on the panel cut before an anchor and asks
it for that anchor's records or feature columns; it never asks which provider it holds.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, NotRequired, Protocol, Self, TypedDict, runtime_checkable

import pandas as pd

from narrator.panel import CustomerHistory, HistoryBatch, MonthlyPanel
from structurer.schema import ForecastRecord

Histories = HistoryBatch | Iterable[CustomerHistory]
Progress = Callable[[ForecastRecord], None]


class ProviderInfo(TypedDict):
    """What an artifact's config.json ("forecaster") and a report record about the provider."""

    provider: str
    model: str
    prompt_version: str
    note: NotRequired[str]  # what a forecaster that is not an LLM says it is
    endpoint: NotRequired[str]  # where an LLM is asked


class CostEstimate(Protocol):
    """What a run would send and cost, before anything is sent."""

    def render(self) -> Any: ...  # a rich renderable, printed before the run

    def summary(self) -> dict: ...  # "cost_usd": None when the price is unknown


class RunLedger(Protocol):
    """What the run so far sent, received and cost, and how many customers failed."""

    customers: int
    ok: int
    failed: int

    @property
    def failed_share(self) -> float: ...

    def summary(self) -> dict: ...

    def render(self) -> Any: ...  # a rich renderable

    def render_failures(self) -> Any: ...


class Population(Protocol):
    """A forecaster's summary of a cut panel (:meth:`Forecaster.population`)."""

    def __add__(self, other: Self) -> Self: ...


class NoPopulation:
    """The summary of a forecaster that learns nothing from the cut (an LLM reads each
    customer's own history)."""

    def __add__(self, other: "NoPopulation") -> "NoPopulation":
        return self


@runtime_checkable
class Forecaster(Protocol):
    provider: str  # the name records carry; the registry's name for it

    # a run's usage (calls, tokens, cost, failures); None for a forecaster that asks no one
    ledger: RunLedger | None

    def fit(self, cut: MonthlyPanel) -> Self:
        """Learn what it needs from ``cut``, a panel already cut before the anchor:
        ``fit_population(population(cut))``."""
        ...

    def population(self, cut: MonthlyPanel) -> Population:
        """What :meth:`fit` learns from ``cut``, as a summary that adds up exactly over
        groups of its customers (``a + b``): a batch made partition by partition fits on
        the sum of its partitions' summaries and gets the whole panel's fit."""
        ...

    def fit_population(self, population: Population) -> Self:
        """Learn from the summary of a whole cut panel (:meth:`population`)."""
        ...

    def forecast_many(self, histories: Histories, progress: Progress | None = None) -> list[ForecastRecord]:
        """One record per history, in order; a failure is a ``failed`` record, never a gap.
        ``progress`` is called with records as they are answered."""
        ...

    def forecast_features(self, batch: HistoryBatch) -> pd.DataFrame:
        """The forecaster feature columns (``fc_``) of ``batch``, indexed by customer id."""
        ...

    def describe(self) -> ProviderInfo: ...

    def dry_run(self, histories: Histories) -> CostEstimate | None:
        """What forecasting ``histories`` would send and cost; None when it costs nothing."""
        ...

    def narrative(self, history: CustomerHistory) -> str:
        """The text about one customer that this forecaster reads (an LLM is sent)."""
        ...
