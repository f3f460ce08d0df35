"""docs/python_api_example.py, the worked example of docs/python-api.md, runs as a script on
the full CDNOW data, and everything it prints equals the command line's on the same data:
each figure line (``RPS xgb_base 0.034367``) at its printed precision, the data summary, the
narrative, the headline and the explanation; its report's metrics.json is the CLI's exactly.

The script runs in a subprocess while the command line runs in this process, so that the two
full-data runs share the machine's two cores instead of queueing.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pandas as pd
import pytest
from clitools import run_cli

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "python_api_example.py"
DOC = SCRIPT.with_name("python-api.md")
DATA = "cdnow"
CUSTOMER = "00145"
NARRATE_ANCHOR = "1998-01"
EXPLAIN_ANCHOR = "1998-06"
HEADLINE = "xgb_base+forecaster - xgb_base"
PRINTED_METRICS = ("rps", "log_loss", "pr_auc")  # the pooled metrics the example prints per arm
SCRIPT_TIMEOUT_S = 600  # a hung script fails the module instead of the whole suite
WIDE = "250"  # COLUMNS for the CLI: rich tables and the explanation unwrapped, as the script prints them
# A figure line: an upper-case label, at most one qualifier (an arm, a status), one value.
FIGURE_LINE = re.compile(r"^([A-Z][A-Z0-9_]+(?: \S+)?) (\S+)$")
RULE = re.compile("─+")
TWO_CELL_ROW = re.compile(r"^│ ([^│]+?) *│ ([^│]+?) *│$")  # a row of `forecaster data`'s item/value tables


@dataclass
class Started:
    """The example running in a subprocess; its output goes to files (a pipe nobody reads
    would block it once full)."""

    process: subprocess.Popen
    folder: Path
    stdout: Path
    stderr: Path

    def finish(self) -> str:
        """Wait for the script; its stdout (the test fails with its stderr if it failed)."""
        code = self.process.wait(timeout=SCRIPT_TIMEOUT_S)
        assert code == 0, self.stderr.read_text(encoding="utf-8")[-3000:]
        return self.stdout.read_text(encoding="utf-8")


@dataclass
class CliRun:
    """What the command line made on the same data."""

    data_table: str
    narrative: str
    report: Path
    model: Path
    rows: pd.DataFrame
    explained: dict
    explanation_text: str


class _Captured:
    """``capsys.readouterr()`` for a module-scoped fixture (capsys is per test): sys.stdout
    and sys.stderr into strings, read and reset."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self._reset()

    def _reset(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.monkeypatch.setattr(sys, "stdout", self.out)
        self.monkeypatch.setattr(sys, "stderr", self.err)

    def readouterr(self) -> SimpleNamespace:
        captured = SimpleNamespace(out=self.out.getvalue(), err=self.err.getvalue())
        self._reset()
        return captured


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Iterator[Started]:
    folder = tmp_path_factory.mktemp("example")
    stdout, stderr = folder / "stdout.txt", folder / "stderr.txt"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with stdout.open("w", encoding="utf-8") as out, stderr.open("w", encoding="utf-8") as err:
        # as `python SCRIPT OUT`, searching the small grid as the command line here does (tests/small_grid.py)
        command = [sys.executable, str(Path(__file__).with_name("small_grid.py")), str(SCRIPT), str(folder / "out")]
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=SCRIPT.parents[1])
    started = Started(process, folder / "out", stdout, stderr)
    yield started
    if process.poll() is None:  # a test failed before waiting for it
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def cli(script, tmp_path_factory) -> CliRun:
    """The command line's runs, made while the script (started first) runs."""
    folder = tmp_path_factory.mktemp("cli")
    report, model, rows = folder / "report", folder / "model", folder / "rows.parquet"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", WIDE)
        captured = _Captured(mp)

        def stdout_of(*args: str) -> str:
            code, out, err = run_cli(list(args), mp, captured)
            assert code == 0, err
            return out

        # the data's tables; the memory estimate after them is a plan for the runs, not the data
        data_table = stdout_of("data", "--data", DATA).split("예상 최대 메모리")[0]
        narrative = stdout_of("narrate", CUSTOMER, "--anchor", NARRATE_ANCHOR, "--data", DATA)
        stdout_of("evaluate", "--data", DATA, "--out", str(report))
        stdout_of("train", "--data", DATA, "--out", str(model))
        stdout_of("batch", "--model", str(model), "--data", DATA, "--out", str(rows))
        explain = ["explain", CUSTOMER, "--anchor", EXPLAIN_ANCHOR, "--model", str(model), "--data", DATA]
        explained = json.loads(stdout_of(*explain, "--format", "json"))
        explanation_text = stdout_of(*explain)
    return CliRun(data_table, narrative, report, model, pd.read_parquet(rows), explained, explanation_text)


