"""Degenerate models: `train` warns (and stores the warnings), `batch` and `explain` show
them; with constant scores the top-20% flag still marks exactly floor(0.2 n) customers."""

from __future__ import annotations

import json
import re
import sys
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from clitools import run_cli

from forecaster import cli, model_warnings, top_share

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

HEALTHY = {"validation_pr_auc": 0.36, "climatology_pr_auc": 0.08, "rounds_purchase": 40, "rounds_bucket": 25}


def _summary(**changes) -> dict:
    return {"xgb_base": dict(HEALTHY), "xgb_base+forecaster": {**HEALTHY, **changes}}


@pytest.mark.parametrize("changes, codes", [
    ({}, []),
    ({"rounds_purchase": 3, "rounds_bucket": 3, "validation_pr_auc": 0.081}, []),
    ({"rounds_purchase": 2}, ["early_stop_purchase"]),
    ({"rounds_bucket": 1}, ["early_stop_bucket"]),
    ({"validation_pr_auc": 0.08}, ["no_ranking_skill"]),
    ({"validation_pr_auc": 0.05}, ["no_ranking_skill"]),
    ({"validation_pr_auc": float("nan")}, ["no_ranking_skill"]),
])
def test_each_warning_fires_exactly_at_its_rule(changes, codes):
    warnings = model_warnings.collect(_summary(**changes), "2024-05")
    assert [w["code"] for w in warnings] == codes
    assert all(w["arm"] == "xgb_base+forecaster" for w in warnings)
    assert all("2024-05" in w["message"] and "확인하세요" in w["message"] for w in warnings)
    assert not any(mark in w["message"] for w in warnings for mark in ("(가)", "(이)", "이(가)"))


def _identical_shop(path: Path, customers: int = 60) -> Path:
    """Every customer buys 10,000원 in each of January to May; half of them also in June (the
    validation month). The histories are identical, so no model can rank anyone above anyone:
    every score is the same and the training labels are all 'bought'."""
    rows = []
    for c in range(customers):
        rows.append((f"K{c:03d}", "2024-01-01", 10_000.0))
        rows += [(f"K{c:03d}", f"2024-0{m}-15", 10_000.0) for m in range(2, 6)]
        if c % 2 == 0:
            rows.append((f"K{c:03d}", "2024-06-30", 10_000.0))
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("degenerate")
    data = _identical_shop(folder / "same.csv")
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["forecaster", "train", "--data", str(data), "--out", str(folder / "model")])
    buffer = StringIO()  # the rich console of the verbs writes to whatever sys.stderr is
    try:
        with redirect_stderr(buffer):
            try:
                cli.main()
            except SystemExit as exc:
                assert not exc.code, buffer.getvalue()
    finally:
        mp.undo()
    return data, folder / "model", buffer.getvalue()


def test_train_warns_loudly_stores_and_still_saves(degenerate):
    _, model, err = degenerate
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    codes = {(w["arm"], w["code"]) for w in config["warnings"]}
    for arm in ("xgb_base", "xgb_base+forecaster"):
        assert {(arm, "early_stop_purchase"), (arm, "no_ranking_skill")} <= codes
    printed = [line for line in err.splitlines() if line.startswith("경고: ")]
    assert printed == model_warnings.lines(config)
    assert f"경고 {len(printed)}건은 config.json에도 기록했습니다" in err


def test_batch_summary_and_explain_show_the_warnings(degenerate, tmp_path, monkeypatch, capsys):
    data, model, _ = degenerate
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    expected = model_warnings.lines(config)
    code, _, err = run_cli(["batch", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "b.csv")],
                           monkeypatch, capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("경고: ")] == expected
    code, out, err = run_cli(["explain", "K001", "--anchor", "2024-07", "--data", str(data), "--model", str(model)],
                             monkeypatch, capsys)
    assert code == 0, err
    text = re.sub(r"\s+", " ", out)  # rich wraps long lines at spaces
    first_section = text.index("1. 고객 서술")
    assert all(0 < text.index(re.sub(r"\s+", " ", line)) < first_section for line in expected)  # before any figure
    code, out, err = run_cli(["explain", "K001", "--anchor", "2024-07", "--data", str(data), "--model", str(model),
                              "--format", "json"], monkeypatch, capsys)
    assert code == 0, err
    assert json.loads(out)["model"]["warnings"] == expected


def test_constant_scores_flag_exactly_a_fifth_whatever_the_row_order(degenerate, tmp_path, monkeypatch, capsys):
    data, model, _ = degenerate
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(data).sample(frac=1.0, random_state=7).to_csv(shuffled, index=False)
    flagged = []
    for source in (data, shuffled):
        out = tmp_path / f"{source.stem}.parquet"
        code, _, err = run_cli(["batch", "--model", str(model), "--data", str(source), "--out", str(out)],
                               monkeypatch, capsys)
        assert code == 0, err
        frame = pd.read_parquet(out)
        assert frame["purchase_prob"].nunique() == 1  # the premise: every score is the same
        assert int(frame["top20_target"].sum()) == len(frame) // 5 == 12
        flagged.append(set(frame.loc[frame["top20_target"].astype(bool), "customer_id"]))
    assert flagged[0] == flagged[1]
    code, out, _ = run_cli(["explain", sorted(flagged[0])[0], "--anchor", "2024-07", "--data", str(data),
                            "--model", str(model)], monkeypatch, capsys)
    text = re.sub(r"\s+", " ", out)
    assert code == 0 and "같은 고객이 60명이라 12명을 채울 때까지 순서 규칙으로 정했고, 이 고객은 포함됩니다." in text
    assert top_share.RULE in text
