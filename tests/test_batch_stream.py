"""`forecaster batch` in chunks (forecaster/batch_stream.py): the rows of the in-memory run,
row for row, whatever the chunk size; a killed run resumes from its last finished chunk;
the destination is checked before any work and nothing the tool did not write is deleted."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli, train_once
from status_shop import write_status_shop

import forecaster as fc
from forecaster import batch as batch_module
from forecaster.batch import BatchJob
from forecaster.batch_stream import PROGRESS, WORK_TAG
from forecaster.errors import UserError
from models.timing import PurchaseDays

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:400:5"
EARLY = "2022-05"  # many customers not yet acquired: rows without a forecast between the chunks


class Killed(Exception):
    """Stands for the process being killed after some chunks."""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return fc.TrainedModel.load(train_once(tmp_path_factory.mktemp("art") / "model", DATA))


@pytest.fixture(scope="module")
def dataset():
    return fc.load_dataset(DATA)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Customers of every status, ids of those without a forecast among the forecast ones."""
    return fc.load_dataset(str(write_status_shop(tmp_path_factory.mktemp("shop") / "shop.csv")))


def _work_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if WORK_TAG in p.name]


# one customer a chunk only at the early anchor (the slowest case, and the one with unforecast rows)
@pytest.mark.parametrize("anchor, chunk", [(None, 7), (None, 10_000), (EARLY, 1), (EARLY, 7), (EARLY, 10_000)])
def test_chunks_give_the_rows_of_the_whole_run(model, dataset, anchor, chunk):
    whole = model.predict(dataset, anchor)
    assert set(whole["status"]) >= ({"ok", "no_history"} if anchor else {"ok"})
    pd.testing.assert_frame_equal(model.predict(dataset, anchor, chunk_customers=chunk), whole)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_streamed_file_equals_the_in_memory_file(model, dataset, tmp_path, suffix, chunk):
    reference, streamed = tmp_path / f"whole{suffix}", tmp_path / f"streamed{suffix}"
    fc.save_predictions(model.predict(dataset, EARLY), reference)
    counts = model.write_predictions(dataset, streamed, EARLY, chunk_customers=chunk)
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    expected = read(reference)
    pd.testing.assert_frame_equal(read(streamed), expected)
    assert dict(counts) == expected["status"].value_counts().to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([reference.name, streamed.name])  # nothing left


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_every_kind_of_customer_streams_as_in_memory(model, shop, tmp_path, suffix):
    whole = model.predict(shop)
    assert set(whole["status"]) == {"ok", "no_history", "no_purchase"}
    fc.save_predictions(whole, tmp_path / f"whole{suffix}")
    model.write_predictions(shop, tmp_path / f"streamed{suffix}", chunk_customers=3)
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    pd.testing.assert_frame_equal(read(tmp_path / f"streamed{suffix}"), read(tmp_path / f"whole{suffix}"))


def _kill_after(monkeypatch, chunks: int) -> list[int]:
    """Make BatchJob.chunk_rows raise after ``chunks`` chunks; returns the chunks made."""
    made, real = [], BatchJob.chunk_rows

    def chunk_rows(self, bounds, k):
        if len(made) == chunks:
            raise Killed
        made.append(k)
        return real(self, bounds, k)

    monkeypatch.setattr(BatchJob, "chunk_rows", chunk_rows)
    return made


def _killed_run(monkeypatch, model, dataset, out: Path, chunks: int, chunk_customers: int) -> list[int]:
    """A run killed after ``chunks`` chunks; returns the chunks it made."""
    with monkeypatch.context() as patch:
        made = _kill_after(patch, chunks)
        with pytest.raises(Killed):
            model.write_predictions(dataset, out, EARLY, chunk_customers=chunk_customers)
    return made


