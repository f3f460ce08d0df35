"""A one-setting XGBoost grid for tests whose subject is not the tuning.

Every ``forecaster train`` / ``evaluate`` (command line, Python API, ``artifact.train``,
``evaluation.prepare``) searches :data:`models.tuning.XGB_GRID` (6 settings) with each
purchase offset of :data:`models.tuning.OFFSETS` (2): 12 XGBoost fits before the run's own.
A test that checks what a run writes, refuses or prints -- not which setting the search
picks -- gets the same run with :data:`SMALL_XGB_GRID`: the first commit's settings (in the
product's grid), still tried with both offsets, so the search, its record in config.json /
metrics.json and the offset choice all run; only the number of candidates shrinks (12 -> 2).

Only the product's own grid is replaced: a caller that passes another grid (tests/test_tuning.py)
keeps it. Tests that check the tuning's choice, its record or the README figures do not use
this (tests/test_tuning.py, tests/test_explain.py's golden texts, tests/test_power.py's MDEs).

In this process: the ``small_xgb_grid`` fixture (tests/conftest.py). In a subprocess:
``python tests/small_grid.py forecaster ARGS...`` (the command line) or
``python tests/small_grid.py SCRIPT ARGS...`` (a script run as ``__main__``).
"""

from __future__ import annotations

import functools
import importlib
import runpy
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest

from forecaster.cli import wait_passively_for_openmp

wait_passively_for_openmp()  # before xgboost loads OpenMP, as the command line does (in a subprocess)

from models.tuning import XGB_DEFAULT, XGB_GRID, xgb_params  # noqa: E402

SMALL_XGB_GRID: tuple[dict, ...] = (xgb_params(XGB_DEFAULT),)
assert SMALL_XGB_GRID[0] in XGB_GRID  # a setting the product's search tries too
# the modules whose run searches the product's grid (each calls tune_xgb by its module name)
CALLERS = ("forecaster.artifact", "forecaster.evaluation")


def _small(tune: Callable) -> Callable:
    @functools.wraps(tune)
    def tune_small(rows, validation_anchor, cols, n_buckets, seed, grid=XGB_GRID, *args, **kwargs):
        return tune(rows, validation_anchor, cols, n_buckets, seed, SMALL_XGB_GRID if grid == XGB_GRID else grid,
                    *args, **kwargs)
    return tune_small


def install(mp: pytest.MonkeyPatch) -> None:
    """Searches of the product's grid use :data:`SMALL_XGB_GRID` until ``mp`` is undone."""
    for name in CALLERS:
        module = importlib.import_module(name)
        mp.setattr(module, "tune_xgb", _small(module.tune_xgb))


@contextmanager
def small_xgb_grid() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        install(mp)
        yield


def main() -> None:
    """``small_grid.py forecaster ARGS`` or ``small_grid.py SCRIPT ARGS``, with the small grid."""
    target, args = sys.argv[1], sys.argv[2:]
    install(pytest.MonkeyPatch())
    if target == "forecaster":
        from forecaster.cli import main as cli

        sys.argv = ["forecaster", *args]
        sys.exit(cli())
    sys.argv = [target, *args]
    runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
