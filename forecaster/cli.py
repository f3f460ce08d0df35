"""The ``forecaster`` command line: one verb per module in ``forecaster/verbs``."""

from __future__ import annotations

import sys

import typer

from forecaster.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="LLM-in-the-loop customer spend forecaster (Korean narratives, structured forecasts, XGBoost).",
)


def _register_verbs() -> None:
    # Imported here so each verb stays in its own file; once per process (tests call main
    # several times).
    if app.registered_commands:
        return
    from forecaster.verbs import VERB_MODULES

    for module in VERB_MODULES:
        module.register(app)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2; usage
    errors are reported by the argument parser itself (also exit status 2)."""
    _register_verbs()
    try:
        app()
    except UserError as exc:
        print(f"오류: {exc}", file=sys.stderr)
        sys.exit(2)
