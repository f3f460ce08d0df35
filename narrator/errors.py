"""The narrator's own errors (panel, months, histories, narratives); each is also a
``ValueError``, which callers written before these types existed still catch."""

from __future__ import annotations

from prompts.errors import ForecasterError


class NarratorError(ForecasterError):
    """A problem with the data as the narrator sees it."""


class MonthFormatError(NarratorError, ValueError):
    """A month is not written ``YYYY-MM``."""


class AnchorOutsideData(NarratorError, ValueError):
    """An anchor month has no history before it, or lies past what the data can answer."""


class EmptyData(NarratorError, ValueError):
    """There is nothing to build a panel or a history from."""
