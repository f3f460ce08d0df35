"""The Python API is the command line's library: the same data gives the same numbers
through ``fc.evaluate`` / ``fc.train`` / ``TrainedModel.predict`` / ``.explain`` as through
``forecaster evaluate`` / ``train`` / ``batch`` / ``explain --format json``; its errors are
typed exceptions, never SystemExit; its progress goes through one replaceable hook."""

from __future__ import annotations

import json
import pydoc

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli
from llm_server import LoopbackLLMServer

import forecaster as fc
from forecaster import evaluation, progress
from forecaster.api.evaluation import _anchor_range
from forecaster.datasets import load_dataset

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:500:4"  # 2022-01..2024-12
ANCHOR = "2024-06"


@pytest.fixture(scope="module")
def dataset() -> fc.Dataset:
    return load_dataset(DATA)


@pytest.fixture(scope="module")
def model(dataset) -> fc.TrainedModel:
    with fc.progress_hook(None):
        return fc.train(dataset)


def _words(text: str) -> list[str]:
    return [w for w in text.split() if any(c.isalnum() for c in w)]  # rules and borders vary with the width


def _json_round_trip(value):
    return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))


def test_evaluate_metrics_equal_the_command_lines_metrics_json(evaluated, tmp_path, monkeypatch, capsys):
    ev = evaluated
    code, _, err = run_cli(["evaluate", "--data", DATA, "--bootstrap", "100", "--out", str(tmp_path / "r")],
                           monkeypatch, capsys)
    assert code == 0, err
    written = json.loads((tmp_path / "r" / "metrics.json").read_text(encoding="utf-8"))
    assert _json_round_trip(ev.report_data) == written
    # the tidy frame holds exactly the arms' pooled and per-anchor numbers of metrics.json
    tidy = ev.metrics.set_index(["arm", "anchor", "metric"])["value"]
    expected = {(arm, anchor, metric): value for arm, entry in written["arms"].items()
                for anchor, scores in {"pooled": entry["pooled"], **entry["by_anchor"]}.items()
                for metric, value in scores.items()}
    assert set(tidy.index) == set(expected)
    for key, value in expected.items():  # metrics.json writes a NaN as null
        assert (value is None and pd.isna(tidy[key])) or tidy[key] == value, key
    diff = ev.differences.set_index(["comparison", "anchor", "metric"])
    pooled = written["differences"]["xgb_base+forecaster - xgb_base"]["rps"]
    assert diff.loc[("xgb_base+forecaster - xgb_base", "pooled", "rps"), ["diff", "lo", "hi"]].tolist() == \
        [pooled["diff"], pooled["lo"], pooled["hi"]]
    pd.testing.assert_frame_equal(ev.predictions.reset_index(drop=True),
                                  pd.read_parquet(tmp_path / "r" / "predictions.parquet"))


@pytest.fixture(scope="module")
def evaluated(dataset) -> fc.Evaluation:
    with fc.progress_hook(None):
        return fc.evaluate(dataset, bootstrap=100)


def test_test_anchors_may_be_a_list_of_consecutive_months(dataset):
    setup = evaluation.prepare(dataset, _anchor_range(["2024-10", "2024-11"]))
    assert setup.test_anchors == (pd.Period("2024-10", "M"), pd.Period("2024-11", "M"))


