"""``--llm-timeout SECONDS`` and ``--llm-max-tokens N`` on every verb that can ask an LLM, and
``timeout_s`` / ``max_tokens`` on ``fc.LLMForecaster``: they reach the requests the server
receives (the loopback server, no network), the answer length keys the cache, and a bad value
is one line and exit status 2 before anything is read."""

from __future__ import annotations

import json

import pytest
from clitools import run_cli
from llm_server import LoopbackLLMServer

import forecaster as fc
from forecaster.errors import UserError
from llm.config import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S
from llm.forecaster import LLMForecaster
from llm.prompt import build_messages
from structurer.schema import BucketScheme

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:120:11"
# each verb with what else it needs on the command line (nothing of it is read: the flag fails first)
VERBS = {
    "train": ["train", "--provider", "llm", "--out", "OUT"],
    "batch": ["batch", "--model", "OUT", "--out", "OUT/rows.csv"],
    "evaluate": ["evaluate", "--provider", "llm", "--out", "OUT"],
    "explain": ["explain", "C1", "--anchor", "2023-01", "--provider", "llm"],
    "llm export": ["llm", "export", "--out", "OUT"],
    "llm import": ["llm", "import", "OUT/out.jsonl"],
}


@pytest.fixture
def server():
    with LoopbackLLMServer(lifetime_s=120.0, max_requests=20_000) as s:
        yield s


def _llm_args(server, tmp_path) -> list[str]:
    return ["--data", DATA, "--provider", "llm", "--llm-model", "loopback-test-model", "--base-url", server.base_url,
            "--cache-dir", str(tmp_path / "cache")]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_that_can_ask_an_llm_takes_both_flags(verb, monkeypatch, capsys):
    code, out, _ = run_cli([*verb.split(), "--help"], monkeypatch, capsys)
    assert code == 0 and "--llm-timeout" in out and "--llm-max-tokens" in out


def test_the_flags_reach_every_request_of_train_and_explain(server, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = tmp_path / "model"
    code, _, err = run_cli(["train", *_llm_args(server, tmp_path), "--yes", "--llm-timeout", "7.5", "--llm-max-tokens", "321",
                            "--out", str(model)], monkeypatch, capsys)
    assert code == 0, err
    trained = server.requests
    assert trained and {(r.settings["max_tokens"], r.read_timeout) for r in trained} == {(321, "7.5")}
    panel = fc.load_dataset(DATA).panel
    code, _, err = run_cli(["explain", str(panel.customer_ids[0]), "--anchor", str(panel.last_month), "--model",
                            str(model), *_llm_args(server, tmp_path), "--llm-max-tokens", "99"], monkeypatch, capsys)
    assert code == 0, err
    asked = server.requests[len(trained):]
    # a new answer length is a new request (its own cache key): explain asks, with its own flags
    assert len(asked) == 1 and (asked[0].settings["max_tokens"], asked[0].read_timeout) == (99, str(DEFAULT_TIMEOUT_S))


def test_the_answer_length_is_in_every_exported_request(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "requests"
    code, _, err = run_cli(["llm", "export", "--data", DATA, "--llm-model", "m", "--base-url", "http://127.0.0.1:9/v1",
                            "--cache-dir", str(tmp_path / "cache"), "--llm-max-tokens", "77", "--out", str(out)],
                           monkeypatch, capsys)
    assert code == 0, err
    lines = [json.loads(line) for path in sorted(out.glob("*.jsonl")) for line in path.read_text().splitlines()]
    assert lines and {line["body"]["max_tokens"] for line in lines} == {77}


@pytest.mark.parametrize("flag", [["--llm-timeout", "0"], ["--llm-timeout", "-3"], ["--llm-timeout", "soon"],
                                  ["--llm-max-tokens", "0"], ["--llm-max-tokens", "1.5"]], ids=" ".join)
@pytest.mark.parametrize("verb", VERBS)
def test_a_bad_value_is_one_line_and_exit_2(verb, flag, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = [arg.replace("OUT", str(out)) for arg in VERBS[verb]]
    code, stdout, err = run_cli([*args, "--data", DATA, *flag], monkeypatch, capsys)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and err.startswith("오류:") and flag[0] in err
    assert not out.exists()


@pytest.mark.parametrize(("settings", "words"), [({"timeout_s": 0.0}, "timeout"), ({"max_tokens": 0}, "answer length"),
                                                  ({"max_tokens": 2.5}, "answer length")])
def test_the_api_refuses_a_bad_value_when_the_forecaster_is_made(settings, words):
    with pytest.raises(UserError, match=words):
        fc.LLMForecaster(model="m", **settings)


def test_the_defaults_are_the_configs_and_the_answer_length_keys_the_cache():
    made = fc.LLMForecaster(model="m")
    assert (made.timeout_s, made.max_tokens) == (DEFAULT_TIMEOUT_S, DEFAULT_MAX_TOKENS)
    scheme = BucketScheme(edges=(15.0, 29.3), currency="USD")
    messages = build_messages("시스템", "고객 기록")

    def key(**settings) -> str:
        return LLMForecaster(scheme, model="m", base_url="http://127.0.0.1:9/v1", **settings).request_key(messages)

    assert key(max_tokens=400) != key(max_tokens=800) == key()  # max_tokens is in the request body
    assert key(timeout=5.0) == key(timeout=90.0)  # the timeout is not: the same request, the same answer
