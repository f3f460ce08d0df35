"""Finding one customer for `narrate` and `explain` (the one look-up both verbs use), and
that customer's narrative.

An id given as a bare number also finds an id written with leading zeros (CDNOW's ``00145``
as ``145``) when exactly one id does; every other problem is one :class:`UserError` line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.datasets import Dataset
from forecaster.errors import UserError
from narrator.narrative import NarrativeTemplateError, render_narrative
from narrator.panel import HISTORY_MONTHS, NOT_ACQUIRED, MonthlyPanel, parse_month

# Ten years: a narrative longer than this is no use to a reader or an LLM, and the history
# arrays are customers x months (--history-months 100000 once allocated 17.5 GiB).
MAX_HISTORY_MONTHS = 120


def locate_customer(dataset: Dataset, customer_id: str, anchor: pd.Period) -> str:
    """The customer's id as the data writes it; UserError when the anchor is outside the
    data, the id is unknown, the customer never bought, or first bought in or after
    ``anchor`` (no history to forecast from)."""
    panel = dataset.panel
    try:
        panel.check_anchor(anchor)
    except ValueError as exc:
        raise UserError(f"--anchor: {exc} (data '{dataset.name}')") from None
    row = _row(panel, customer_id, dataset.name)
    found = str(panel.customer_ids[row])
    first = int(panel.first_idx[row])
    if first == NOT_ACQUIRED:
        dropped = dataset.coverage.dropped_month
        why = f"only returns, or purchases only in the partial month {dropped} left out" if dropped else "only returns"
        raise UserError(f"customer '{found}' has no purchase in the data '{dataset.name}' ({why}), "
                        f"so there is no history")
    if first >= panel.column(anchor):
        first_month = panel.first_month + first
        raise UserError(f"customer '{found}' made their first purchase in {first_month}, so has no history "
                        f"before {anchor}; choose --anchor {first_month + 1} or later")
    return found


def _row(panel: MonthlyPanel, customer_id: str, data_name: str) -> int:
    try:
        return panel.row_of(customer_id)
    except KeyError:
        pass
    if customer_id.isdigit():
        stripped = pd.Series(panel.customer_ids).str.lstrip("0")
        matches = np.flatnonzero((stripped == customer_id.lstrip("0")).to_numpy())
        if len(matches) == 1:
            return int(matches[0])
    examples = ", ".join(str(c) for c in panel.customer_ids[:3])
    raise UserError(f"customer '{customer_id}' is not in the data '{data_name}'; check the id "
                    f"(ids there look like {examples})")


def check_history_months(history_months: int) -> None:
    if not 1 <= history_months <= MAX_HISTORY_MONTHS:
        raise UserError(f"--history-months {history_months}: give a whole number of months from 1 to "
                        f"{MAX_HISTORY_MONTHS} (e.g. 12)")


def customer_narrative(
    dataset: Dataset,
    customer_id: str,
    anchor: str | pd.Period,
    history_months: int = HISTORY_MONTHS,
    template_dir: Path | None = None,
) -> str:
    """The narrative of one customer at one anchor; UserError for anything the user can fix."""
    anchor = parse_month(anchor)
    check_history_months(history_months)
    found_id = locate_customer(dataset, customer_id, anchor)
    history = dataset.panel.histories(anchor, history_months).get(found_id)
    try:
        return render_narrative(history, template_dir)
    except NarrativeTemplateError as exc:
        raise UserError(f"--templates: {exc}") from None
