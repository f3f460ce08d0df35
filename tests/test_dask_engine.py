"""The --dask engine (forecaster/dask_engine.py, forecaster/dask_panel.py) on a 2-worker
in-process LocalCluster (inproc://: no network at all): the same panel, purchase days and
cleaning counts as the in-memory reader, the same batch rows as the in-memory batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from forecaster import dask_engine, synthetic  # noqa: E402
from forecaster.datasets import from_table, load_dataset  # noqa: E402
from models.timing import PurchaseDays  # noqa: E402

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py


@pytest.fixture(scope="module")
def client():
    with dask_engine.connect("local:2", processes=False) as c:
        yield c


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    synthetic.write_parquet(1500, 3, folder, customers_per_chunk=500)
    return folder


def _same_dataset(ref, got) -> None:
    a, b = ref.full_panel, got.full_panel
    assert a.start == b.start and a.currency == b.currency
    np.testing.assert_array_equal(a.customer_ids, b.customer_ids)
    np.testing.assert_array_equal(a.spend, b.spend)  # bit for bit, not approximately
    np.testing.assert_array_equal(a.orders, b.orders)
    np.testing.assert_array_equal(a.first_idx, b.first_idx)
    assert ref.cleaning == got.cleaning
    assert ref.panel.last_month == got.panel.last_month
    da, db = (PurchaseDays.from_transactions(d.transactions) for d in (ref, got))
    np.testing.assert_array_equal(da.customer_ids.to_numpy(), db.customer_ids.to_numpy())
    for name in ("code", "day", "amount"):
        np.testing.assert_array_equal(getattr(da, name), getattr(db, name))


def test_panel_from_parquet_folder_is_the_in_memory_one(client, shop):
    in_memory = from_table(pd.read_parquet(shop), name=shop.name)  # the whole table at once
    _same_dataset(in_memory, dask_engine.load_dataset(client, str(shop)))


def test_panel_from_a_dirty_csv_is_the_in_memory_one(client, shop, tmp_path):
    frame = pd.read_parquet(shop).head(6000)
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[5, "amount"] = -frame.loc[5, "amount"]  # a return
    dirty = pd.concat([frame, frame.iloc[[3, 4]], frame.iloc[[7]].assign(customer_id=None)], ignore_index=True)
    dirty["ts"] = pd.to_datetime(dirty["ts"]).dt.strftime("%Y-%m-%d %H:%M:%S")  # text dates: the distinct lookup
    path = tmp_path / "shop.csv"
    dirty.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # unsorted: the compensated sums
    got = dask_engine.load_dataset(client, str(path))
    _same_dataset(load_dataset(str(path)), got)
    assert got.cleaning.duplicate_rows_dropped == 2 and got.cleaning.null_customer_rows_dropped == 1
    assert got.cleaning.return_rows == 1


def test_batch_rows_are_the_in_memory_batch(client, shop):
    from forecaster.api.model import train

    dataset = load_dataset(str(shop))
    model = train(dataset, sample_customers=1000, seed=0)
    expected = model.predict(dataset)
    got = dask_engine.predict(client, model, dask_engine.load_dataset(client, str(shop)), chunk_customers=400)
    pd.testing.assert_frame_equal(got, expected)


def _cli(*args: str) -> subprocess.CompletedProcess:
    script = str(Path(sys.executable).with_name("forecaster"))
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("address", ["bogus", "local:0", "tcp://127.0.0.1:1"])
def test_bad_address_is_one_line_and_exit_2(shop, address):
    done = _cli("data", "--data", str(shop), "--dask", address)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("오류: --dask"), done.stderr
    assert "Traceback" not in done.stderr


def test_dask_with_an_llm_provider_is_refused_in_one_line(tmp_path):
    done = _cli("train", "--out", str(tmp_path / "m"), "--provider", "llm", "--dask", "local:2")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--provider llm" in done.stderr


def test_no_dask_import_without_the_option():
    code = ("import sys, forecaster, forecaster.cli, forecaster.verbs.batch, forecaster.verbs.data, "
            "forecaster.verbs.train, forecaster.batch, forecaster.api.model\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_batch_chunks_come_back_in_order_with_a_bounded_number_in_flight():
    outstanding, most = set(), [0]

    class Done:  # a future whose result is collected once
        def __init__(self, k: int):
            self.k = k

        def result(self) -> int:
            outstanding.remove(self.k)
            return self.k

    def submit(lo: int, hi: int) -> Done:
        outstanding.add(lo)
        most[0] = max(most[0], len(outstanding))
        return Done(lo)

    bounds = [(lo, lo + 1) for lo in range(11)]
    assert list(dask_engine.in_order_bounded(submit, bounds, 3)) == list(range(11))
    assert most[0] == 3 and not outstanding
