"""`forecaster batch` over a shop read in chunks, one spill file of customers at a time
(forecaster/batch_partitioned.py): the file the whole-panel batch writes, byte for byte in
its rows, whatever the number of spill files (including files with no customer, or only
customers without a forecast); a killed run resumes from its last finished file; the
command takes this way for data read in chunks."""

from pathlib import Path

import pandas as pd
import pytest
from clitools import run_cli, train_once
from status_shop import write_status_shop

import forecaster as fc
from forecaster import batch_partitioned
from forecaster.batch_stream import WORK_TAG
from forecaster.datasets import load_dataset
from forecaster.errors import UserError
from forecaster.ingest_chunked import open_scan

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:400:5"
EARLY = "2022-05"  # many customers not yet acquired


class Killed(Exception):
    """Stands for the process being killed after some spill files."""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return fc.TrainedModel.load(train_once(tmp_path_factory.mktemp("art") / "model", DATA))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The synthetic shop as a Parquet folder of three files, its rows shuffled."""
    folder = tmp_path_factory.mktemp("shop") / "parts"
    folder.mkdir()
    shuffled = load_dataset(DATA).transactions.sample(frac=1.0, random_state=0)
    for i in range(3):
        shuffled.iloc[i::3].to_parquet(folder / f"part-{i}.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def statuses(tmp_path_factory):
    """Customers of every status and a partial last month (one row on July 1st), as a CSV."""
    return write_status_shop(tmp_path_factory.mktemp("statuses") / "shop.csv")


def _whole_panel_file(model, data: Path, out: Path, anchor, chunk_rows: int) -> pd.DataFrame:
    model.write_predictions(fc.load_dataset(str(data), chunk_rows=chunk_rows), out, anchor, chunk_customers=37)
    return pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)


def _partitioned_file(model, data: Path, out: Path, anchor, chunk_rows: int, chunk_customers: int = 37):
    with open_scan(str(data), chunk_rows=chunk_rows) as scan:
        counts = model.write_predictions_from_scan(scan, out, anchor, chunk_customers=chunk_customers)
    return (pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)), counts, scan.spill.parts


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("anchor,chunk_rows", [(None, 500), (EARLY, 500), (EARLY, 100_000)])
def test_the_partitioned_file_is_the_whole_panels(model, folder, tmp_path, suffix, anchor, chunk_rows):
    expected = _whole_panel_file(model, folder, tmp_path / f"whole{suffix}", anchor, chunk_rows)
    got, counts, parts = _partitioned_file(model, folder, tmp_path / f"parts{suffix}", anchor, chunk_rows)
    assert parts == (1 if chunk_rows == 100_000 else 9)
    pd.testing.assert_frame_equal(got, expected)
    assert dict(counts) == expected["status"].value_counts().to_dict()
    assert set(expected["status"]) == ({"ok", "no_history"} if anchor else {"ok"})
    assert expected["top20_target"].sum() == int(0.2 * (expected["status"] == "ok").sum())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"whole{suffix}", f"parts{suffix}"])


@pytest.mark.parametrize("chunk_rows", [1, 7])
def test_every_kind_of_customer_and_a_partial_month_as_the_whole_panel(model, statuses, tmp_path, chunk_rows):
    """Tiny chunks: dozens of spill files, most without a customer or with only customers
    who get no forecast; the partial July is dropped, so the anchor is July."""
    expected = _whole_panel_file(model, statuses, tmp_path / "whole.parquet", None, chunk_rows)
    got, _, parts = _partitioned_file(model, statuses, tmp_path / "parts.parquet", None, chunk_rows, 3)
    assert parts >= 10
    assert set(expected["status"]) == {"ok", "no_history", "no_purchase"} and set(expected["anchor"]) == {"2024-07"}
    pd.testing.assert_frame_equal(got, expected)


def test_a_killed_run_resumes_from_its_last_spill_file(model, folder, tmp_path, monkeypatch):
    expected = _whole_panel_file(model, folder, tmp_path / "whole.parquet", EARLY, 500)
    made, real = [], batch_partitioned._part_rows

    def part_rows(*args):
        if len(made) == 2:
            raise Killed
        made.append(args[0])
        return real(*args)

    out = tmp_path / "parts.parquet"
    with monkeypatch.context() as patch:
        patch.setattr(batch_partitioned, "_part_rows", part_rows)
        with pytest.raises(Killed):
            _partitioned_file(model, folder, out, EARLY, 500)
    assert len(made) == 2 and not out.exists()
    [work] = [p for p in tmp_path.iterdir() if WORK_TAG in p.name]
    assert len(list(work.glob("part-*.parquet"))) == 2
    made.clear()
    resumed = []
    monkeypatch.setattr(batch_partitioned, "_part_rows", lambda *args: resumed.append(1) or real(*args))
    got, _, parts = _partitioned_file(model, folder, out, EARLY, 500)
    assert len(resumed) == parts - 2  # the two finished files are not scored again
    pd.testing.assert_frame_equal(got, expected)
    assert not work.exists()


def test_an_anchor_outside_the_data_is_refused_before_any_spill_file_is_read(model, folder, tmp_path, monkeypatch):
    monkeypatch.setattr(batch_partitioned, "summarise", lambda *a: pytest.fail("a spill file was read"))
    with pytest.raises(UserError, match="--anchor"):
        _partitioned_file(model, folder, tmp_path / "parts.parquet", pd.Period("2031-01", "M"), 500)
    assert not list(tmp_path.iterdir())


def test_the_command_takes_the_partitioned_way_for_data_read_in_chunks(model, folder, tmp_path, monkeypatch, capsys):
    expected = _whole_panel_file(model, folder, tmp_path / "whole.parquet", EARLY, 500)
    calls, real = [], batch_partitioned.write_partitioned
    monkeypatch.setattr(batch_partitioned, "write_partitioned", lambda *a: calls.append(1) or real(*a))
    out = tmp_path / "rows.parquet"
    code, _, err = run_cli(["batch", "--model", str(model.artifact_.folder), "--data", str(folder), "--out", str(out),
                            "--anchor", EARLY, "--chunk-rows", "500"], monkeypatch, capsys)
    assert code == 0, err
    assert calls == [1] and f"{len(expected):,}명 중" in err
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
