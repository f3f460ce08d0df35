"""The ``forecaster`` command line: one verb per module in ``forecaster/verbs``."""

from __future__ import annotations

import sys

import typer

from forecaster.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
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
    """Console entry point: user errors become one line on stderr and exit status 2."""
    _register_verbs()
    try:
        app(standalone_mode=False)
    except UserError as exc:
        print(f"오류: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("중단했습니다.", file=sys.stderr)
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except Exception as exc:  # click usage errors carry their own message
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
