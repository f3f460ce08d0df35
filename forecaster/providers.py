"""Which forecaster sits in the LLM's seat, chosen by name from :data:`PROVIDERS`: the
offline ``empirical`` one (NOT an LLM) or an OpenAI-compatible ``llm``. Every provider is a
:class:`structurer.protocol.Forecaster`; a new one is a class implementing it (one file) and
one line here. Nothing outside this registry asks which provider it holds.

This is where the LLM stage's own errors (``llm.errors.LLMError``: no model or key, quota,
an endpoint that never answers) become the command line's one-line :class:`UserError`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pandas as pd

from forecaster import progress as progress_hook
from forecaster.errors import UserError
from forecaster.pipeline import ForecastFn
from llm.config import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S, check_max_tokens, check_timeout
from llm.errors import LLMError
from models.empirical import DEFAULT_SETTINGS, EmpiricalForecaster, EmpiricalSettings
from narrator.panel import HistoryBatch, MonthlyPanel
from structurer.protocol import Forecaster, Population, Progress, ProviderInfo
from structurer.schema import BucketScheme, ForecastRecord


@dataclass(frozen=True)
class LLMForecaster:
    """An OpenAI-compatible LLM in the forecaster's seat, configured in code; the command line
    builds the same object from ``--llm-model``, ``--base-url``, ``--concurrency`` and
    ``--cache-dir``. Nothing is sent when it is made: a run opens it for its bucket scheme.

    Parameters: ``model`` (default ``$FORECASTER_MODEL``), ``base_url`` (default
    ``$OPENAI_BASE_URL``, else OpenAI; the key is always ``$OPENAI_API_KEY``, never an
    argument, so that it cannot land in a notebook), ``concurrency`` (requests in flight),
    ``cache_dir`` (the response cache; default the user cache folder), ``timeout_s`` (seconds
    per request), ``max_tokens`` (the longest answer asked for; part of every request and so of
    its cache key), ``provider`` (the registered name, :data:`PROVIDERS`), ``mode`` (``"live"``:
    one request per prompt as the run goes; ``"batch"``: every prompt of the run first
    through the provider's batch jobs, OpenAI's Batch API at half the price and within 24
    hours, resumed from the job ids on disk when a run is killed, then the live run asks only
    what the jobs did not answer; ``llm/batch.py``) and ``poll_interval_s`` (how often a
    batch job is asked where it stands).

    Example::

        fc.evaluate(dataset, forecaster=fc.LLMForecaster(model="gpt-4o-mini", concurrency=16),
                    budget_usd=5.0)
    """

    model: str | None = None
    base_url: str | None = None
    concurrency: int = 8
    cache_dir: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tokens: int = DEFAULT_MAX_TOKENS
    provider: str = "llm"
    mode: str = "live"
    poll_interval_s: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in LLM_MODES:
            raise UserError(f"--llm-mode {self.mode}: choose one of {', '.join(LLM_MODES)}")
        with _llm_errors_as_user_errors():  # before any data is read
            check_timeout(self.timeout_s)
            check_max_tokens(self.max_tokens)


LLM_MODES = ("live", "batch")


ProviderFactory = Callable[[BucketScheme, LLMForecaster], Forecaster]
ForecasterChoice = str | LLMForecaster  # a registered provider's name, or the LLM configured in code


@dataclass(frozen=True)
class Registration:
    """How a provider is opened for a scheme, and whether it is an LLM: known from the name
    alone, because a report states it for a run whose provider is no longer open."""

    open: ProviderFactory
    is_llm: bool
    # ``open`` also takes ``settings=`` (EmpiricalSettings: a run's tuned ones, models.tuning)
    takes_settings: bool = False

    def opened(self, scheme: BucketScheme, options: LLMForecaster, settings: EmpiricalSettings) -> Forecaster:
        """The forecaster for ``scheme``; ``settings`` reach only a provider that takes them."""
        return self.open(scheme, options, settings=settings) if self.takes_settings else self.open(scheme, options)


def _open_empirical(scheme: BucketScheme, options: LLMForecaster,
                    settings: EmpiricalSettings = DEFAULT_SETTINGS) -> Forecaster:
    return EmpiricalForecaster.from_settings(scheme, settings)  # it asks no one: the LLM settings do not apply


def _open_llm(scheme: BucketScheme, options: LLMForecaster) -> Forecaster:
    from llm.forecaster import LLMForecaster as Client  # heavy (openai): only when an LLM is chosen

    return Client(scheme, model=options.model, base_url=options.base_url, concurrency=options.concurrency,
                  cache_dir=options.cache_dir, timeout=options.timeout_s, max_tokens=options.max_tokens)


PROVIDERS: dict[str, Registration] = {
    "empirical": Registration(_open_empirical, is_llm=False, takes_settings=True),
    "llm": Registration(_open_llm, is_llm=True),
}
DEFAULT_PROVIDER = "empirical"  # also the provider of explain's default model


def registration(name: str) -> Registration:
    """The registered provider ``name``; UserError naming the choices otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UserError(f"--provider {name}: choose one of {', '.join(PROVIDERS)}") from None


