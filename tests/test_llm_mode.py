"""``--llm-mode batch`` through the application: train and predict answer every prompt
through provider batch jobs first (the loopback Batch API server), and the live run that
follows sends nothing for what the jobs answered; a killed run resumes by polling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clitools import run_cli
from llm_batch_server import LoopbackBatchServer
from llm_server import LoopbackLLMServer

import forecaster as fc
from forecaster.datasets import load_dataset

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:120:11"


@pytest.fixture
def server():
    with LoopbackBatchServer(lifetime_s=120.0, max_requests=20_000) as s:
        yield s


def _llm(server, tmp_path, **settings) -> fc.LLMForecaster:
    return fc.LLMForecaster(model="loopback-test-model", base_url=server.base_url, cache_dir=tmp_path / "cache",
                            mode="batch", poll_interval_s=0.0, **settings)


def test_train_and_predict_in_batch_mode_send_no_live_request_for_answered_prompts(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the loopback server needs no key
    data = load_dataset(DATA)
    with fc.progress_hook(None):
        model = fc.train(data, forecaster=_llm(server, tmp_path), confirm=True)
    assert server.uploads >= 1 and server.batches_created == server.uploads
    assert server.request_count == 0  # every prompt was answered by the jobs: no live request at all
    assert model.config_["forecaster"]["provider"] == "llm"
    created = server.batches_created
    with fc.progress_hook(None):
        rows = model.predict(data, data.panel.last_month + 1, forecaster=_llm(server, tmp_path), confirm=True)
    assert server.batches_created == created + 1 and server.request_count == 0
    assert set(rows["status"]) <= {"ok", "no_history", "no_purchase"} and (rows["status"] == "ok").any()


def test_a_second_run_finds_everything_in_the_cache_and_submits_nothing(server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    data = load_dataset(DATA)
    with fc.progress_hook(None):
        fc.train(data, forecaster=_llm(server, tmp_path), confirm=True)
        uploads, created = server.uploads, server.batches_created
        fc.train(data, forecaster=_llm(server, tmp_path), confirm=True)
    assert (server.uploads, server.batches_created, server.request_count) == (uploads, created, 0)


def test_an_unknown_mode_is_one_line(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(["train", "--data", DATA, "--provider", "llm", "--llm-model", "m", "--base-url",
                              "http://127.0.0.1:9/v1", "--llm-mode", "overnight", "--out", str(tmp_path / "m")],
                             monkeypatch, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--llm-mode overnight" in err
    assert not (tmp_path / "m").exists()


def _answer_like_vllm(requests: Path, outputs: Path) -> int:
    """What ``vllm run-batch`` would write for a request file, with the loopback server's
    synthetic (valid) answers: success lines without a status code, as vLLM writes them."""
    lines = [json.loads(line) for line in requests.read_text(encoding="utf-8").splitlines()]
    with outputs.open("w", encoding="utf-8") as out:
        for i, request in enumerate(lines):
            _, _, body = LoopbackLLMServer().respond("valid", request["body"])
            out.write(json.dumps({"id": f"vllm-{i}", "custom_id": request["custom_id"],
                                  "response": {"request_id": f"r{i}", "body": body}, "error": None}) + "\n")
    return len(lines)


def test_export_run_elsewhere_import_then_train_asks_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "cache"
    with LoopbackLLMServer(lifetime_s=60.0) as live:
        llm = ["--llm-model", "loopback-test-model", "--base-url", live.base_url, "--cache-dir", str(cache)]
        code, out, err = run_cli(["llm", "export", "--data", DATA, *llm, "--out", str(tmp_path / "req")],
                                 monkeypatch, capsys)
        assert code == 0, err
        files = [Path(line) for line in out.split()]
        assert files and all(f.name.startswith("requests-") for f in files)
        text = "".join(f.read_text(encoding="utf-8") for f in files)
        assert "C000001" not in text and "sk-" not in text  # no customer id, no key
        answered = sum(_answer_like_vllm(f, tmp_path / f"out-{i}.jsonl") for i, f in enumerate(files))
        code, _, err = run_cli(["llm", "import", *[str(tmp_path / f"out-{i}.jsonl") for i in range(len(files))],
                                "--data", DATA, *llm], monkeypatch, capsys)
        assert code == 0, err
        assert f"답 {answered:,}건을 캐시에 넣었습니다" in err
        code, _, err = run_cli(["train", "--data", DATA, "--provider", "llm", *llm, "--yes",
                                "--out", str(tmp_path / "model")], monkeypatch, capsys)
        assert code == 0, err
        assert live.request_count == 0  # every prompt of the run came from the imported answers
    # a second export finds every prompt answered: no request line is left
    code, out, err = run_cli(["llm", "export", "--data", DATA, *llm, "--out", str(tmp_path / "again")],
                             monkeypatch, capsys)
    assert code == 0, err
    assert out.split() == [] and "요청 파일 0개" in err
