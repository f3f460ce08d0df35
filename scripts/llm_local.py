"""`make llm-local`: the LLM path end to end against a real OpenAI-compatible server.

Builds llama.cpp's llama-server once (scripts/llm_local_build.py), serves SmolLM2-135M-Instruct
on 127.0.0.1, then:

1. measures the structured call on a stratified CDNOW sample through the project's own
   ``LLMForecaster`` (cache off): seconds per answer, answers valid, throughput;
2. runs ``forecaster train`` / ``batch`` / ``explain`` with ``--provider llm`` against it;
3. on request (``--only shapes`` / ``--only cassettes``) captures raw response shapes as
   test fixtures (tests/fixtures/llama_server/) and re-records the cassettes.

Everything it writes goes to ``.llm-local/run/`` (git-ignored), the figures to
``.llm-local/run/results.json``. This proves the protocol and the whole path against a
server the project did not write, not a forecast: a 135M English model cannot read the
Korean narratives, and its answers are used as forecasts nowhere.

Usage:
    python scripts/llm_local.py [--customers 16] [--only shapes --only measure --only verbs --only cassettes]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from llm_local_build import CACHE, REPO, ensure_built
from llm_local_server import MODEL_ALIAS, SLOT_CONTEXT, LlamaServer

RUN = CACHE / "run"
FORECASTER = [sys.executable, "-c", "from forecaster.cli import main; main()"]
# The verbs' data: CDNOW's first four months (train's minimum); batch forecasts May 1997 for
# the first BATCH_LIMIT customers, explain one customer at the validation month.
VERB_MONTHS = "1997-01..1997-04"
BATCH_LIMIT = 8
EXPLAIN_ANCHOR = "1997-04"
PHASES = ("shapes", "measure", "verbs", "cassettes")
CASSETTES = REPO / "tests" / "cassettes" / "test_llm_cassettes"
# Of the two cassettes tests/test_llm_cassettes.py records from a real endpoint (the others
# always come from the loopback server), SmolLM2 can make only the truncated one: asked for the
# valid exchange it rambles past the test's 30 s (467 tokens when the test gave up), and none
# of its answers passes validation anyway, so test_valid_answer keeps its loopback cassette.
REAL_ENDPOINT_CASSETTES = "test_truncated_answer"
# Dummy: llama-server checks no key, and the SDK refuses to send none.
DUMMY_KEY = "llama-server-needs-no-key"


def _timed(command: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run one command with its output in ``log``; returns its wall seconds, raises on failure."""
    started = time.monotonic()
    with log.open("wb") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{log.stem} exited with {done.returncode}; see {log}")
    return seconds


def _answers(records: list) -> int:
    """Requests that came back with an answer: every request but the transport retries and
    the last attempt of a customer that failed for a transport reason (a 400, a timeout...)."""
    answer_reasons = ("invalid_json", "validation_error", "refusal", "truncated")
    ended_by_transport = sum(r.status == "failed" and r.reason not in answer_reasons for r in records)
    return sum(r.attempts - r.transport_retries for r in records) - ended_by_transport


