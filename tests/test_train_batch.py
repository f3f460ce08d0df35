"""`forecaster train` -> artifact folder -> `forecaster batch`, through the real CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli, train_once


DATA = "synthetic:600:3"




@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_once(tmp_path_factory.mktemp("art") / "model", DATA)


def test_artifact_holds_json_models_scheme_features_threshold_and_versions(model_dir):
    names = {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()}
    assert {"config.json", "scheme.json", "features.json", "xgb_base/purchase.json", "xgb_base/bucket.json",
            "xgb_augmented/purchase.json", "xgb_augmented/bucket.json"} <= names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["forecaster"]["provider"] == "empirical"
    assert config["forecaster"]["prompt_version"] == "n/a (not an LLM)"
    assert 0 < config["thresholds"]["xgb_base+forecaster"] < 1
    assert config["validation_anchor"] == "2024-12"  # the last month with an outcome
    assert config["warnings"] == []  # a healthy model: nothing to warn about


def test_batch_writes_one_row_per_customer(model_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "forecasts.parquet"
    code, _, err = run_cli(["batch", "--model", str(model_dir), "--data", DATA, "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_parquet(out)
    assert frame["anchor"].unique().tolist() == ["2025-01"]  # default: the month after the data
    assert frame["customer_id"].is_unique and len(frame) > 500
    probs = frame[[f"p_b{k}" for k in range(4)]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.allclose(frame["purchase_prob"], 1 - frame["p_b0"])
    assert frame["top20_target"].mean() == pytest.approx(0.2, abs=0.01)
    assert (frame["status"] == "ok").all() and (frame["provider"] == "empirical").all()
    assert frame["rationale"].str.contains("LLM의 응답이 아닙니다").all()
    assert not list(tmp_path.glob(".forecasts*"))  # no temporary file left behind


def test_batch_rejects_an_artifact_from_other_code(model_dir, tmp_path, monkeypatch, capsys):
    import shutil

    copy = tmp_path / "old-model"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["code_version"] = "0.0.1"
    (copy / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(["batch", "--model", str(copy), "--data", DATA,
                           "--out", str(tmp_path / "x.parquet")], monkeypatch, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "code version 0.0.1" in err and "forecaster train" in err
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("args, needle", [
    (["--anchor", "2031-01"], "outside the data"),
    (["--anchor", "January"], "YYYY-MM"),
    (["--out-format"], "No such option"),
])
def test_batch_bad_input_is_one_line(model_dir, tmp_path, monkeypatch, capsys, args, needle):
    code, _, err = run_cli(["batch", "--model", str(model_dir), "--data", DATA,
                           "--out", str(tmp_path / "y.parquet"), *args], monkeypatch, capsys)
    assert code == 2 and needle in err


def test_reloaded_models_predict_what_training_saw(model_dir):
    from forecaster import artifact

    art = artifact.load(model_dir)
    model = art.models["xgb_base"]
    assert model.purchase_.best_iteration >= 0
    x = pd.DataFrame(np.zeros((3, len(model.feature_names_))), columns=model.feature_names_)
    p = model.predict_proba(x)
    assert np.allclose(p.sum(axis=1), 1.0)


def test_limit_forecasts_fewer_customers_with_the_same_numbers(model_dir, tmp_path, monkeypatch, capsys):
    full, part = tmp_path / "full.parquet", tmp_path / "part.parquet"
    for out, extra in ((full, []), (part, ["--limit", "50"])):
        code, _, err = run_cli(["batch", "--model", str(model_dir), "--data", DATA, "--out", str(out), *extra],
                               monkeypatch, capsys)
        assert code == 0, err
    a, b = pd.read_parquet(full).set_index("customer_id"), pd.read_parquet(part).set_index("customer_id")
    assert len(b) == 50
    cols = ["forecaster_p_b0", "forecaster_expected_spend", "p_b0", "p_b3", "purchase_prob"]
    pd.testing.assert_frame_equal(a.loc[b.index, cols], b[cols])


def _shop_with_every_kind_of_customer(path):
    """30 regular customers buying every month from January to June 2024 (on spread-out days),
    LATE first buying in May, RET with only a return, ZERO with only a zero amount, and NEWP
    whose only purchase falls on 1 July at 04:00 (a trailing partial month the data layer
    drops from the panel)."""
    rows = [(f"C{c:02d}", f"2024-{m:02d}-{c % 28 + 1:02d}", 10_000.0 + 1_000 * c) for c in range(30)
            for m in range(1, 7)]
    rows += [("LATE", "2024-05-20", 25_000.0), ("LATE", "2024-06-20", 5_000.0), ("RET", "2024-03-03", -8_000.0),
             ("ZERO", "2024-04-04", 0.0), ("NEWP", "2024-07-01 04:00", 12_000.0)]
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("anchor, statuses", [
    (None, {"ok": 31, "no_history": 1, "no_purchase": 2}),  # 2024-07: LATE has a history, NEWP none
    ("2024-04", {"ok": 30, "no_history": 2, "no_purchase": 2}),  # LATE's first purchase is in May
])
def test_batch_gives_every_customer_of_the_data_a_row(model_dir, tmp_path, monkeypatch, capsys, anchor, statuses):
    data = _shop_with_every_kind_of_customer(tmp_path / "shop.csv")
    out = tmp_path / "rows.parquet"
    extra = ["--anchor", anchor] if anchor else []
    code, _, err = run_cli(["batch", "--model", str(model_dir), "--data", str(data), "--out", str(out), *extra],
                           monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_parquet(out).set_index("customer_id")
    assert len(frame) == pd.read_csv(data)["customer_id"].nunique() == 34
    assert frame.index.is_monotonic_increasing and frame["status"].value_counts().to_dict() == statuses
    assert (frame["anchor"] == (anchor or "2024-07")).all()
    assert frame.loc["RET", "reason"] == frame.loc["ZERO", "reason"] == "구매 기록이 없습니다(반품이나 0원 거래만 있음)"
    assert frame.loc["NEWP", "status"] == "no_history" and "분석에 쓰지 않은 달" in frame.loc["NEWP", "reason"]
    if anchor == "2024-04":
        assert frame.loc["LATE", "reason"] == "첫 구매가 2024년 5월이라 2024년 4월 예측에 쓸 이전 기록이 없습니다"
    others = frame[frame["status"] != "ok"]
    assert others[["purchase_prob", "p_b0", "expected_spend", "forecaster_p_b0"]].isna().all().all()
    assert others["top20_target"].isna().all() and others["decision"].isna().all()
    forecast = frame[frame["status"] == "ok"]
    assert int(forecast["top20_target"].sum()) == len(forecast) // 5
    counted = ", ".join(f"{name} {statuses[key]}명" for key, name in
                        (("no_history", "이전 기록 없음"), ("no_purchase", "구매 기록 없음")))
    assert f"34명 중 {statuses['ok']}명 예측 완료 ({counted}), 결과를" in err


def test_limit_counts_customers_of_the_data_forecast_or_not(model_dir, tmp_path, monkeypatch, capsys):
    data = _shop_with_every_kind_of_customer(tmp_path / "shop.csv")
    out = tmp_path / "rows.csv"
    code, _, err = run_cli(["batch", "--model", str(model_dir), "--data", str(data), "--out", str(out),
                            "--limit", "33"], monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_csv(out)
    # ids sort as C00..C29, LATE, NEWP, RET, ZERO: the first 33 leave ZERO out
    assert frame["customer_id"].tolist()[-3:] == ["LATE", "NEWP", "RET"] and len(frame) == 33
    assert "33명 중 31명 예측 완료 (이전 기록 없음 1명, 구매 기록 없음 1명)" in err
