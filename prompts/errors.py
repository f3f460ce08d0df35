"""The common base of every error this project raises on purpose.

It sits in the lowest package so that every layer can subclass it without importing a
higher one: ``narrator.errors``, ``structurer.errors``, ``models.errors``, ``llm.errors`` and
``forecaster.errors`` each define their own types on top of it. The application translates
them into the one-line messages a user sees; the command line also catches this base, so a
typed error that no layer translated still leaves as one line, never as a traceback.
"""

from __future__ import annotations


class ForecasterError(Exception):
    """Raised on purpose by this project's code; the message is one line."""


class PromptsError(ForecasterError):
    """A prompt template cannot be found or read."""


class TemplateNotFound(PromptsError, FileNotFoundError):
    """A template folder lacks the template a verb needs."""
