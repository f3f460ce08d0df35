"""``forecaster batch --dask`` partition by partition (forecaster/dask_batch.py) on a 2-worker
in-process LocalCluster (inproc://: no network at all): the file the single-machine batch
writes, row for row (Parquet and CSV output, with and without --anchor, a partial last
month, customers split across input files); a killed run resumes from the partitions it
wrote; the client never gathers the whole panel; the command takes this way."""

from __future__ import annotations

import pickle
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from clitools import run_cli  # noqa: E402
# the same shops, model and cluster as the batch one spill file at a time and the Dask engine:
# ``folder`` (three Parquet files, rows shuffled: most customers split across files), ``model``,
# ``statuses`` (every status and a partial last month, as a CSV), ``client`` (2 in-process workers)
from test_batch_partitioned import EARLY, Killed, folder, model, statuses  # noqa: E402,F401
from test_dask_engine import client  # noqa: E402,F401

import forecaster as fc  # noqa: E402
from forecaster import batch_partitioned, dask_batch, dask_engine, dask_panel, ingest_reduce  # noqa: E402
from forecaster.batch_stream import WORK_TAG, WorkFolder  # noqa: E402
from forecaster.datasets import load_dataset  # noqa: E402
from forecaster.errors import UserError  # noqa: E402


@pytest.fixture(scope="module")
def statuses_parquet(statuses, tmp_path_factory):
    """The same shop as a Parquet folder of two files, every other row in each."""
    parts = tmp_path_factory.mktemp("statuses_pq") / "parts"
    parts.mkdir()
    frame = pd.read_csv(statuses).assign(ts=lambda f: pd.to_datetime(f["ts"], format="mixed"))
    for i in range(2):
        frame.iloc[i::2].to_parquet(parts / f"part-{i}.parquet", index=False)
    return parts


def _read(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)


def _single_file(model, data: Path, out: Path, anchor) -> pd.DataFrame:
    """What ``forecaster batch`` writes on one machine (the whole panel in memory)."""
    model.write_predictions(fc.load_dataset(str(data)), out, anchor, chunk_customers=37)
    return _read(out)


def _dask_file(client, model, data: Path, out: Path, anchor, chunk_customers: int = 37):
    shuffled = dask_engine.shuffled(client, str(data))
    month = pd.Period(anchor, "M") if anchor else None
    counts = dask_batch.write_batch(client, model, shuffled, out, month, force=False, chunk_customers=chunk_customers)
    return _read(out), counts, shuffled.parts


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("anchor", [None, EARLY])
def test_the_dask_file_is_the_single_machine_batch(client, model, folder, tmp_path, suffix, anchor):
    expected = _single_file(model, folder, tmp_path / f"single{suffix}", anchor)
    got, counts, parts = _dask_file(client, model, folder, tmp_path / f"dask{suffix}", anchor)
    assert parts == 3
    pd.testing.assert_frame_equal(got, expected)
    assert dict(counts) == expected["status"].value_counts().to_dict()
    assert set(expected["status"]) == ({"ok", "no_history"} if anchor else {"ok"})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"single{suffix}", f"dask{suffix}"])


