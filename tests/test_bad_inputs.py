"""Every bad input a user can give, through the real command line: exit status 2, exactly one
line on stderr ("오류: ..."), no traceback, and nothing created, changed or deleted.

The table is meant to grow: a case is an id, the argv (``{tmp}`` is the test's own folder,
which is also the working folder; ``{model}`` is ``{tmp}/model``, a copy of a freshly trained
artifact when ``setup`` made one), a ``setup`` that prepares files in ``{tmp}``, and a
fragment the one line must contain. After the run, ``{tmp}`` must hold exactly what it held
before (same files, same bytes), so a refused destination gets nothing new and loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clitools import run_cli, train_once

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py


DATA = "synthetic:400:5"  # small: each case loads it in well under a second
Setup = Callable[[Path, Path], None]


def nothing(tmp: Path, trained: Path) -> None:
    pass


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    needle: str  # must appear in the one stderr line: the right error, not just any
    setup: Setup = field(default=nothing)


# -- setups ----------------------------------------------------------------------------------


def files(**contents: str) -> Setup:
    """Write ``{tmp}/<name>`` for each keyword (``__`` in a name is a ``/``)."""
    def setup(tmp: Path, trained: Path) -> None:
        for name, text in contents.items():
            path = tmp / name.replace("__", "/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return setup


def model(edit: Callable[[Path], None] = lambda folder: None) -> Setup:
    """A copy of the trained artifact at ``{tmp}/model``, then ``edit(folder)`` damages it."""
    def setup(tmp: Path, trained: Path) -> None:
        shutil.copytree(trained, tmp / "model")
        edit(tmp / "model")
    return setup


def both(*setups: Setup) -> Setup:
    def setup(tmp: Path, trained: Path) -> None:
        for one in setups:
            one(tmp, trained)
    return setup


def set_config(key: str, value: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        keys = key.split(".")
        target = config
        for k in keys[:-1]:
            target = target[k]
        if value is DELETE:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
        (folder / "config.json").write_text(json.dumps(config))
    return edit


DELETE = object()


def write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).write_text(text)


def remove(rel: str) -> Callable[[Path], None]:
    return lambda folder: (folder / rel).unlink()


def swap_models(folder: Path) -> None:
    """A valid XGBoost model in the wrong place: the bucket model where the purchase model goes."""
    shutil.copy(folder / "xgb_base" / "bucket.json", folder / "xgb_base" / "purchase.json")


def earlier_report(tmp: Path, trained: Path) -> None:
    """A report folder as `evaluate` leaves it (its marker lists its files)."""
    folder = tmp / "report"
    folder.mkdir()
    (folder / "report.md").write_text("# 보고서")
    (folder / ".forecaster-output.json").write_text(json.dumps({"kind": "report", "files": ["report.md"]}))


# -- the table -------------------------------------------------------------------------------

BATCH = ["batch", "--model", "{model}", "--data", DATA, "--out", "{tmp}/out.csv"]
TRAIN = ["train", "--data", DATA]
EVALUATE = ["evaluate", "--data", DATA, "--sample-customers", "200"]
CSV_HEADER = "customer_id,ts,amount\n"

CASES = [
    # damaged or tampered artifact folders
    Case("artifact-config-bad-json", BATCH, "config.json is damaged (not JSON", model(write("config.json", "{oops"))),
    Case("artifact-config-missing", BATCH, "not a model folder (no config.json)", model(remove("config.json"))),
    Case("artifact-config-not-object", BATCH, "config.json is damaged (not a JSON object)",
         model(write("config.json", "[1, 2]"))),
    Case("artifact-threshold-high", BATCH, "config.json is damaged (thresholds.xgb_base", model(
        set_config("thresholds.xgb_base", "high"))),
    Case("artifact-threshold-missing", BATCH, "thresholds has no entry for xgb_base+forecaster",
         model(set_config("thresholds.xgb_base+forecaster", DELETE))),
    Case("artifact-threshold-out-of-range", BATCH, "a threshold is outside 0..1",
         model(set_config("thresholds.xgb_base", 7.5))),
    Case("artifact-spend-not-numbers", BATCH, "config.json is damaged (representative_spend",
         model(set_config("representative_spend", ["a", "b", "c", "d"]))),
    Case("artifact-spend-wrong-length", BATCH, "representative_spend is not 4 amounts",
         model(set_config("representative_spend", [0.0, 1.0]))),
    Case("artifact-forecaster-missing", BATCH, "config.json is damaged (forecaster",
         model(set_config("forecaster", DELETE))),
    Case("artifact-features-not-lists", BATCH, "config.json is damaged (features",
         model(set_config("features", {"xgb_base": "recency"}))),
    Case("artifact-history-months-text", BATCH, "config.json is damaged (history_months",
         model(set_config("history_months", "12"))),
    Case("artifact-code-version", BATCH, "trained by different code", model(set_config("code_version", "0.0.1"))),
    Case("artifact-scheme-missing", BATCH, "scheme.json is damaged (missing)", model(remove("scheme.json"))),
    Case("artifact-scheme-bad-json", BATCH, "scheme.json is damaged (not JSON", model(write("scheme.json", "{"))),
    Case("artifact-scheme-invalid", BATCH, "scheme.json is damaged (edges",
         model(write("scheme.json", '{"edges": "high", "currency": "KRW"}'))),
    Case("artifact-features-file-missing", BATCH, "features.json is damaged (missing)", model(remove("features.json"))),
    Case("artifact-features-file-differs", BATCH, "features.json is damaged",
         model(write("features.json", '{"xgb_base": []}'))),
    Case("artifact-model-garbage", BATCH, "xgb_base/ is damaged (XGBoost cannot load it",
         model(write("xgb_base/purchase.json", "garbage"))),
    Case("artifact-model-missing", BATCH, "xgb_augmented/ is damaged (XGBoost cannot load it",
         model(remove("xgb_augmented/bucket.json"))),
    Case("artifact-model-swapped", BATCH, "xgb_base/purchase.json is damaged", model(swap_models)),
    Case("artifact-is-a-file", ["batch", "--model", "{tmp}/m.txt", "--data", DATA, "--out", "{tmp}/out.csv"],
         "not a model folder", files(**{"m.txt": "x"})),
    Case("explain-damaged-artifact",
         ["explain", "C000001", "--anchor", "2024-06", "--data", DATA, "--model", "{model}"],
         "config.json is damaged", model(set_config("thresholds.xgb_base+forecaster", "high"))),
    # destinations: train --out
    Case("train-out-file", [*TRAIN, "--out", "{tmp}/thesis.txt"], "a file of that name exists",
         files(**{"thesis.txt": "my thesis"})),
    Case("train-out-current-folder", [*TRAIN, "--out", "."], "the current folder",
         files(**{"thesis.txt": "my thesis"})),
    Case("train-out-parent-folder", [*TRAIN, "--out", ".."], "the current folder or holds it"),
    Case("train-out-foreign-folder", [*TRAIN, "--out", "{tmp}/work"], "holds thesis.txt and is not an earlier",
         files(**{"work__thesis.txt": "my thesis"})),
    Case("train-out-foreign-empty-subfolder", [*TRAIN, "--out", "{tmp}/work"], "holds only folders",
         lambda tmp, trained: (tmp / "work" / "photos").mkdir(parents=True)),
    Case("train-out-earlier-model-with-user-file", [*TRAIN, "--out", "{model}"],
         "holds notes.txt, which forecaster did not write", model(write("notes.txt", "mine"))),
    Case("train-out-earlier-report", [*TRAIN, "--out", "{tmp}/report"], "forecaster's report output, not a model",
         earlier_report),
    Case("train-out-under-a-file", [*TRAIN, "--out", "{tmp}/thesis.txt/model"], "is a file, so the folder cannot",
         files(**{"thesis.txt": "my thesis"})),
    Case("train-out-damaged-marker", [*TRAIN, "--out", "{model}"], "forecaster-output.json cannot be read",
         model(write(".forecaster-output.json", "{"))),
    Case("train-out-symlink", [*TRAIN, "--out", "{tmp}/link"], "it is a symbolic link",
         both(model(), lambda tmp, trained: (tmp / "link").symlink_to(tmp / "model"))),
    # destinations: evaluate --out
    Case("evaluate-out-file", [*EVALUATE, "--out", "{tmp}/notes.txt"], "a file of that name exists",
         files(**{"notes.txt": "mine"})),
    Case("evaluate-out-current-folder", [*EVALUATE, "--out", "."], "the current folder",
         files(**{"notes.txt": "mine"})),
    Case("evaluate-out-earlier-report-with-user-file", [*EVALUATE, "--out", "{tmp}/report"],
         "holds notes.txt, which forecaster did not write",
         both(earlier_report, files(**{"report__notes.txt": "mine"}))),
    Case("evaluate-out-model-folder", [*EVALUATE, "--out", "{model}"], "forecaster's model output, not a report",
         model()),
    # destinations: batch --out
    Case("batch-out-folder-named-csv", [*BATCH[:-1], "{tmp}/out.csv"], "that is a folder",
         both(model(), lambda tmp, trained: (tmp / "out.csv").mkdir())),
    Case("batch-out-existing-file", BATCH, "the file exists; pass --force", both(model(), files(**{"out.csv": "old"}))),
    Case("batch-out-txt", [*BATCH[:-1], "{tmp}/out.txt"], "ending in .parquet or .csv", model()),
    Case("batch-out-under-a-file", [*BATCH[:-1], "{tmp}/notes.txt/out.csv"], "is a file, so the folder",
         both(model(), files(**{"notes.txt": "mine"}))),
    # options and data
    Case("history-months-zero", ["narrate", "C000001", "--anchor", "2024-06", "--data", DATA, "--history-months", "0"],
         "--history-months 0"),
    Case("history-months-huge", ["narrate", "C000001", "--anchor", "2024-06", "--data", DATA,
                                 "--history-months", "100000"], "from 1 to 120"),
    Case("history-months-text", ["narrate", "C000001", "--anchor", "2024-06", "--history-months", "twelve"],
         "Invalid value for '--history-months'"),
    Case("anchor-month-13", ["narrate", "C000001", "--anchor", "2024-13", "--data", DATA], "is not a month"),
    Case("anchor-word", ["narrate", "C000001", "--anchor", "January", "--data", DATA], "is not a month"),
    Case("anchor-outside-data", [*BATCH, "--anchor", "2031-01"], "outside the data", model()),
    Case("batch-anchor-word", [*BATCH, "--anchor", "soon"], "--anchor", model()),
    Case("unknown-customer-narrate", ["narrate", "NOPE", "--anchor", "2024-06", "--data", DATA], "'NOPE' is not"),
    Case("unknown-customer-explain", ["explain", "NOPE", "--anchor", "2024-06", "--data", DATA], "'NOPE'"),
    Case("unknown-data-file", ["data", "--data", "{tmp}/missing.csv"], "missing.csv"),
    Case("bad-currency", ["data", "--data", "{tmp}/t.csv", "--currency", "dollars"], "--currency 'dollars'",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-05,100\n"})),
    Case("bad-format", ["explain", "C000001", "--anchor", "2024-06", "--data", DATA, "--format", "xml"],
         "--format xml"),
    Case("unknown-provider", [*TRAIN, "--out", "{tmp}/m", "--provider", "oracle"], "oracle"),
    Case("bad-synthetic-spec", ["data", "--data", "synthetic:lots"], "synthetic"),
    Case("csv-empty-date", ["data", "--data", "{tmp}/t.csv"], "the date is",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-05,100\nB,,200\n"})),
    Case("csv-non-numeric-amount", ["data", "--data", "{tmp}/t.csv"], "column 'amount'",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-05,100\nB,2024-02-01,lots\n"})),
    Case("csv-unknown-column", ["data", "--data", "{tmp}/t.csv", "--amount-col", "price"], "no column 'price'",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-05,100\n"})),
    Case("missing-required-option", ["train", "--data", DATA], "Missing option '--out'"),
    Case("unknown-option", ["narrate", "C000001", "--anchor", "2024-06", "--colour"], "No such option: --colour"),
    Case("unknown-verb", ["forecast"], "No such command 'forecast'"),
    Case("bad-test-anchors", [*EVALUATE, "--out", "{tmp}/r", "--test-anchors", "spring"], "--test-anchors"),
    Case("bootstrap-too-small", [*EVALUATE, "--out", "{tmp}/r", "--bootstrap", "5"], "'--bootstrap'"),
    # too little data (forecaster/minimum_data.py)
    Case("train-two-months", ["train", "--data", "{tmp}/t.csv", "--out", "{tmp}/m"],
         "train needs at least 4 complete months of data (it has 2)",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-01,100\nB,2024-01-20,200\nA,2024-02-10,150\nB,2024-02-29,50\n"})),
    Case("evaluate-two-months", ["evaluate", "--data", "{tmp}/t.csv", "--out", "{tmp}/r"],
         "evaluate needs at least 5 complete months of data (it has 2)",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-01,100\nB,2024-01-20,200\nA,2024-02-10,150\nB,2024-02-29,50\n"})),
    Case("explain-default-model-two-months", ["explain", "A", "--anchor", "2024-02", "--data", "{tmp}/t.csv"],
         "explain without --model (its default model) needs at least 4 complete months",
         files(**{"t.csv": CSV_HEADER + "A,2024-01-01,100\nB,2024-01-20,200\nA,2024-02-10,150\nB,2024-02-29,50\n"})),
]


# -- running the table -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One artifact per session, trained on the small synthetic shop; cases copy it."""
    return train_once(tmp_path_factory.mktemp("trained") / "model", DATA)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) -> its content hash or 'dir'."""
    seen = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs:
            seen[os.path.relpath(os.path.join(root, name), folder)] = "dir"
        for name in names:
            path = Path(root, name)
            seen[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case: Case, trained, tmp_path, tmp_path_factory,
                                                          monkeypatch, capsys):
    work = tmp_path / "work-folder"  # a level below tmp_path, so `--out ..` has a parent to refuse
    work.mkdir()
    case.setup(work, trained)
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # a default model never lands in ~
    before = snapshot(tmp_path)
    argv = [arg.format(tmp=work, model=work / "model") for arg in case.argv]
    code, out, err = run_cli(argv, monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("오류: "), err
    assert "Traceback" not in err and "Traceback" not in out
    assert case.needle in lines[0], lines[0]
    assert snapshot(tmp_path) == before, "the run created, changed or deleted a file"


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
