"""Forecaster-provider options shared by train, batch, evaluate and explain."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from forecaster.errors import UserError

if TYPE_CHECKING:
    from forecaster.providers import Provider
    from narrator.panel import HistoryBatch
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

err = Console(stderr=True)


def make_provider(name: str, scheme: BucketScheme, llm_model: str | None, base_url: str | None,
                  concurrency: int, cache_dir: Path | None) -> Provider:
    from forecaster.providers import LLMOptions, Provider  # heavy: only when a verb runs

    return Provider(name, scheme, LLMOptions(model=llm_model, base_url=base_url,
                                             concurrency=concurrency, cache_dir=cache_dir))


def confirm_llm_cost(provider: Provider, batches: list[HistoryBatch], yes: bool) -> None:
    """Print the dry-run estimate of an LLM run; ask when it costs more than the threshold
    (or when the cost is unknown) unless ``--yes``."""
    if provider.llm_forecaster is None:
        return
    histories = [h for batch in batches for h in batch]
    estimate = provider.llm_forecaster.dry_run(histories)
    err.print(estimate.render())
    cost = estimate.summary().get("cost_usd")
    if yes or (cost is not None and cost <= CONFIRM_COST_USD):
        return
    if not typer.confirm("이대로 LLM을 호출할까요?", default=False, err=True):
        raise UserError("LLM run cancelled before any call was sent (pass --yes to skip the question)")
