"""Benchmark: BTYD fit time, this project's fitters against lifetimes' (issue 11).

    .venv/bin/python bench/btyd_fit.py                # both data sets (~15 seconds)
    .venv/bin/python bench/btyd_fit.py --data sample  # the 2,357-customer sample only

Fits BG/NBD (models.bgnbd.fit_bgnbd; lifetimes' BetaGeoFitter) and Pareto/NBD
(models.btyd.fit_pareto_nbd; lifetimes' ParetoNBDFitter) on

* sample: lifetimes' CDNOW summary of the 2,357-customer sample (weeks, as published);
* full: the day-level RFM (models.rfm.day_level_rfm) of all 23,570 CDNOW customers over
  the calibration period 1997-01-01 .. 1997-09-30, in weeks.

and prints wall and CPU seconds, the parameters and the mean log-likelihood per customer
(each model's own likelihood in models/, so the two fitters' optima can be compared).
Single-threaded BLAS, so CPU time is what one free core would take.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecaster.datasets import load_cdnow  # noqa: E402
from models import bgnbd, btyd  # noqa: E402
from models.rfm import day_level_rfm  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes 0.11.3 sets a pandas option pandas 3 deprecates
    from lifetimes import BetaGeoFitter, ParetoNBDFitter
    from lifetimes.datasets import load_cdnow_summary

CALIBRATION_ANCHOR = pd.Period("1997-10", freq="M")  # the first month after 1997-09-30

Summary = tuple[np.ndarray, np.ndarray, np.ndarray]
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, float]]


def sample_summary() -> Summary:
    d = load_cdnow_summary(index_col=[0])
    return tuple(d[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))


def full_calibration_summary() -> Summary:
    rfm = day_level_rfm(load_cdnow().transactions, CALIBRATION_ANCHOR)
    return rfm.frequency.astype(np.float64), rfm.recency, rfm.T


def _lifetimes(fitter_class) -> Fitter:
    def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> dict[str, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fitter_class().fit(x, t_x, T).params_.to_dict()
    return fit


FITTERS: tuple[tuple[str, str, Fitter, Callable], ...] = (
    ("BG/NBD", "models.bgnbd", bgnbd.fit_bgnbd, bgnbd.bgnbd_log_likelihood),
    ("BG/NBD", "lifetimes BetaGeoFitter", _lifetimes(BetaGeoFitter), bgnbd.bgnbd_log_likelihood),
    ("Pareto/NBD", "models.btyd", btyd.fit_pareto_nbd, btyd.pareto_nbd_log_likelihood),
    ("Pareto/NBD", "lifetimes ParetoNBDFitter", _lifetimes(ParetoNBDFitter), btyd.pareto_nbd_log_likelihood),
)


def timed(fit: Fitter, summary: Summary) -> tuple[dict[str, float], float, float]:
    """(parameters, wall seconds, CPU seconds) of one fit."""
    wall, cpu = time.perf_counter(), time.process_time()
    params = fit(*summary)
    return params, time.perf_counter() - wall, time.process_time() - cpu


def bench(name: str, summary: Summary) -> None:
    print(f"\n{name}: {len(summary[0]):,} customers, {int((summary[0] > 0).sum()):,} with repeat purchases, "
          f"max T {summary[2].max():.2f} weeks")
    print(f"{'model':<11} {'fitter':<26} {'wall s':>8} {'CPU s':>8}  {'mean loglik':>12}  parameters")
    for model, label, fit, loglik in FITTERS:
        params, wall, cpu = timed(fit, summary)
        mean_loglik = float(np.mean(loglik(params, *summary)))
        shown = ", ".join(f"{k}={v:.4f}" for k, v in params.items())
        print(f"{model:<11} {label:<26} {wall:8.2f} {cpu:8.2f}  {mean_loglik:12.6f}  {shown}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("sample", "full", "both"), default="both")
    args = parser.parse_args()
    if args.data in ("sample", "both"):
        bench("sample (lifetimes' CDNOW summary, weeks)", sample_summary())
    if args.data in ("full", "both"):
        bench("full CDNOW calibration 1997-01-01..1997-09-30 (day-level RFM, weeks)", full_calibration_summary())


if __name__ == "__main__":
    main()
