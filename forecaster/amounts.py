"""Reading the amount column of a user's file.

Text may carry thousands separators and currency signs (``12,300원``, ``₩12,300``,
``$1,234.50``). A decimal comma (``46,30``, ``1.234,56``) is never read as thousands (4630):
it is refused naming the row, unless ``decimal_comma`` says the file writes amounts that
way, when dots are thousands separators and the comma is the decimal point. Refusing by
default (rather than guessing per file) keeps ``1,234`` meaning one thousand two hundred
and thirty-four in every Korean export.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecaster.errors import UserError
from forecaster.tables import Where

# plain pattern strings: pandas runs them in pyarrow's regex engine, not value by value
_AMOUNT_DECORATION = r"(?i)[,\s₩$원€]|KRW|USD|EUR"
# a comma followed by exactly 1-2 digits at the end ("46,30", "1.234,56 €") is a decimal
# comma; "12,300원" (3 digits) is a thousands separator
_DECIMAL_COMMA = r"\d,\d{1,2}[^\d,.]*$"


def parse_amounts(column: pd.Series, where: Where, name: str, decimal_comma: bool = False) -> pd.Series:
    """The amounts as float64; UserError naming the first row that is not a number."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(np.float64)
    else:
        text = column.astype("string").str.strip()
        if decimal_comma:  # 1.234,56 -> 1234.56
            text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        else:
            _refuse_decimal_comma(text, column, where, name)
        text = text.str.replace(_AMOUNT_DECORATION, "", regex=True)
        values = pd.to_numeric(text, errors="coerce").astype(np.float64)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        row, value = first_bad(bad, column)
        what = "the amount is empty" if pd.isna(value) or str(value).strip() == "" else \
            f"'{value}' is not a number"
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: {what}; amounts "
                        f"must be numbers (negative for returns)")
    return values


def _refuse_decimal_comma(text: pd.Series, column: pd.Series, where: Where, name: str) -> None:
    """'46,30' would read as 4630: refuse it, naming the row, unless --decimal-comma."""
    looks = text.str.contains(_DECIMAL_COMMA).fillna(False).to_numpy(dtype=bool)
    if looks.any():
        row, value = first_bad(looks, column)
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: '{value}' has a decimal comma "
                        f"(it is not {str(value).replace(',', '')}); if the file writes 46,30 for 46.30 "
                        f"(and 1.234,56 for 1234.56), pass --decimal-comma")


def first_bad(mask: np.ndarray, column: pd.Series) -> tuple[int, object]:
    """(original row position, raw value) of the first True in ``mask``."""
    i = int(np.argmax(mask))
    return int(column.index[i]), column.iloc[i]