def measure(server: LlamaServer, prompts: int, concurrency: int, anchor: str) -> dict[str, Any]:
    """The first ``prompts`` histories at ``anchor`` of a stratified 100-customer CDNOW sample,
    through ``LLMForecaster`` as the verbs use it (no cache).

    Returns:
        Requests and answers, customers valid at the first ask and after re-asks, failures
        by reason, seconds per answer, answers and requests per minute at ``concurrency``,
        and the server's own token counters over the run.
    """
    from forecaster import artifact
    from forecaster.api.data import load_dataset
    from llm.forecaster import LLMForecaster
    from narrator.panel import parse_month

    panel = artifact.training_panel(load_dataset("cdnow").panel, 100, 0)
    batch = panel.histories(parse_month(anchor))
    histories = [batch[i] for i in range(min(prompts, len(batch)))]
    forecaster = LLMForecaster(artifact.training_scheme(panel), model=MODEL_ALIAS, base_url=server.base_url,
                               api_key=DUMMY_KEY, concurrency=concurrency, use_cache=False)
    before = server.metrics()
    started = time.monotonic()
    records = forecaster.forecast_many(histories)
    wall = time.monotonic() - started
    after = server.metrics()
    asked = [r for r in records if not r.shared_prompt]
    requests, answers = sum(r.attempts for r in asked), _answers(asked)
    valid = sum(r.status == "ok" for r in asked)
    summary = forecaster.ledger.summary()
    return {
        "anchor": anchor, "customers": len(records), "distinct_prompts": len(asked), "concurrency": concurrency,
        "requests": requests, "answers": answers, "reasks": summary["reasks"],
        "transport_retries": summary["transport_retries"], "wall_s": round(wall, 1),
        "valid_first_ask": sum(r.status == "ok" and r.reasks == 0 for r in asked), "valid_after_reasks": valid,
        "failures_by_reason": summary["failures_by_reason"],
        "seconds_per_answer": round(wall * concurrency / max(answers, 1), 1),
        "latency_p50_s": round(summary["latency_p50_s"] or 0, 1),
        "latency_p95_s": round(summary["latency_p95_s"] or 0, 1),
        "answers_per_minute": round(60 * answers / wall, 2), "requests_per_minute": round(60 * requests / wall, 2),
        "valid_answers_per_minute": round(60 * valid / wall, 2),
        "tokens_in_per_answer": round(summary["tokens_in"] / max(answers, 1)),
        "tokens_out_per_answer": round(summary["tokens_out"] / max(answers, 1)),
        "server": {name.removeprefix("llamacpp:"): round(after[name] - before.get(name, 0.0), 1)
                   for name in ("llamacpp:prompt_tokens_total", "llamacpp:prompt_tokens_cached_total",
                                "llamacpp:tokens_predicted_total", "llamacpp:prompt_seconds_total",
                                "llamacpp:tokens_predicted_seconds_total") if name in after},
    }


def write_cdnow_sample(path: Path, customers: int) -> None:
    """The transactions of the first ``customers`` of a stratified CDNOW sample, as a user CSV."""
    from forecaster import artifact
    from forecaster.api.data import load_dataset

    cdnow = load_dataset("cdnow")
    chosen = artifact.training_panel(cdnow.panel, 100, 0).customer_ids[:customers]
    rows = cdnow.transactions[cdnow.transactions["customer_id"].isin(chosen)]
    rows[["customer_id", "ts", "amount"]].to_csv(path, index=False)


def llm_flags(server: LlamaServer, folder: Path) -> list[str]:
    return ["--base-url", server.base_url, "--llm-model", MODEL_ALIAS, "--cache-dir", str(folder / "llm-cache")]


def run_verbs(server: LlamaServer, customers: int, concurrency: int, env: dict[str, str]) -> dict[str, Any]:
    """``forecaster train`` / ``batch`` / ``explain`` with ``--provider llm`` against the server,
    on the first four months of ``customers`` CDNOW customers (the least ``train`` takes: three
    anchors, the last for validation), so the run takes minutes on 2 cores.

    ``--max-failed 1``: the point is the path, and this model's answers fail validation (see
    docs/llm.md); the failures are counted in the output, not hidden.
    """
    import pandas as pd

    folder = RUN / "verbs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sample = folder / "cdnow-sample.csv"
    write_cdnow_sample(sample, customers)
    data = ["--data", str(sample), "--currency", "USD", "--date-range", VERB_MONTHS]
    model_dir, predictions, explained = folder / "model", folder / "predictions.parquet", folder / "explain.json"
    spend = ["--concurrency", str(concurrency), "--yes", "--max-failed", "1"]
    seconds = {
        "train": _timed([*FORECASTER, "train", "--out", str(model_dir), *data, "--provider", "llm",
                         *llm_flags(server, folder), *spend], folder / "train.log", env),
        "batch": _timed([*FORECASTER, "batch", "--model", str(model_dir), "--out", str(predictions), *data,
                         "--limit", str(BATCH_LIMIT), *llm_flags(server, folder), *spend], folder / "batch.log", env),
    }
    rows = pd.read_parquet(predictions)
    answered = rows[rows["status"].notna()]
    customer = str(answered["customer_id"].iloc[0])
    explain = [*FORECASTER, "explain", customer, "--anchor", EXPLAIN_ANCHOR, "--model", str(model_dir), *data,
               "--provider", "llm", *llm_flags(server, folder), "--format", "json"]
    started = time.monotonic()
    with explained.open("wb") as out, (folder / "explain.log").open("wb") as log:
        subprocess.run(explain, stdout=out, stderr=log, cwd=REPO, env=env, check=True)
    seconds["explain"] = time.monotonic() - started
    shown = json.loads(explained.read_text(encoding="utf-8"))
    return {
        "customers": customers, "months": VERB_MONTHS, "seconds": {verb: round(s, 1) for verb, s in seconds.items()},
        "batch_rows": len(rows), "batch_status": answered["status"].value_counts().to_dict(),
        "batch_failures": answered["reason"].dropna().value_counts().to_dict(),
        "explain_customer": customer,
        "explain_forecaster": {key: shown["forecaster"][key] for key in ("status", "reason", "detail")},
    }


