"""The one exception type the command line turns into a single clear line on stderr."""

from prompts.errors import ForecasterError


class UserError(ForecasterError):
    """A problem the user can fix (bad file, unknown customer, anchor outside the data...).

    The message is one line naming the file/column/row where it applies and what to do.
    """


class LLMRunFailed(UserError):
    """More of an LLM run's customers failed than ``--max-failed`` allows: the verb stops
    with what it did or did not write (the answers received stay in the response cache)."""