def test_a_killed_run_resumes_from_its_last_chunk_and_writes_the_same_file(model, dataset, tmp_path, monkeypatch):
    uninterrupted = tmp_path / "once" / "rows.parquet"
    model.write_predictions(dataset, uninterrupted, EARLY, chunk_customers=10)
    out = tmp_path / "rows.parquet"
    made = _killed_run(monkeypatch, model, dataset, out, 3, 10)
    assert made == [0, 1, 2] and not out.exists()
    [work] = _work_folders(tmp_path)
    assert sorted(p.name for p in work.iterdir()) == sorted([PROGRESS, "part-00001.parquet", "part-00002.parquet",
                                                             "part-00003.parquet"])
    resumed = _kill_after(monkeypatch, 10 ** 6)
    model.write_predictions(dataset, out, EARLY, chunk_customers=10)
    assert resumed[0] == 3 and 0 not in resumed  # the finished chunks are not made again
    assert out.read_bytes() == uninterrupted.read_bytes()
    assert not _work_folders(tmp_path)


def test_a_resumed_run_keeps_a_file_it_did_not_write(model, dataset, tmp_path, monkeypatch):
    out = tmp_path / "rows.csv"
    _killed_run(monkeypatch, model, dataset, out, 1, 25)
    [work] = _work_folders(tmp_path)
    (work / "notes.txt").write_text("mine")
    (work / "part-00002.parquet.tmp").write_bytes(b"half a part: the run was killed while writing it")
    model.write_predictions(dataset, out, EARLY, chunk_customers=25)
    assert out.exists() and [p.name for p in work.iterdir()] == ["notes.txt"]


def test_other_arguments_do_not_reuse_a_killed_runs_chunks(model, dataset, tmp_path, monkeypatch):
    out = tmp_path / "rows.parquet"
    _killed_run(monkeypatch, model, dataset, out, 2, 10)
    made = _kill_after(monkeypatch, 10 ** 6)
    model.write_predictions(dataset, out, "2022-06", chunk_customers=10)  # another anchor: another key
    assert made[:2] == [0, 1]
    assert len(_work_folders(tmp_path)) == 1  # the killed run's, left for the user


def test_an_existing_file_is_refused_before_any_work(model, dataset, tmp_path, monkeypatch):
    out = tmp_path / "rows.parquet"
    out.write_bytes(b"the user's file")

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(BatchJob, "open", no_work)
    with pytest.raises(UserError, match="--force"):
        model.write_predictions(dataset, out)
    assert out.read_bytes() == b"the user's file" and not _work_folders(tmp_path)


def test_the_command_refuses_an_existing_file_in_one_line_before_loading_data(tmp_path, monkeypatch, capsys):
    out = tmp_path / "rows.csv"
    out.write_text("keep me")
    monkeypatch.setattr("forecaster.verbs.batch.dataset_from_options", lambda *a: pytest.fail("data loaded"))
    code, _, err = run_cli(["batch", "--model", str(tmp_path), "--data", DATA, "--out", str(out),
                            "--chunk-customers", "5"], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("오류:")
    assert out.read_text() == "keep me"


def test_the_command_streams_with_chunk_customers(model, dataset, tmp_path, monkeypatch, capsys):
    out = tmp_path / "rows.parquet"
    code, _, err = run_cli(["batch", "--model", str(model.artifact_.folder), "--data", DATA, "--out", str(out),
                            "--anchor", EARLY, "--chunk-customers", "9"], monkeypatch, capsys)
    assert code == 0, err
    expected = model.predict(dataset, EARLY)
    pd.testing.assert_frame_equal(pd.read_parquet(out), batch_module.canonical(expected))
    assert f"{len(expected):,}명 중" in err
    code, out_text, _ = run_cli(["batch", "--help"], monkeypatch, capsys)
    assert "--chunk-customers" in out_text


@pytest.mark.parametrize("block", [1, 7, 10_000])
def test_purchase_days_made_by_block_are_the_whole_logs(dataset, shop, block):
    for data in (dataset, shop):
        whole, blocks = PurchaseDays.from_transactions(data.transactions), \
            PurchaseDays.by_block(data.transactions, block)
        assert whole.customer_ids.equals(blocks.customer_ids)
        for field in ("code", "day", "amount"):
            assert np.array_equal(getattr(whole, field), getattr(blocks, field))
            assert getattr(whole, field).dtype == getattr(blocks, field).dtype