def record_cassettes(server: LlamaServer, env: dict[str, str], tests: str) -> float:
    """Re-record the cassettes of ``tests`` (a pytest ``-k`` expression) from the server, as
    ``make record-cassettes`` does, with a dummy key (the server checks none).

    The recording test waits 30 s for an answer; the server first caches the test's system
    prompt (``warm_cassette_prefix``) so only the narrative is read then. When the recording
    fails, the cassettes are put back as they were and the error names the log.
    """
    from llm.prompt import system_prompt
    from structurer.schema import BucketScheme

    cassette_scheme = BucketScheme(edges=(15.0, 29.3), currency="USD")  # tests/test_llm_cassettes.py's
    server.post("/v1/chat/completions", {"model": MODEL_ALIAS, "max_tokens": 1, "messages": [
        {"role": "system", "content": system_prompt(cassette_scheme)}, {"role": "user", "content": "-"}]})
    recording = {**env, "FORECASTER_RECORD": "1", "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": DUMMY_KEY,
                 "FORECASTER_MODEL": MODEL_ALIAS}
    kept = {path: path.read_bytes() for path in CASSETTES.glob("*.yaml")}
    try:
        return _timed([sys.executable, "-m", "pytest", "tests/test_llm_cassettes.py", "-n", "0", "-k", tests],
                      RUN / "record-cassettes.log", recording)
    except RuntimeError:
        for path in CASSETTES.glob("*.yaml"):
            path.unlink()
        for path, content in kept.items():
            path.write_bytes(content)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=16, help="CDNOW customers the verbs run on")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight = server slots")
    parser.add_argument("--measure-prompts", type=int, default=12, help="histories the measurement asks for")
    parser.add_argument("--measure-anchor", default="1998-01")
    parser.add_argument("--cassettes", default=REAL_ENDPOINT_CASSETTES, metavar="EXPR",
                        help="pytest -k expression of the cassettes to re-record (phase cassettes)")
    parser.add_argument("--only", action="append", choices=PHASES,
                        help="run only these phases (repeatable); default: measure and verbs")
    args = parser.parse_args(argv)
    phases = args.only or ["measure", "verbs"]

    files = ensure_built()
    RUN.mkdir(parents=True, exist_ok=True)
    saved = RUN / "results.json"
    results: dict[str, Any] = json.loads(saved.read_text("utf-8")) if saved.exists() else {}
    results.update(model_file=files.model.name, alias=MODEL_ALIAS, slot_context=SLOT_CONTEXT)
    # the endpoint comes from the flags; a key or base URL from the caller's shell must not leak in
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    with LlamaServer(files.server, files.model, RUN / "server.log", slots=args.concurrency) as server:
        print(f"llama-server: {server.base_url} ({files.model.name}, {args.concurrency} slot(s))", flush=True)
        for phase in (p for p in PHASES if p in phases):
            started = time.monotonic()
            if phase == "shapes":
                from llm_local_shapes import capture_shapes
                results[phase] = capture_shapes(server, REPO / "tests" / "fixtures" / "llama_server")
            elif phase == "measure":
                results[phase] = measure(server, args.measure_prompts, args.concurrency, args.measure_anchor)
            elif phase == "verbs":
                results[phase] = run_verbs(server, args.customers, args.concurrency, env)
            else:
                results[phase] = {"tests": args.cassettes,
                                  "seconds": round(record_cassettes(server, env, args.cassettes), 1)}
            results[phase]["phase_s"] = round(time.monotonic() - started, 1)
            saved.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            print(f"{phase}: {json.dumps(results[phase], ensure_ascii=False)}", flush=True)
    print(f"결과: {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
