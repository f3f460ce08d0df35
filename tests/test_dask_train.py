"""``--dask-training`` (forecaster/dask_train.py, models/xgb_dask.py): the hurdle model fitted
with xgboost.dask on a 2-worker in-process LocalCluster (inproc://, XGBoost's tracker on
127.0.0.1) scores the same test rows as the single-machine fit of the same rows, honours the
purchase booster's seasonal offset, and the command line writes a model folder batch uses."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

import dask.dataframe as dd  # noqa: E402

from forecaster import artifact, dask_engine, pipeline, synthetic  # noqa: E402
from forecaster.dask_train import ClusterRows, tracker_host  # noqa: E402
from forecaster.datasets import load_dataset  # noqa: E402
from models import arms, metrics, xgb_dask  # noqa: E402
from models.arm_specs import XGB_BASE  # noqa: E402
from models.season import SHIFT_COLUMN  # noqa: E402
from models.xgb import HurdleXGB  # noqa: E402

from clitools import run_cli  # noqa: E402

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

# No row or column subsampling in the comparison: XGBoost draws those per worker, so with them
# the two fits differ by what another seed gives (log loss ~5e-4 on these rows); without them
# only the distributed quantile sketch differs.
EXACT = {"subsample": 1.0, "colsample_bytree": 1.0}


@pytest.fixture(scope="module")
def client():
    with dask_engine.connect("local:2", processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def shop_rows():
    """(rows up to the test anchor, test rows, feature columns, buckets, validation anchor)
    of synthetic:3000 (~88,000 rows over 34 anchors)."""
    dataset = load_dataset("synthetic:3000")
    scheme = artifact.training_scheme(dataset.panel)
    anchors = [str(a) for a in pipeline.anchors_with_outcome(dataset.panel)]
    rows, spec = pipeline.build_rows(dataset.panel, [pd.Period(a, "M") for a in anchors], scheme, None,
                                     transactions=dataset.transactions, with_btyd=False)
    test_anchor, val_anchor = anchors[-1], anchors[-2]
    return (rows[rows["anchor"] < test_anchor], rows[rows["anchor"] == test_anchor], XGB_BASE.columns(spec),
            scheme.n_buckets, val_anchor)


def _both(client, rows: pd.DataFrame, cols: list[str], n_buckets: int, val_anchor: str,
          params: dict) -> tuple[HurdleXGB, HurdleXGB]:
    train, val = rows[rows["anchor"] < val_anchor], rows[rows["anchor"] == val_anchor]
    here = arms.fit_xgb(train, val, cols, n_buckets, 0, params=params)
    there = ClusterRows(client, rows).fit(train, val, cols, n_buckets, 0, params=params)
    return here, there


def test_cluster_fit_scores_the_test_rows_as_the_single_machine_fit(client, shop_rows):
    rows, test, cols, n_buckets, val_anchor = shop_rows
    here, there = _both(client, rows, cols, n_buckets, val_anchor, EXACT)
    assert type(there) is HurdleXGB and there.feature_names_ == cols
    labels = test["label"].to_numpy()
    p_here, p_there = here.predict_proba(test), there.predict_proba(test)
    assert abs(metrics.rps(p_here, labels) - metrics.rps(p_there, labels)) < 1e-3
    assert abs(metrics.log_loss(p_here, labels) - metrics.log_loss(p_there, labels)) < 1e-3
    # the same model, not only the same score: the rows' purchase probabilities agree closely
    assert np.abs(p_here[:, 0] - p_there[:, 0]).mean() < 0.01


def test_cluster_fit_starts_the_purchase_booster_from_the_seasonal_offset(client, shop_rows):
    """Half the customers get a seasonal shift of +1, the other half -1, whatever the month:
    an offset of +1 / -1 log-odds that says nothing of the outcome, which the trees must undo
    (through season_shift). A fit that trained without the offset but predicts with it (as
    HurdleXGB does) would be off by about one log-odds in each half."""
    rows, test, cols, n_buckets, val_anchor = shop_rows
    half = pd.util.hash_pandas_object(pd.concat([rows, test])["customer_id"], index=False).to_numpy() % 2 == 0
    index = np.where(half, 1.0, -1.0)
    rows, test = rows.assign(**{SHIFT_COLUMN: index[:len(rows)]}), test.assign(**{SHIFT_COLUMN: index[len(rows):]})
    here, there = _both(client, rows, cols, n_buckets, val_anchor, EXACT)
    high = index[len(rows):] > 0
    bought = test["label"].to_numpy() > 0
    for group in (high, ~high):
        p_here, p_there = here.purchase_probability(test[group]), there.purchase_probability(test[group])
        assert abs(p_there.mean() - p_here.mean()) < 0.005
        assert abs(p_there.mean() - bought[group].mean()) < 0.02  # calibrated in each half
    margin = there.purchase_margin(test)
    np.testing.assert_allclose(margin, there.purchase_contributions(test).sum(axis=1), rtol=0, atol=1e-4)


def test_tracker_listens_on_loopback_for_an_in_process_cluster(client):
    assert tracker_host(client) == "127.0.0.1"


def test_workers_log_the_collectives_rank_line_instead_of_printing_it(client, capfd, caplog):
    """XGBoost's collective writes "Task [xgboost.dask-N]:... got rank N" from native code to
    file descriptor 2 of each worker (here, this process) at every booster's start; it goes to
    models.xgb_dask's logger at DEBUG instead, and XGBoost's warnings (here, of an unused
    parameter) are raised as UserWarning on the worker instead of being written there."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"x": rng.normal(size=400), "label": rng.integers(0, 3, size=400)})
    train, val = dd.from_pandas(rows[:300], npartitions=2), dd.from_pandas(rows[300:], npartitions=2)
    caplog.set_level(logging.DEBUG, logger="models.xgb_dask")
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        xgb_dask.fit(client, arms.hurdle(3, 0, params={"not_a_parameter": 1}), train, val, ["x"],
                     tracker_host=tracker_host(client))
    assert "got rank" not in capfd.readouterr().err
    assert any("got rank" in record.getMessage() for record in caplog.records)
    assert any("not_a_parameter" in str(w.message) and w.category is UserWarning for w in raised)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``forecaster *args`` in a subprocess, searching the small grid (tests/small_grid.py)."""
    command = [sys.executable, str(Path(__file__).with_name("small_grid.py")), "forecaster", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


def test_train_on_the_cluster_writes_a_model_batch_uses(tmp_path):
    synthetic.write_parquet(2000, 3, tmp_path / "shop", customers_per_chunk=1000)
    done = _cli("train", "--data", "shop", "--dask", "local:2", "--dask-training", "--out", "model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "model" / "xgb_base" / "purchase.json").is_file()
    done = _cli("batch", "--model", "model", "--data", "shop", "--out", "rows.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = pd.read_parquet(tmp_path / "rows.parquet")
    assert len(rows) == 2000 and rows["purchase_prob"].between(0, 1).all() and (rows["status"] == "ok").any()


def test_dask_training_without_dask_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["train", "--dask-training", "--out", str(tmp_path / "m")], monkeypatch, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--dask-training" in lines[0] and "--dask ADDRESS" in lines[0], err
    assert not (tmp_path / "m").exists()
