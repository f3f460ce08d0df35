"""The structurer's own errors (contracts and bucket schemes)."""

from __future__ import annotations

from prompts.errors import ForecasterError


class StructurerError(ForecasterError):
    """A contract or bucket scheme cannot be built from the data given."""


class SchemeError(StructurerError, ValueError):
    """A bucket scheme cannot be fitted (e.g. no positive spend in the training months)."""