def test_partitions_hold_about_a_spill_files_rows_whatever_the_input_files(client, model, folder, tmp_path,
                                                                           monkeypatch):
    """Three input files but partitions of about 1,000 rows (DEFAULT_CHUNK_ROWS stands for a
    spill file's rows): more partitions than files, the same file."""
    expected = _single_file(model, folder, tmp_path / "single.parquet", None)
    monkeypatch.setattr(dask_panel, "DEFAULT_CHUNK_ROWS", 1_000)
    rows = len(pd.read_parquet(folder))
    got, _, parts = _dask_file(client, model, folder, tmp_path / "dask.parquet", None)
    assert parts == -(-rows // 1_000) > 3
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_every_kind_of_customer_and_a_partial_month_as_one_machine(client, model, statuses, statuses_parquet,
                                                                   tmp_path, kind):
    """The partial July is dropped (the anchor is July) from the partitions' summed month totals."""
    data = statuses if kind == "csv" else statuses_parquet
    expected = _single_file(model, data, tmp_path / "single.parquet", None)
    got, _, parts = _dask_file(client, model, data, tmp_path / "dask.parquet", None, chunk_customers=3)
    assert parts == (1 if kind == "csv" else 2)
    assert set(expected["status"]) == {"ok", "no_history", "no_purchase"} and set(expected["anchor"]) == {"2024-07"}
    pd.testing.assert_frame_equal(got, expected)


def test_a_killed_run_resumes_from_the_partitions_it_wrote(client, model, folder, tmp_path, monkeypatch):
    expected = _single_file(model, folder, tmp_path / "single.parquet", EARLY)
    real_record, real_each = WorkFolder.record, dask_batch.DaskPartitions._each
    written = []

    def record(self, state, k, frame):
        if len(written) == 1:
            raise Killed
        written.append(k)
        real_record(self, state, k, frame)

    out = tmp_path / "dask.parquet"
    with monkeypatch.context() as patch:
        patch.setattr(WorkFolder, "record", record)
        with pytest.raises(Killed):
            _dask_file(client, model, folder, out, EARLY)
    assert written == [0] and not out.exists()
    [work] = [p for p in tmp_path.iterdir() if WORK_TAG in p.name]
    assert [p.name for p in work.glob("part-*.parquet")] == ["part-00001.parquet"]
    scored = []

    def each(self, parts, run, *args):  # on the client: which partitions are sent to be scored
        parts = list(parts)
        scored.extend(parts if run is dask_batch.partition_rows else [])
        return real_each(self, parts, run, *args)

    monkeypatch.setattr(dask_batch.DaskPartitions, "_each", each)
    got, _, parts = _dask_file(client, model, folder, out, EARLY)
    assert scored == [1, 2] and parts == 3  # the written partition is not scored again
    pd.testing.assert_frame_equal(got, expected)
    assert not work.exists()


def test_the_client_never_holds_the_whole_panel(client, model, folder, tmp_path, monkeypatch):
    """No Dataset of all customers is made (the whole-panel path would reduce every partition
    and assemble them in one panel); the panels assembled hold one partition's customers each;
    what comes back from a worker is a Summary piece or one partition's rows."""
    customers = len(load_dataset(str(folder)).panel.customer_ids)
    monkeypatch.setattr(dask_panel, "load_dataset", lambda *a, **k: pytest.fail("the whole Dataset was built"))
    monkeypatch.setattr(dask_panel, "_reduce_exact", lambda *a, **k: pytest.fail("every partition was gathered"))
    panels, real = [], ingest_reduce.assemble_ingested

    def assemble(out, *args):
        got = real(out, *args)
        panels.append(len(got.full_panel.customer_ids))
        return got

    monkeypatch.setattr(ingest_reduce, "assemble_ingested", assemble)  # a partition's Dataset (pass 2)
    monkeypatch.setattr(batch_partitioned, "assemble_ingested", assemble)  # a partition's Summary piece (pass 1)
    received, real_each = [], dask_batch.DaskPartitions._each

    def each(self, parts, run, *args):
        for result in real_each(self, parts, run, *args):
            received.append(result)
            yield result

    monkeypatch.setattr(dask_batch.DaskPartitions, "_each", each)
    got, _, parts = _dask_file(client, model, folder, tmp_path / "dask.parquet", EARLY)
    assert len(got) == customers and parts == 3
    assert len(panels) == 2 * parts and max(panels) < customers and sum(panels) == 2 * customers
    pieces = [r for r in received if isinstance(r, batch_partitioned.Summary)]
    frames = [r for r in received if isinstance(r, pd.DataFrame)]
    assert len(pieces) == parts and len(frames) == parts and max(len(f) for f in frames) < customers
    assert all(len(pickle.dumps(p)) < 200_000 for p in pieces)


def test_an_anchor_outside_the_data_is_refused_before_a_partition_is_summarised(client, model, folder, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(dask_batch.DaskPartitions, "summaries", lambda *a: pytest.fail("a partition was summarised"))
    with pytest.raises(UserError, match="--anchor"):
        _dask_file(client, model, folder, tmp_path / "dask.parquet", "2031-01")
    assert not list(tmp_path.iterdir())


def test_what_crosses_to_a_worker_holds_no_key(client, model, folder, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-do-not-send")
    sent, real = [], client.scatter

    def scatter(data, **kwargs):
        sent.append(pickle.dumps(data))
        return real(data, **kwargs)

    monkeypatch.setattr(client, "scatter", scatter)
    _dask_file(client, model, folder, tmp_path / "dask.parquet", EARLY)
    assert len(sent) >= 3  # the plan, the provider, the scoring job
    assert not any(b"sk-secret-do-not-send" in blob for blob in sent)


def test_the_command_takes_the_partition_way(client, model, folder, tmp_path, monkeypatch, capsys):
    from forecaster.verbs import batch as verb

    expected = _single_file(model, folder, tmp_path / "single.parquet", EARLY)
    calls, real = [], dask_batch.write_batch

    @contextmanager
    def engine(address):
        assert address == "local:2"
        yield client

    monkeypatch.setattr(verb, "engine", engine)  # the test's in-process cluster
    monkeypatch.setattr(dask_batch, "write_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(dask_engine, "write_batch", lambda *a, **k: pytest.fail("the whole Dataset was gathered"))
    out = tmp_path / "rows.parquet"
    args = ["batch", "--model", str(model.artifact_.folder), "--data", str(folder), "--out", str(out), "--anchor", EARLY]
    code, _, err = run_cli(args + ["--dask", "local:2"], monkeypatch, capsys)
    assert (code, calls) == (0, [1]), err
    assert f"{len(expected):,}명 중" in err  # the status line
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
