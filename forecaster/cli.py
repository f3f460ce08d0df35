"""The ``forecaster`` command line: one verb per module in ``forecaster/verbs``.

:func:`main` is the one error boundary: every error a user can cause leaves as ONE line on
stderr (``오류: what, where, what to do``) and exit status 2 — the library's
:class:`~forecaster.errors.UserError`, the argument parser's usage errors (which click would
print as a box of several lines), and an operating-system refusal to write (permission,
disk full, read-only). Ctrl-C is one line and exit status 130. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sys

import typer
try:  # typer >= 0.2x vendors click; earlier releases depend on click itself
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import NoArgsIsHelpError, UsageError

from forecaster.errors import UserError
from prompts.errors import ForecasterError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="LLM-in-the-loop customer spend forecaster (Korean narratives, structured forecasts, XGBoost).",
)

USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as a shell reports it
INTERRUPTED = ("stopped before the end (Ctrl-C, or no answer to a question: pass --yes in scripts); "
               "outputs are written only when a run completes, so none was changed")
# OSErrors that are the environment refusing a write, not a bug in this program.
WRITE_REFUSALS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def wait_passively_for_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin. By default they spin while they wait;
    when the cores are shared (a 2-core machine running anything else, tests in parallel)
    that made training 6x slower (two concurrent 600-customer trainings: 47.8 s spinning vs
    7.6 s passive). Takes effect only before the OpenMP runtime loads (with xgboost or
    scikit-learn); a user's own setting wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _register_verbs() -> None:
    # Imported here so each verb stays in its own file; once per process (tests call main
    # several times).
    if app.registered_commands:
        return
    from forecaster.verbs import VERB_MODULES

    for module in VERB_MODULES:
        module.register(app)


def _usage_line(exc: UsageError) -> str:
    command = exc.ctx.command_path if exc.ctx is not None else "forecaster"
    message = " ".join(exc.format_message().split())  # click may wrap a long message
    return f"{message} (see `{command} --help`)"


def _fail(message: str, status: int = USER_ERROR_STATUS) -> None:
    print(f"오류: {message}", file=sys.stderr)
    sys.exit(status)


def main() -> None:
    """Console entry point (see the module docstring for what becomes one line)."""
    wait_passively_for_openmp()  # before the verbs import xgboost
    _register_verbs()
    try:
        status = app(prog_name="forecaster", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # bare `forecaster`: the help (rich prints it itself), as click would
        if exc.format_message():
            print(exc.format_message(), file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)
    except UsageError as exc:
        _fail(_usage_line(exc))
    except UserError as exc:
        _fail(" ".join(str(exc).split()))
    except ForecasterError as exc:  # a lower layer's typed error no verb translated: still one line
        _fail(" ".join(str(exc).split()))
    except OSError as exc:
        if exc.errno not in WRITE_REFUSALS:
            raise
        _fail(f"cannot write {exc.filename or 'the output'}: {exc.strerror}; "
              "choose another destination or free the space")
    except (typer.Abort, KeyboardInterrupt):  # Abort: Ctrl-C or end of input at a question
        _fail(INTERRUPTED, INTERRUPTED_STATUS)
    if status == INTERRUPTED_STATUS:  # typer turns Ctrl-C inside a verb into this status
        _fail(INTERRUPTED, INTERRUPTED_STATUS)
    if isinstance(status, int) and status:
        sys.exit(status)
