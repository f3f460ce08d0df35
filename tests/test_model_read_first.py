"""`batch` and `explain` read --model before the data: a damaged or outdated model folder is
refused at once, not after minutes of reading a large shop."""

from __future__ import annotations

import pytest

from clitools import run_cli


@pytest.mark.parametrize("verb", [
    ["batch", "--out", "{tmp}/out.csv"],
    ["batch", "--out", "{tmp}/out.csv", "--chunk-rows", "10"],
    ["explain", "C1", "--anchor", "2024-06"],
])
def test_a_folder_that_is_no_model_is_refused_before_the_data_is_read(verb, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes").mkdir()
    args = [part.format(tmp=tmp_path) for part in verb]
    # the data does not exist: had it been read first, its error would come first
    code, _, err = run_cli([*args, "--model", str(tmp_path / "notes"), "--data", str(tmp_path / "missing.csv")],
                           monkeypatch, capsys)
    assert code == 2
    assert "not a model folder" in err
    assert "missing.csv" not in err
