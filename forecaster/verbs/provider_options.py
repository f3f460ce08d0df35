"""Forecaster-provider options shared by train, batch, evaluate, explain and ``llm
export``/``import``: the endpoint and request ones of every verb that can ask an LLM as one
:class:`LLMEndpointOptions` bundle, those of train, batch and evaluate as one
:class:`LLMRunOptions` bundle holding it (see :func:`forecaster.verbs.options.with_options`),
turned into the API's forecaster choice, its consent to spend (``--yes`` or the question) and
its failure threshold (``--max-failed``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, TypeVar

import typer
from rich.console import Console

from forecaster.spending import DEFAULT_MAX_FAILED, Confirm
from llm.config import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S, check_max_tokens, check_timeout
from llm.errors import LLMConfigError

if TYPE_CHECKING:
    from forecaster.providers import ForecasterChoice
    from llm.ledger import DryRunEstimate

_PANEL = "예측기 (forecaster)"

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
_Value = TypeVar("_Value")


def _checked(convert: Callable[[str], _Value], check: Callable[[_Value], _Value], kind: str) -> Callable[[str], _Value]:
    """A Typer parser: ``convert`` the text, then ``check`` it (llm.config's rule, also the API's)."""
    def parse(text: str | _Value) -> _Value:
        try:
            return check(convert(str(text).strip()))
        except ValueError as exc:  # LLMConfigError is a ValueError too
            message = str(exc) if isinstance(exc, LLMConfigError) else f"'{text}' is not {kind}"
            raise typer.BadParameter(message) from None
    return parse


LLMTimeoutOption = Annotated[float, typer.Option(
    "--llm-timeout", metavar="SECONDS", parser=_checked(float, check_timeout, "a number of seconds"),
    help="Seconds one LLM request may take before it is retried as a timeout.", rich_help_panel=_PANEL)]
LLMMaxTokensOption = Annotated[int, typer.Option(
    "--llm-max-tokens", metavar="N", parser=_checked(int, check_max_tokens, "a whole number of tokens"),
    help="The longest answer asked of the LLM, in tokens (max_tokens; part of every request, so of its cache key).",
    rich_help_panel=_PANEL)]
LLMModeOption = Annotated[str, typer.Option(
    "--llm-mode", metavar="live|batch",
    help="live: one request per prompt as the run goes; batch: the provider's batch jobs first (OpenAI Batch API, "
         "half the price, up to 24 h; a killed run resumes from the job ids on disk), then live for what is left.",
    rich_help_panel=_PANEL)]
YesOption = Annotated[bool, typer.Option(
    "--yes", help="Do not ask before an LLM run whose estimated cost is high.", rich_help_panel=_PANEL)]


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
class LLMEndpointOptions:
    """Which LLM is asked and how each request is made, on every verb that can ask one (the
    request-file verbs too: the answer length is part of every cache key); each field's
    annotation is its option."""

    llm_model: LLMModelOption = None
    base_url: BaseURLOption = None
    cache_dir: CacheDirOption = None
    llm_timeout: LLMTimeoutOption = DEFAULT_TIMEOUT_S
    llm_max_tokens: LLMMaxTokensOption = DEFAULT_MAX_TOKENS

    def choice(self, provider: str, concurrency: int = 8, mode: str = "live") -> ForecasterChoice:
        """The API's forecaster for ``--provider``: its name, or for an LLM provider the
        :class:`~forecaster.providers.LLMForecaster` these options configure."""
        from forecaster.providers import LLMForecaster, registration  # heavy: only when a verb runs

        if not registration(provider).is_llm:
            return provider
        return LLMForecaster(model=self.llm_model, base_url=self.base_url, concurrency=concurrency,
                             cache_dir=self.cache_dir, timeout_s=self.llm_timeout, max_tokens=self.llm_max_tokens,
                             provider=provider, mode=mode)


@dataclass(frozen=True)
class LLMRunOptions:
    """The LLM options of train, batch and evaluate; each field's annotation is its option."""

    endpoint: LLMEndpointOptions = field(default_factory=LLMEndpointOptions)
    concurrency: ConcurrencyOption = 8
    llm_mode: LLMModeOption = "live"
    yes: YesOption = False
    max_failed: MaxFailedOption = DEFAULT_MAX_FAILED

    def choice(self, provider: str) -> ForecasterChoice:
        """The API's forecaster for ``--provider`` (see :meth:`LLMEndpointOptions.choice`)."""
        return self.endpoint.choice(provider, self.concurrency, self.llm_mode)

    def consent(self) -> Confirm:
        """``--yes``, or the question asked when a run's estimate is above the threshold."""
        return True if self.yes else ask_before_spending


def ask_before_spending(estimate: DryRunEstimate) -> bool:
    """The question before an LLM run whose estimate is above the threshold or unknown (the
    estimate itself is already printed)."""
    return typer.confirm("이대로 LLM을 호출할까요?", default=False, err=True)
