"""The LLM stage's own exceptions. ``llm`` never imports ``forecaster``: the command line's
provider layer (``forecaster/providers.py``) turns an :class:`LLMError` into the one-line
user error."""

from __future__ import annotations

from prompts.errors import ForecasterError


class LLMError(ForecasterError):
    """A problem with the LLM stage that the user can fix; the message is one line saying
    what happened and what to do."""


class LLMConfigError(LLMError, ValueError):
    """The LLM stage cannot start: missing model, key or a bad setting (one line)."""


class RunAborted(LLMError):
    """The whole run must stop now (quota exhausted, key rejected, an endpoint that never
    answers): one clear line."""


class PriceFileError(LLMError, ValueError):
    """The price file named by ``FORECASTER_PRICES`` is missing or malformed."""
