"""No lost files: every writing verb checks its destination before any work, replaces only its
own earlier output (the marker file), never deletes a file it did not write, and writes
atomically; CSV cells a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli, train_once

from forecaster import cli, destination
from forecaster.datasets import load_dataset
from forecaster.errors import UserError

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:400:5"


def _no_data_please(*args, **kwargs):
    raise AssertionError("the data was loaded before the destination was checked")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_once(tmp_path_factory.mktemp("trained") / "model", DATA)


def _marker(folder):
    return json.loads((folder / destination.MARKER).read_text(encoding="utf-8"))


def _tree(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# -- train / evaluate --out: checked first -----------------------------------------------------


def test_train_into_a_foreign_folder_refuses_before_loading_any_data(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.txt").write_text("three years of work")
    monkeypatch.setattr("forecaster.verbs.train.dataset_from_options", _no_data_please)
    code, _, err = run_cli(["train", "--data", DATA, "--out", str(folder)], monkeypatch, capsys)
    assert code == 2 and "holds thesis.txt" in err and err.count("\n") == 1
    assert _tree(tmp_path) == ["thesis/thesis.txt"]
    assert (folder / "thesis.txt").read_text() == "three years of work"


def test_train_out_dot_refuses_and_the_working_folder_survives(tmp_path, monkeypatch, capsys):
    (tmp_path / "thesis.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("forecaster.verbs.train.dataset_from_options", _no_data_please)
    code, _, err = run_cli(["train", "--data", DATA, "--out", "."], monkeypatch, capsys)
    assert code == 2 and "the current folder" in err
    assert _tree(tmp_path) == ["thesis.txt"]


def test_the_artifact_lists_every_file_it_wrote(trained):
    marker = _marker(trained)
    assert marker["kind"] == "model"
    assert marker["files"] == [f for f in _tree(trained) if f != destination.MARKER]
    assert "config.json" in marker["files"] and "xgb_base/purchase.json" in marker["files"]
    assert stat.S_IMODE(trained.stat().st_mode) & 0o055, "the folder kept mkdtemp's private 0700 mode"


def test_a_rerun_into_its_own_earlier_output_replaces_it_and_the_marker(trained, tmp_path, monkeypatch, capsys):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    (folder / "xgb_base" / "old-extra.json").write_text("{}")  # listed in the marker: forecaster wrote it
    marker = _marker(folder)
    listed = {**marker, "files": marker["files"] + ["xgb_base/old-extra.json"]}
    (folder / destination.MARKER).write_text(json.dumps(listed))
    code, _, err = run_cli(["train", "--data", "synthetic:300:2", "--out", str(folder)], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads((folder / "config.json").read_text())["data"] == "synthetic:300:2"
    assert not (folder / "xgb_base" / "old-extra.json").exists()
    assert _marker(folder)["files"] == [f for f in _tree(folder) if f != destination.MARKER]
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "a temporary or old copy was left behind"


def test_a_folder_from_before_markers_is_recognised_by_its_layout(trained, tmp_path):
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(trained, legacy)
    (legacy / destination.MARKER).unlink()
    assert destination.check_folder(legacy, destination.MODEL) == set(_tree(legacy))
    (legacy / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds notes.txt and is not an earlier forecaster model"):
        destination.check_folder(legacy, destination.MODEL)


def test_a_user_file_in_an_earlier_report_folder_makes_evaluate_refuse(tmp_path, monkeypatch, capsys):
    report = tmp_path / "report"
    code, _, err = run_cli(["evaluate", "--data", DATA, "--bootstrap", "100", "--out", str(report)],
                           monkeypatch, capsys)
    assert code == 0, err
    assert _marker(report)["kind"] == "report" and "report.html" in _marker(report)["files"]
    (report / "notes.txt").write_text("my notes on the last run")
    before = {name: (report / name).read_bytes() for name in _tree(report)}
    monkeypatch.setattr("forecaster.verbs.evaluate.dataset_from_options", _no_data_please)
    code, _, err = run_cli(["evaluate", "--data", DATA, "--out", str(report)], monkeypatch, capsys)
    assert code == 2 and "holds notes.txt, which forecaster did not write" in err and err.count("\n") == 1
    assert {name: (report / name).read_bytes() for name in _tree(report)} == before


# -- publish_folder: atomic, and never deleting what it did not write ---------------------------


def _publish(folder, text, fail=False):
    def write(staging):
        (staging / "sub").mkdir()
        (staging / "sub" / "a.txt").write_text(text)
        if fail:
            raise RuntimeError("killed halfway")
    return destination.publish_folder(folder, destination.REPORT, write)


def test_a_failed_write_keeps_the_old_output_and_leaves_no_temporary_folder(tmp_path):
    out = tmp_path / "out"
    _publish(out, "first")
    with pytest.raises(RuntimeError, match="killed halfway"):
        _publish(out, "second", fail=True)
    assert (out / "sub" / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_user_file_added_during_the_run_is_kept_and_the_output_not_replaced(tmp_path):
    out = tmp_path / "out"
    _publish(out, "first")

    def write(staging):  # while the (long) run works, the user saves a file into the old output
        (out / "sub" / "notes.txt").write_text("mine")
        (staging / "b.txt").write_text("new")

    with pytest.raises(UserError, match="sub/notes.txt, which forecaster did not write"):
        destination.publish_folder(out, destination.REPORT, write)
    assert (out / "sub" / "notes.txt").read_text() == "mine" and (out / "sub" / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_old_copy_is_deleted_file_by_file_and_a_stranger_survives(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _publish(out, "first")
    swap = destination._swap

    def swap_after_a_user_file_appears(staging, folder, owned):  # the last moment before the rename
        (folder / "sub" / "late.txt").write_text("mine")
        swap(staging, folder, owned)

    monkeypatch.setattr(destination, "_swap", swap_after_a_user_file_appears)
    with pytest.raises(UserError, match="the new output is in place.*late.txt"):
        _publish(out, "second")
    assert (out / "sub" / "a.txt").read_text() == "second"
    kept = [p for p in tmp_path.iterdir() if p.name != "out"]
    assert len(kept) == 1 and (kept[0] / "sub" / "late.txt").read_text() == "mine"
    assert not (kept[0] / "sub" / "a.txt").exists()


def test_a_marker_of_another_kind_is_refused(tmp_path):
    _publish(tmp_path / "out", "x")
    with pytest.raises(UserError, match="report output, not a model"):
        destination.check_folder(tmp_path / "out", destination.MODEL)


# -- batch --out -----------------------------------------------------------------------------


def test_batch_refuses_an_existing_file_without_force_and_replaces_it_with(trained, tmp_path, monkeypatch, capsys):
    out = tmp_path / "forecasts.parquet"
    out.write_bytes(b"last week's forecasts")
    monkeypatch.setattr("forecaster.verbs.batch.dataset_from_options", _no_data_please)
    code, _, err = run_cli(["batch", "--model", str(trained), "--data", DATA, "--out", str(out)], monkeypatch, capsys)
    assert code == 2 and "pass --force" in err and out.read_bytes() == b"last week's forecasts"
    monkeypatch.undo()
    code, _, err = run_cli(["batch", "--model", str(trained), "--data", DATA, "--out", str(out), "--force"],
                           monkeypatch, capsys)
    assert code == 0, err
    assert len(pd.read_parquet(out)) == 400
    assert [p.name for p in tmp_path.iterdir()] == ["forecasts.parquet"]


def test_batch_csv_neutralises_formulas_in_text_and_keeps_numbers(trained, tmp_path, monkeypatch, capsys):
    tx = load_dataset(DATA).transactions[["customer_id", "ts", "amount"]].copy()
    first, second = tx["customer_id"].unique()[:2]
    tx["customer_id"] = tx["customer_id"].replace({first: "=HYPERLINK(\"http://x\")", second: "-42"})
    source = tmp_path / "shop.csv"
    tx.to_csv(source, index=False)
    csv, parquet = tmp_path / "out.csv", tmp_path / "out.parquet"
    for out in (csv, parquet):
        code, _, err = run_cli(["batch", "--model", str(trained), "--data", str(source), "--out", str(out)],
                               monkeypatch, capsys)
        assert code == 0, err
    as_text = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert {"'=HYPERLINK(\"http://x\")", "'-42"} <= set(as_text["customer_id"])
    assert not as_text["customer_id"].str.match(r"[=+\-@]").any()
    raw = pd.read_parquet(parquet)
    assert {"=HYPERLINK(\"http://x\")", "-42"} <= set(raw["customer_id"])  # Parquet is not a spreadsheet
    numbers = pd.read_csv(csv)
    assert pd.api.types.is_float_dtype(numbers["purchase_prob"])
    assert np.allclose(numbers["purchase_prob"], raw["purchase_prob"])  # same rows, same order


def test_neutralise_formulas_touches_only_risky_text():
    frame = pd.DataFrame({
        "text": ["=1+2", "+82-10", "-x", "@SUM(A1)", "\tcmd", "\rcmd", "plain", None, "a=b"],
        "amount": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "flag": [True, False, True, False, True, False, True, False, True],
    })
    safe = destination.neutralise_formulas(frame)
    assert safe["text"].fillna("<missing>").tolist() == [
        "'=1+2", "'+82-10", "'-x", "'@SUM(A1)", "'\tcmd", "'\rcmd", "plain", "<missing>", "a=b"]
    pd.testing.assert_series_equal(safe["amount"], frame["amount"])
    pd.testing.assert_series_equal(safe["flag"], frame["flag"])
    assert frame["text"].iloc[0] == "=1+2", "the caller's frame was changed"


def test_write_file_gives_the_usual_permissions_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "x.csv"
    destination.write_file(out, lambda tmp: tmp.write_text("a\n"))
    assert out.read_text() == "a\n" and stat.S_IMODE(out.stat().st_mode) & 0o044
    def half_then_fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        destination.write_file(out, half_then_fail)
    assert out.read_text() == "a\n" and [p.name for p in tmp_path.iterdir()] == ["x.csv"]


# -- the command line's other one-line errors --------------------------------------------------


def test_a_refused_write_is_one_line_naming_the_path(trained, tmp_path, monkeypatch, capsys):
    def refused(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(destination, "write_file", refused)
    out = tmp_path / "f.csv"
    code, _, err = run_cli(["batch", "--model", str(trained), "--data", DATA, "--out", str(out)], monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]  # the progress bar may leave a blank line
    assert code == 2 and len(lines) == 1
    assert f"cannot write {out}: Permission denied" in lines[0] and "Traceback" not in err


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("forecaster.verbs.narrate.dataset_from_options", interrupted)
    code, _, err = run_cli(["narrate", "C000001", "--anchor", "2024-06", "--data", DATA], monkeypatch, capsys)
    assert code == 130
    assert [line for line in err.splitlines() if line.strip()] == [f"오류: {cli.INTERRUPTED}"]


def test_an_unexpected_os_error_is_not_hidden(monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/internal/template.j2")

    monkeypatch.setattr("forecaster.verbs.narrate.dataset_from_options", bug)
    with pytest.raises(FileNotFoundError):
        run_cli(["narrate", "C000001", "--anchor", "2024-06", "--data", DATA], monkeypatch, capsys)
