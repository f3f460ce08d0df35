"""The estimators' own errors: what the data cannot support, as opposed to a caller's
mistake (which stays a plain ``ValueError``)."""

from __future__ import annotations

from prompts.errors import ForecasterError


class ModelError(ForecasterError):
    """An estimator cannot be fitted or scored on the data given."""


class InsufficientData(ModelError, ValueError):
    """Too few rows, purchases or months to fit, tune or score (the message says which)."""