def resolve(choice: ForecasterChoice) -> tuple[str, LLMForecaster]:
    """The provider name and LLM settings a choice stands for: ``"empirical"``, ``"llm"`` (the
    LLM from the environment) or an :class:`LLMForecaster`."""
    if isinstance(choice, LLMForecaster):
        return choice.provider, choice
    if isinstance(choice, str):
        return choice, LLMForecaster()
    raise UserError(f"forecaster={choice!r}: give a provider name ({', '.join(PROVIDERS)}) or fc.LLMForecaster(...)")


@contextmanager
def _llm_errors_as_user_errors() -> Iterator[None]:
    """``llm`` never imports ``forecaster``: its errors become the one-line user error here."""
    try:
        yield
    except LLMError as exc:
        raise UserError(str(exc)) from exc


@dataclass
class Provider:
    """The provider ``name`` opened for one scheme: its forecaster (:attr:`forecaster`, for
    the ledger, the dry run and the narrative) and what every run asks of it. ``empirical``
    are the empirical forecaster's settings (a run's tuned ones, :mod:`models.tuning`); an
    LLM provider does not read them."""

    name: str
    scheme: BucketScheme
    llm: LLMForecaster = field(default_factory=LLMForecaster)
    progress: Progress | None = None  # called as customers are answered
    empirical: EmpiricalSettings = DEFAULT_SETTINGS

    @classmethod
    def chosen(cls, choice: ForecasterChoice, scheme: BucketScheme,
               empirical: EmpiricalSettings = DEFAULT_SETTINGS) -> "Provider":
        """The provider a choice names (see :func:`resolve`), opened for ``scheme``; an
        empirical one with ``empirical``'s settings."""
        name, settings = resolve(choice)
        return cls(name, scheme, settings, empirical=empirical)

    def __post_init__(self) -> None:
        chosen = registration(self.name)
        self.is_llm = chosen.is_llm
        with _llm_errors_as_user_errors():
            self.forecaster: Forecaster = chosen.opened(self.scheme, self.llm, self.empirical)

    @property
    def info(self) -> ProviderInfo:
        """What artifacts and reports record about the provider."""
        return self.forecaster.describe()

    def ledger_summary(self) -> dict | None:
        """The LLM usage of the runs so far, as a report states it; None for a forecaster that
        asks no one."""
        ledger = self.forecaster.ledger
        return None if ledger is None else ledger.summary()

    def fitted(self, cut: MonthlyPanel) -> Forecaster:
        """The forecaster fitted on ``cut`` (the empirical one learns its population rates
        from the whole cut panel: fit once per run, not once per chunk of customers)."""
        with _llm_errors_as_user_errors():
            return self.forecaster.fit(cut)

    def population(self, cut: MonthlyPanel) -> Population:
        """What :meth:`fitted` learns from ``cut``, as a summary that adds over groups of customers."""
        return self.forecaster.population(cut)

    def fitted_from(self, population: Population) -> Forecaster:
        """The forecaster fitted on the summed :meth:`population` of a whole cut panel."""
        with _llm_errors_as_user_errors():
            return self.forecaster.fit_population(population)

    def records(self, batch: HistoryBatch, fitted: Forecaster) -> list[ForecastRecord]:
        """One record per customer of the batch, in order, from ``fitted`` (:meth:`fitted`)."""
        with _llm_errors_as_user_errors():
            return fitted.forecast_many(batch, progress=self.progress)

    def features(self, batch: HistoryBatch, cut: MonthlyPanel) -> pd.DataFrame:
        """The forecaster columns of the batch by customer id, the forecaster fitted on ``cut``."""
        with _llm_errors_as_user_errors():
            return self.forecaster.fit(cut).forecast_features(batch)

    def answer_ahead(self, batches: Iterable[HistoryBatch]) -> None:
        """In batch mode, answer every prompt of ``batches`` (all that the run will ask)
        through provider batch jobs into the response cache, so that the live run finds them
        there; nothing in live mode or for a forecaster that asks no one."""
        if not self.is_llm or self.llm.mode != "batch":
            return
        from llm.batch import run_batch_jobs  # heavy (openai): only in batch mode

        with _llm_errors_as_user_errors():
            outcome = run_batch_jobs(self.forecaster, *batches, poll_interval_s=self.llm.poll_interval_s,
                                     progress=_report_batch_progress)
        progress_hook.notice(
            f"배치 작업: 요청 {outcome.prompts:,}건 중 {outcome.answered + outcome.reasked:,}건에 답을 받았습니다"
            f"(다시 물어 받은 {outcome.reasked:,}건 포함). 실패한 {len(outcome.failures):,}건은 실시간으로 다시 묻습니다.")

    def forecast_fn(self) -> ForecastFn:
        """Anchor -> feature frame, the forecaster refitted/asked with that anchor's past only."""
        return lambda anchor, batch, cut: self.features(batch, cut)


def _report_batch_progress(where: object) -> None:
    """A :class:`llm.batch_jobs.BatchProgress` after each poll, as one progress step."""
    statuses = ", ".join(sorted(set(where.statuses)))
    progress_hook.step(f"배치 작업 {where.finished_jobs}/{where.jobs}개 완료, 요청 {where.done:,}/{where.total:,}건 "
                       f"처리됨 ({statuses})")
