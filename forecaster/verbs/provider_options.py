"""Forecaster-provider options shared by train, batch, evaluate and explain (the LLM ones of
train, batch and evaluate as one :class:`LLMRunOptions` bundle, see
:func:`forecaster.verbs.options.with_options`), the cost question before an LLM run, and the
failure threshold after one (``--max-failed``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterable

import typer
from rich.console import Console

from forecaster.errors import LLMRunFailed, UserError

if TYPE_CHECKING:
    import pandas as pd

    from forecaster.pipeline import ForecastFn
    from forecaster.providers import LLMOptions, Provider
    from narrator.panel import HistoryBatch, MonthlyPanel
    from structurer.schema import BucketScheme

_PANEL = "예측기 (forecaster)"
# Above this estimated cost (USD) an LLM run asks before sending anything, unless --yes.
CONFIRM_COST_USD = 1.0

ProviderOption = Annotated[str, typer.Option(
    "--provider", help="empirical (offline, NOT an LLM; default) or llm (OpenAI-compatible endpoint).",
    rich_help_panel=_PANEL)]
LLMModelOption = Annotated[str | None, typer.Option(
    "--llm-model", help="LLM model name (default: $FORECASTER_MODEL).", rich_help_panel=_PANEL)]
BaseURLOption = Annotated[str | None, typer.Option(
    "--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI).",
    rich_help_panel=_PANEL)]
ConcurrencyOption = Annotated[int, typer.Option(
    "--concurrency", min=1, help="LLM requests in flight at once.", rich_help_panel=_PANEL)]
CacheDirOption = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Folder of the LLM response cache (default: the user cache folder).",
    rich_help_panel=_PANEL)]
YesOption = Annotated[bool, typer.Option(
    "--yes", help="Do not ask before an LLM run whose estimated cost is high.", rich_help_panel=_PANEL)]
DEFAULT_MAX_FAILED = 0.10  # above this share of failed LLM forecasts a run stops with exit status 2


def parse_share(text: str | float) -> float:
    """``0.1`` or ``10%`` -> 0.1; a share between 0 and 1."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise typer.BadParameter(f"'{raw}' is not a share: give e.g. 0.1 or 10%") from None
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter(f"'{raw}' is outside 0..1 (0%..100%)")
    return value


MaxFailedOption = Annotated[float, typer.Option(
    "--max-failed", metavar="SHARE", parser=parse_share,
    help="Stop with exit status 2 when more than this share of the LLM forecasts failed (0..1 or 10%). "
         "batch still writes its rows; train and evaluate write nothing.", rich_help_panel=_PANEL)]

err = Console(stderr=True)


@dataclass(frozen=True)
class LLMRunOptions:
    """The LLM options of train, batch and evaluate; each field's annotation is its option."""

    llm_model: LLMModelOption = None
    base_url: BaseURLOption = None
    concurrency: ConcurrencyOption = 8
    cache_dir: CacheDirOption = None
    yes: YesOption = False
    max_failed: MaxFailedOption = DEFAULT_MAX_FAILED

    def endpoint(self) -> LLMOptions:
        """The settings a provider is opened with."""
        from forecaster.providers import LLMOptions  # heavy: only when a verb runs

        return LLMOptions(model=self.llm_model, base_url=self.base_url, concurrency=self.concurrency,
                          cache_dir=self.cache_dir)


def make_provider(name: str, scheme: BucketScheme, llm: LLMRunOptions) -> Provider:
    from forecaster.providers import Provider  # heavy: only when a verb runs

    return Provider(name, scheme, llm.endpoint())


def confirm_llm_cost(provider: Provider, batches: Iterable[HistoryBatch], yes: bool) -> None:
    """Print the dry-run estimate of a run that sends something; ask when it costs more than
    the threshold (or when the cost is unknown) unless ``--yes``. ``batches`` are only read
    when the provider has something to estimate."""
    estimate = provider.forecaster.dry_run(h for batch in batches for h in batch)
    if estimate is None:
        return
    err.print(estimate.render())
    cost = estimate.summary().get("cost_usd")
    if yes or (cost is not None and cost <= CONFIRM_COST_USD):
        return
    if not typer.confirm("이대로 LLM을 호출할까요?", default=False, err=True):
        raise UserError("LLM run cancelled before any call was sent (pass --yes to skip the question)")


def _percent(share: float) -> str:
    return f"{100 * share:.3g}%"  # 10%, 12.5%, 100%, 0.0426%: three digits, never "0%" for a failure


def check_failed_share(provider: Provider, max_failed: float, consequence: str) -> None:
    """When more than ``max_failed`` of the LLM forecasts so far failed: print the failures
    by reason, then raise :class:`LLMRunFailed`, whose line says ``consequence`` (what was
    or was not written). Nothing to check for a forecaster without a ledger (it asks no one)."""
    ledger = provider.forecaster.ledger
    if ledger is None or ledger.failed_share <= max_failed:
        return
    err.print(ledger.render_failures())
    kept = f" 성공한 {ledger.ok:,}건은 캐시에 있어 다시 실행하면 실패한 예측만 다시 묻습니다." if ledger.ok else ""
    raise LLMRunFailed(
        f"LLM 예측 {ledger.customers:,}건 중 {ledger.failed:,}건({_percent(ledger.failed_share)})이 실패해 "
        f"--max-failed {_percent(max_failed)}를 넘었습니다. {consequence}{kept} "
        "실패를 감수하려면 --max-failed를 높이세요."
    )


def failure_checked(provider: Provider, max_failed: float, consequence: str) -> ForecastFn:
    """The provider's forecast function, checked after each anchor's LLM stage over every
    forecast so far: a run that is failing stops before it pays for the remaining anchors,
    and before a model or report is built from it; the last check covers the whole run."""
    forecast = provider.forecast_fn()
    if provider.forecaster.ledger is None:
        return forecast

    def checked(anchor: pd.Period, batch: HistoryBatch, cut: MonthlyPanel) -> pd.DataFrame:
        frame = forecast(anchor, batch, cut)
        check_failed_share(provider, max_failed, consequence)
        return frame

    return checked
