"""Before an LLM run: its price, and the consent to pay it; during and after: the share of
forecasts that failed (``max_failed``).

A run whose estimated cost is above :data:`CONFIRM_COST_USD` (or unknown) needs consent:
``confirm=True``, a ``budget_usd`` the estimate stays within, or a ``confirm`` function that
is shown the estimate and answers (the command line's question). Without it the run raises
:class:`CostNotApproved` before anything is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Union

import pandas as pd

from forecaster import progress
from forecaster.errors import LLMRunFailed, UserError

if TYPE_CHECKING:
    from forecaster.pipeline import ForecastFn
    from forecaster.providers import Provider
    from llm.ledger import DryRunEstimate
    from narrator.panel import HistoryBatch, MonthlyPanel

CONFIRM_COST_USD = 1.0  # above this estimated cost (USD) a run needs consent
DEFAULT_MAX_FAILED = 0.10  # above this share of failed LLM forecasts a run stops
Confirm = Union[bool, Callable[["DryRunEstimate"], bool]]


class CostNotApproved(UserError):
    """An LLM run would cost more than it was allowed to (nothing was sent)."""


def approve_cost(provider: Provider, batches: Iterable[HistoryBatch], confirm: Confirm = False,
                 budget_usd: float | None = None) -> None:
    """Report the dry-run estimate of a run that sends something, then let it go on only with
    consent (see the module docstring). ``batches`` (one per anchor) are handed to the
    provider's dry run whole, each narrated once, and only read when the provider has
    something to estimate; raises :class:`CostNotApproved` otherwise."""
    estimate = provider.forecaster.dry_run(batches)
    if estimate is None:
        return
    progress.summary(estimate.render())
    cost = estimate.summary().get("cost_usd")
    priced = f"${cost:,.2f}" if cost is not None else "unknown (no price for the model)"
    if budget_usd is not None:
        if cost is not None and cost <= budget_usd:
            return
        raise CostNotApproved(f"the LLM run's estimated cost {priced} is above budget_usd={budget_usd:g}; "
                              "nothing was sent: raise the budget or sample fewer customers")
    if confirm is True or (cost is not None and cost <= CONFIRM_COST_USD):
        return
    if callable(confirm):
        if confirm(estimate):
            return
        raise CostNotApproved("LLM run cancelled before any call was sent "
                              "(pass --yes, or confirm=True in Python, to skip the question)")
    raise CostNotApproved(f"the LLM run's estimated cost is {priced}, above ${CONFIRM_COST_USD:g}; nothing was "
                          "sent: pass confirm=True or a budget_usd (on the command line: --yes)")


def _percent(share: float) -> str:
    return f"{100 * share:.3g}%"  # 10%, 12.5%, 100%, 0.0426%: three digits, never "0%" for a failure


def check_failed_share(provider: Provider, max_failed: float, consequence: str) -> None:
    """When more than ``max_failed`` of the LLM forecasts so far failed: report the failures
    by reason, then raise :class:`LLMRunFailed`, whose line says ``consequence`` (what was or
    was not made). Nothing to check for a forecaster without a ledger (it asks no one)."""
    ledger = provider.forecaster.ledger
    if ledger is None or ledger.failed_share <= max_failed:
        return
    progress.summary(ledger.render_failures())
    kept = f" 성공한 {ledger.ok:,}건은 캐시에 있어 다시 실행하면 실패한 예측만 다시 묻습니다." if ledger.ok else ""
    raise LLMRunFailed(
        f"LLM 예측 {ledger.customers:,}건 중 {ledger.failed:,}건({_percent(ledger.failed_share)})이 실패해 "
        f"--max-failed {_percent(max_failed)}를 넘었습니다.", consequence,
        f"{kept} 실패를 감수하려면 --max-failed를 높이세요.")


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


def check_share(max_failed: float) -> float:
    """``max_failed`` as a share between 0 and 1 (UserError otherwise)."""
    if not 0.0 <= max_failed <= 1.0:
        raise UserError(f"max_failed={max_failed:g} is outside 0..1; give e.g. 0.1 for 10%")
    return max_failed