@pytest.fixture(scope="module")
def printed(script, cli) -> str:
    """The script's stdout (depends on ``cli`` so that both run at once)."""
    return script.finish()


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _figure_lines(stdout: str) -> dict[str, str]:
    found = [FIGURE_LINE.match(line) for line in stdout.splitlines()]
    figures = [m.groups() for m in found if m]
    labels = [label for label, _ in figures]
    assert len(labels) == len(set(labels)), f"a figure label is printed twice: {labels}"
    return dict(figures)


def _cli_figures(cli: CliRun) -> dict[str, object]:
    """The command line's value of every figure line the example prints, by label."""
    metrics = _read_json(cli.report / "metrics.json")
    config = _read_json(cli.model / "config.json")
    figures: dict[str, object] = {f"{metric.upper()} {arm}": entry["pooled"][metric]
                                  for arm, entry in metrics["arms"].items() for metric in PRINTED_METRICS}
    difference = metrics["differences"][HEADLINE]["rps"]
    figures |= {"RPS_DIFF": difference["diff"], "RPS_DIFF_LO": difference["lo"], "RPS_DIFF_HI": difference["hi"],
                "RPS_DIFF_MDE": difference["mde"]}
    for arm, summary in config["summary"].items():
        figures |= {f"VALIDATION_RPS {arm}": summary["validation_rps"],
                    f"VALIDATION_PR_AUC {arm}": summary["validation_pr_auc"]}
    figures |= {"TRAINED_ANCHORS": "..".join(config["trained_anchors"]),
                "VALIDATION_ANCHOR": config["validation_anchor"]}
    rows = cli.rows
    (anchor,) = rows["anchor"].unique()
    figures |= {f"STATUS {status}": int(count) for status, count in rows["status"].value_counts().items()}
    figures |= {"PREDICT_ANCHOR": anchor, "TOP20_FLAGS": int(rows["top20_target"].sum()),
                "MEAN_PURCHASE_PROB": float(rows["purchase_prob"].mean()),
                "SUM_EXPECTED_SPEND": float(rows["expected_spend"].sum())}
    explained = cli.explained
    figures |= {"PURCHASE_PROBABILITY": explained["purchase_probability"], "THRESHOLD": explained["threshold"],
                "DECISION": explained["decision"], "TOP20": explained["top20"]}
    return figures


def _prints_as(value: object, printed: str) -> bool:
    """Whether ``value`` reads ``printed`` at the printed precision: a float with as many
    decimals (and the sign shown, when the line shows it), anything else as str()."""
    if isinstance(value, float):
        decimals = len(printed.partition(".")[2])
        sign = "+" if printed.startswith("+") else ""
        return format(value, f"{sign}.{decimals}f") == printed
    return str(value) == printed


def _words(text: str) -> str:
    """The text's words, one space apart, without the rules (───) whose length is the width."""
    return " ".join(RULE.sub(" ", text).split())


def test_every_printed_figure_equals_the_command_lines(printed, cli):
    figures, expected = _figure_lines(printed), _cli_figures(cli)
    assert set(figures) == set(expected)
    wrong = {label: (figures[label], value) for label, value in expected.items()
             if not _prints_as(value, figures[label])}
    assert not wrong, f"printed vs command line: {wrong}"


def test_the_written_report_is_the_command_lines(printed, script, cli):
    assert _read_json(script.folder / "report" / "metrics.json") == _read_json(cli.report / "metrics.json")


def test_the_summary_narrative_headline_and_explanation_are_the_command_lines(printed, script, cli):
    assert printed.splitlines()[0] == f"output folder: {script.folder}"
    lines = [_words(line) for line in printed.splitlines()]
    cells = [m.groups() for m in map(TWO_CELL_ROW.match, cli.data_table.splitlines()) if m]
    assert len(cells) >= 10 and all(any(line.endswith(f"{item} {value}") for line in lines) for item, value in cells)
    assert cli.narrative in printed
    report_md = (cli.report / "report.md").read_text(encoding="utf-8")
    after_difference = printed.partition("\nRPS_DIFF_MDE ")[2].split("\n")[1:]
    headline = after_difference[:next(i for i, line in enumerate(after_difference) if line.startswith("report: "))]
    assert headline and all(sentence in report_md for sentence in headline)
    # the explanation names its model folder: the only words that differ
    ours = _words(printed.replace(str(script.folder / "model"), "MODEL"))
    assert _words(cli.explanation_text.replace(str(cli.model), "MODEL")) in ours


def _code_cells(script: str) -> list[str]:
    cells = re.split(r"^# %%(.*)$", script, flags=re.M)[1:]
    return [body.strip("\n") for kind, body in zip(cells[0::2], cells[1::2]) if not kind.strip()]


def test_the_api_doc_shows_every_cell_and_documents_every_public_name():
    import forecaster as fc

    doc = DOC.read_text(encoding="utf-8")
    cells = _code_cells(SCRIPT.read_text(encoding="utf-8"))
    assert len(cells) >= 8 and all(f"```python\n{cell}\n```" in doc for cell in cells)
    assert [name for name in fc.__all__ if f"#### `fc.{name}`" not in doc] == []
