"""The LLM provider end to end through the command line, against the loopback
OpenAI-compatible server (no network): evaluate with both forecasters, train, batch, and
a re-run that is served from the cache."""

import json

import pandas as pd
import pytest
from clitools import run_cli

from forecaster.datasets import load_dataset
from llm_server import LoopbackLLMServer

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py




@pytest.fixture(scope="module")
def shop_csv(tmp_path_factory):
    """150 synthetic customers over 8 months, as a user's CSV file in KRW."""
    tx = load_dataset("synthetic:150:11").transactions
    tx = tx[tx["ts"] < pd.Timestamp("2022-09-01")]
    path = tmp_path_factory.mktemp("shop") / "orders.csv"
    tx.rename(columns={"customer_id": "member", "ts": "ordered_at", "amount": "paid"}).to_csv(path, index=False)
    return path


@pytest.fixture
def server():
    with LoopbackLLMServer(lifetime_s=240.0, max_requests=20_000) as s:
        yield s


def data_args(path):
    return ["--data", str(path), "--customer-col", "member", "--date-col", "ordered_at",
            "--amount-col", "paid", "--order-col", "order_id", "--currency", "KRW"]


def llm_args(server, cache_dir):
    return ["--provider", "llm", "--llm-model", "loopback-test-model", "--base-url", server.base_url,
            "--cache-dir", str(cache_dir), "--yes"]


def test_evaluate_with_llm_runs_both_forecasters_and_reports_the_ledger(shop_csv, server, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    code, _, err = run_cli(["evaluate", *data_args(shop_csv), *llm_args(server, tmp_path / "c"),
                           "--bootstrap", "100", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    text = json.dumps(metrics, ensure_ascii=False)
    for arm in ("forecaster", "empirical", "xgb_base+forecaster", "xgb_base+empirical", "xgb_base"):
        assert f'"{arm}"' in text, arm
    assert "loopback-test-model" in text and "system-v2+narrative-v2" in text
    first_run_requests = server.request_count
    assert first_run_requests > 0
    report = (out / "report.md").read_text()
    assert "loopback-test-model" in report
    # a second run is served from the cache: not one request more
    code, _, err = run_cli(["evaluate", *data_args(shop_csv), *llm_args(server, tmp_path / "c"),
                           "--bootstrap", "100", "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert server.request_count == first_run_requests


def test_train_and_batch_with_llm(shop_csv, server, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    code, _, err = run_cli(["train", *data_args(shop_csv), *llm_args(server, tmp_path / "c"),
                           "--out", str(model)], monkeypatch, capsys)
    assert code == 0, err
    config = json.loads((model / "config.json").read_text())
    assert config["forecaster"]["provider"] == "llm" and config["forecaster"]["model"] == "loopback-test-model"
    batch_args = ["--model", str(model), *data_args(shop_csv), "--base-url", server.base_url,
                  "--cache-dir", str(tmp_path / "c"), "--yes"]
    code, _, err = run_cli(["batch", *batch_args, "--dry-run", "--out", str(tmp_path / "x.csv")], monkeypatch, capsys)
    assert code == 0, err
    assert not (tmp_path / "x.csv").exists()  # a dry run writes nothing
    before = server.request_count
    code, _, err = run_cli(["batch", *batch_args, "--out", str(tmp_path / "f.csv")], monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "f.csv")
    assert (frame["provider"] == "llm").all() and frame["anchor"].unique().tolist() == ["2022-09"]
    assert server.request_count - before == len(frame)  # one call per customer, none before
    assert set(frame["status"]) == {"ok"}


def test_llm_without_credentials_is_one_line(shop_csv, tmp_path, monkeypatch, capsys):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FORECASTER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run_cli(["evaluate", *data_args(shop_csv), "--provider", "llm",
                           "--out", str(tmp_path / "r")], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "FORECASTER_MODEL" in err
    assert not (tmp_path / "r").exists()


# -- runs that failed --------------------------------------------------------------------------


def invalid_answers_server():
    """Every answer sums to 0.7: each customer is re-asked, then fails (validation_error)."""
    return LoopbackLLMServer(fault_rate=1.0, faults=("bad_sum",), lifetime_s=240.0, max_requests=20_000)


def error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("오류:")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]) and "Traceback" not in err, err
    return lines[0]


def test_batch_over_max_failed_writes_its_rows_then_exits_2(shop_csv, server, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    code, _, err = run_cli(["train", *data_args(shop_csv), *llm_args(server, tmp_path / "c"), "--out", str(model)],
                           monkeypatch, capsys)
    assert code == 0, err
    out = tmp_path / "f.csv"
    with invalid_answers_server() as bad:
        args = ["batch", "--model", str(model), *data_args(shop_csv), "--base-url", bad.base_url,
                "--cache-dir", str(tmp_path / "c2"), "--yes", "--out", str(out)]
        code, _, err = run_cli(args, monkeypatch, capsys)
        assert code == 2
        line = error_line(err)
        frame = pd.read_csv(out)  # written first: every row, the failed ones marked
        llm_rows = frame[frame["provider"] == "llm"]
        assert (llm_rows["status"] == "failed").all() and len(llm_rows) > 0
        assert f"{len(frame):,}행" in line and str(out) in line and "--max-failed 10%를 넘었습니다" in line
        assert "validation_error" in err and "100.0%" in err  # the failures by reason, before the line
        asked = bad.request_count
        code, _, err = run_cli([*args, "--max-failed", "1.0", "--force"], monkeypatch, capsys)
        assert code == 0, err
        assert bad.request_count - asked == asked  # failures are not cached: asked again
    stopped = LoopbackLLMServer().start()
    stopped.stop()
    code, _, err = run_cli(["batch", "--model", str(model), *data_args(shop_csv), "--base-url", stopped.base_url,
                            "--cache-dir", str(tmp_path / "c3"), "--yes", "--out", str(tmp_path / "g.csv")],
                           monkeypatch, capsys)
    assert code == 2
    line = error_line(err)
    assert "답을 한 번도 받지 못한 채" in line and stopped.base_url in line and "connection_error" in line
    assert not (tmp_path / "g.csv").exists()  # nothing reached the server: no row was paid for


def test_train_refuses_to_save_a_model_built_on_failed_forecasts(shop_csv, tmp_path, monkeypatch, capsys):
    model = tmp_path / "model"
    with invalid_answers_server() as bad:
        args = ["train", *data_args(shop_csv), "--provider", "llm", "--llm-model", "loopback-test-model",
                "--base-url", bad.base_url, "--cache-dir", str(tmp_path / "c"), "--yes", "--out", str(model)]
        code, _, err = run_cli(args, monkeypatch, capsys)
        assert code == 2
        assert "저장하지 않았습니다" in error_line(err) and "validation_error" in err
        assert not model.exists()
        code, _, err = run_cli([*args, "--max-failed", "100%"], monkeypatch, capsys)
    assert code == 0, err
    assert (model / "config.json").exists()


def test_evaluate_refuses_a_report_whose_llm_arm_failed(shop_csv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    with invalid_answers_server() as bad:
        code, _, err = run_cli(["evaluate", *data_args(shop_csv), "--provider", "llm", "--llm-model", "m",
                                "--base-url", bad.base_url, "--cache-dir", str(tmp_path / "c"), "--yes",
                                "--bootstrap", "100", "--out", str(out)], monkeypatch, capsys)
    assert code == 2
    assert "보고서를" in error_line(err) and "쓰지 않았습니다" in error_line(err)
    assert not out.exists()
