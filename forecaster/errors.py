"""The one exception type the command line turns into a single clear line on stderr."""

from prompts.errors import ForecasterError


class UserError(ForecasterError):
    """A problem the user can fix (bad file, unknown customer, anchor outside the data...).

    The message is one line naming the file/column/row where it applies and what to do.
    """


class LLMRunFailed(UserError):
    """More of an LLM run's customers failed than ``max_failed`` allows: the run stops and
    says what it did or did not make (the answers received stay in the response cache).

    ``rows``: the rows a scoring run made before the check (they were paid for), else None."""

    def __init__(self, failure: str, consequence: str, advice: str, rows: object = None) -> None:
        self.failure, self.consequence, self.advice, self.rows = failure, consequence, advice, rows
        super().__init__(f"{failure} {consequence}{advice}")

    def saying(self, consequence: str) -> "LLMRunFailed":
        """The same failure, saying ``consequence`` instead (what the caller did with the rows)."""
        return LLMRunFailed(self.failure, consequence, self.advice, self.rows)