def test_an_evaluation_writes_its_report_and_shows_in_a_notebook(evaluated, tmp_path):
    ev = evaluated
    paths = ev.write_report(tmp_path / "report")
    assert json.loads(paths["metrics"].read_text(encoding="utf-8")) == _json_round_trip(ev.report_data)
    assert {"reliability", "pr_curve", "gains", "confusion"} <= set(ev.plots)
    assert all(hasattr(fig, "savefig") for fig in ev.plots.values())
    page = ev._repr_html_()
    assert "<table" in page and "xgb_base+forecaster" in page and ev.headline[0][:20] in page
    with pytest.raises(fc.UserError, match="not an earlier forecaster report"):
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "notes.txt").write_text("the user's own file")
        ev.write_report(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "the user's own file"


def test_predict_equals_batch_row_for_row(dataset, model, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "model"
    code, _, err = run_cli(["train", "--data", DATA, "--out", str(folder)], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = run_cli(["batch", "--model", str(folder), "--data", DATA, "--out", str(tmp_path / "rows.parquet")],
                           monkeypatch, capsys)
    assert code == 0, err
    batch = pd.read_parquet(tmp_path / "rows.parquet")
    with fc.progress_hook(None):
        loaded = fc.TrainedModel.load(folder).predict(dataset)
        fitted = model.predict(dataset)
    pd.testing.assert_frame_equal(loaded, batch)
    pd.testing.assert_frame_equal(fitted, batch)  # trained in code: the same model as `forecaster train`


def test_explain_to_dict_equals_explain_format_json(dataset, model, tmp_path, monkeypatch, capsys):
    folder = model.save(tmp_path / "model")
    customer = str(dataset.panel.customer_ids[0])
    code, out, err = run_cli(["explain", customer, "--anchor", ANCHOR, "--model", str(folder), "--data", DATA,
                              "--format", "json"], monkeypatch, capsys)
    assert code == 0, err
    explanation = fc.TrainedModel.load(folder).explain(dataset, customer, ANCHOR)
    assert _json_round_trip(explanation.to_dict()) == json.loads(out)
    code, text_out, _ = run_cli(["explain", customer, "--anchor", ANCHOR, "--model", str(folder), "--data", DATA],
                                monkeypatch, capsys)
    assert _words(explanation.text) == _words(text_out)  # the same words; only the line width differs
    assert "<pre" in explanation._repr_html_() and customer in explanation._repr_html_()


def test_a_korean_dataframe_in_krw_goes_through_without_a_file(dataset, tmp_path):
    tx = dataset.transactions
    frame = pd.DataFrame({"고객번호": tx["customer_id"], "주문일시": tx["ts"].dt.strftime("%Y-%m-%d %H:%M"),
                          "결제금액": [f"{int(a):,}원" for a in tx["amount"]]})
    before = set(tmp_path.iterdir())
    with fc.progress_hook(None):
        shop = fc.load_transactions(frame, currency="KRW", name="주문내역")
        rows = fc.train(shop).predict(shop)
    assert shop.currency == "KRW" and set(tmp_path.iterdir()) == before
    np.testing.assert_array_equal(shop.panel.customer_ids, dataset.panel.customer_ids)
    assert len(rows) == len(shop.panel.customer_ids) and (rows["status"] == "ok").sum() > 400
    assert fc.narrate(shop, rows["customer_id"][0], ANCHOR).endswith("예측 대상: 2024년 6월")


def test_errors_are_typed_and_never_system_exit(dataset, model, tmp_path):
    cases = [
        lambda: fc.load_dataset(str(tmp_path / "missing.csv")),
        lambda: fc.load_dataset("synthetic:abc"),
        lambda: fc.evaluate(dataset, test_anchors="1990-01..1990-02"),
        lambda: fc.evaluate(dataset, test_anchors=["2024-10", "2024-12"]),
        lambda: fc.evaluate(dataset, forecaster="nonesuch"),
        lambda: fc.train(dataset, forecaster=42),
        lambda: fc.TrainedModel().predict(dataset),
        lambda: fc.TrainedModel.load(tmp_path),
        lambda: model.predict(dataset, "next month"),
        lambda: model.explain(dataset, "no-such-customer", ANCHOR),
        lambda: model.predict(dataset, forecaster="llm"),
        lambda: fc.narrate(dataset, "x", "2023-13"),
    ]
    for case in cases:
        with pytest.raises(fc.ForecasterError) as info:
            case()
        assert isinstance(info.value, fc.UserError) and "\n" not in str(info.value)


def test_the_progress_hook_replaces_and_silences_every_message(dataset, tmp_path, capsys):
    tx = load_dataset("cdnow").transactions
    partial = tx[tx["ts"] < pd.Timestamp("1998-06-02")]  # one day into June: a partial month
    events: list[progress.Event] = []
    with fc.progress_hook(events.append):
        shop = fc.load_transactions(partial, currency="USD")
    assert [e.kind for e in events] == ["notice"] and "1998년 6월" in events[0].message
    assert capsys.readouterr().err == ""
    with fc.progress_hook(None):
        fc.load_transactions(partial, currency="USD")
    assert capsys.readouterr().err == ""
    fc.load_transactions(partial, currency="USD")  # the default hook prints on stderr
    assert "1998년 6월" in capsys.readouterr().err
    assert shop.panel.last_month == pd.Period("1998-05", "M")


def test_predict_reports_a_counted_stage_through_the_hook(dataset, model):
    events: list[progress.Event] = []
    with fc.progress_hook(events.append):
        model.predict(dataset)
    counted = [e for e in events if e.kind in ("start", "advance", "end")]
    forecast = len(dataset.panel.histories(dataset.panel.last_month + 1))
    assert [counted[0].kind, counted[0].total] == ["start", forecast]
    assert [counted[-1].kind, counted[-1].done] == ["end", forecast]


def test_a_costly_llm_run_needs_consent_and_sends_nothing_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    dataset = load_dataset("synthetic:120:11")
    with LoopbackLLMServer(lifetime_s=60.0) as server:
        llm = fc.LLMForecaster(model="gpt-4o", base_url=server.base_url, cache_dir=tmp_path / "cache")
        estimates = []
        with fc.progress_hook(None):
            with pytest.raises(fc.CostNotApproved, match="confirm=True"):
                fc.train(dataset, forecaster=llm)
            with pytest.raises(fc.CostNotApproved, match="budget_usd=0.01"):
                fc.train(dataset, forecaster=llm, budget_usd=0.01)
            with pytest.raises(fc.CostNotApproved, match="cancelled"):
                fc.train(dataset, forecaster=llm, confirm=lambda e: estimates.append(e) or False)
        assert server.request_count == 0
    assert estimates and estimates[0].summary()["cost_usd"] > 1.0


def test_help_reads_as_documentation():
    page = pydoc.render_doc(fc, renderer=pydoc.plaintext)
    for name in fc.__all__:
        assert name in page
        doc = getattr(fc, name).__doc__
        assert doc and len(doc.split()) >= 5, name
    for name in ("load_dataset", "load_transactions", "narrate", "evaluate", "train"):
        doc = getattr(fc, name).__doc__
        assert "Example" in doc and "Raises" in doc, name


def test_an_llm_configured_in_code_trains_predicts_from_its_cache_and_saves(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the loopback server needs no key
    small = load_dataset("synthetic:120:11")
    with LoopbackLLMServer(lifetime_s=120.0, max_requests=20_000) as server:
        llm = fc.LLMForecaster(model="loopback-test-model", base_url=server.base_url, cache_dir=tmp_path / "cache")
        with fc.progress_hook(None):
            model = fc.train(small, forecaster=llm, confirm=True)  # an unpriced model: its cost is unknown
            asked = server.request_count
            rows = model.predict(small, small.panel.last_month, forecaster=llm, confirm=True)
        assert asked > 0 and server.request_count == asked  # every answer of the last anchor came from the cache
    assert model.config_["forecaster"] == {**model.config_["forecaster"], "provider": "llm",
                                           "model": "loopback-test-model"}
    assert (rows["provider"] == "llm").all() and (rows["status"].isin(["ok", "no_history", "no_purchase"])).all()
    saved = fc.save_predictions(rows, tmp_path / "rows.csv")
    pd.testing.assert_series_equal(pd.read_csv(saved)["purchase_prob"], rows["purchase_prob"], check_exact=False,
                                  check_dtype=False)
    with pytest.raises(fc.UserError, match="only with --force|exists"):
        fc.save_predictions(rows, saved)
