"""Capture what llama-server really answers, as fixtures for tests/test_llm_real_shapes.py.

Each fixture is one JSON file under tests/fixtures/llama_server/: ``{"sent": what differs
from the project's own request, "status": HTTP status, "body": the server's body}``. The
requests are the project's own (system prompt, a CDNOW narrative, the strict json_schema
response format, the client's sampling settings), varied one way each: a short token limit,
no response format, a response format the server rejects, a prompt longer than a slot's
context, a model name the server does not serve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_local_server import MODEL_ALIAS, SLOT_CONTEXT, LlamaServer

if TYPE_CHECKING:
    from structurer.schema import SpendForecastBase

CDNOW_ANCHOR = "1998-01"
SAMPLE = 100
ANSWERS = 6  # distinct customers asked with the schema (valid and invalid answers both occur)
UNCONSTRAINED = 3  # of them asked again without the response format


def _project_requests(server: LlamaServer) -> tuple[type[SpendForecastBase], list[dict[str, Any]]]:
    """The answer model and the bodies the project's client sends for the first distinct
    CDNOW narratives of the sample."""
    from forecaster import artifact
    from forecaster.api.data import load_dataset
    from llm.client import response_format
    from llm.forecaster import LLMForecaster
    from narrator.panel import parse_month
    from structurer.schema import spend_forecast_model

    panel = artifact.training_panel(load_dataset("cdnow").panel, SAMPLE, 0)
    scheme = artifact.training_scheme(panel)
    forecaster = LLMForecaster(scheme, model=MODEL_ALIAS, base_url=server.base_url, api_key="unused", use_cache=False)
    answer_model = spend_forecast_model(scheme)
    fixed = {"model": MODEL_ALIAS, "response_format": response_format(answer_model), **forecaster.config.sampling}
    narratives: dict[str, list] = {}
    for history in panel.histories(parse_month(CDNOW_ANCHOR)):
        messages = forecaster.messages_for(history)
        narratives.setdefault(messages[-1]["content"], messages)
        if len(narratives) == ANSWERS:
            break
    return answer_model, [{**fixed, "messages": messages} for messages in narratives.values()]


def _save(folder: Path, name: str, sent: str, status: int, body: dict[str, Any]) -> None:
    text = json.dumps({"sent": sent, "status": status, "body": body}, ensure_ascii=False, indent=2)
    (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")


def capture_shapes(server: LlamaServer, folder: Path) -> dict[str, Any]:
    """Send the varied requests, write one fixture per shape, and judge the answers.

    Returns:
        For the schema-constrained and the unconstrained answers: how many were sent and
        what :func:`llm.client.judge` made of them (``ok`` or the unusable kind).
    """
    from llm.client import Unusable, judge, reply_from_completion

    folder.mkdir(parents=True, exist_ok=True)
    schema_model, bodies = _project_requests(server)
    verdicts: dict[str, list[str]] = {"json_schema": [], "no_response_format": []}
    kept: set[str] = set()
    for i, body in enumerate(bodies):
        asked = [("json_schema", body)] + ([("no_response_format", _without_format(body))] if i < UNCONSTRAINED else [])
        for label, sent in asked:
            status, answer = server.post("/v1/chat/completions", sent)
            verdict = judge(reply_from_completion(answer), schema_model)
            kind = verdict.kind if isinstance(verdict, Unusable) else "ok"
            verdicts[label].append(kind)
            name = f"{'answer' if label == 'json_schema' else 'unconstrained'}_{kind}"
            if name not in kept:  # the first body of each outcome is the fixture
                kept.add(name)
                _save(folder, name, "the project's request" if label == "json_schema"
                      else "the project's request without response_format", status, answer)
    first = bodies[0]
    variants = {
        "length": ("max_tokens 16", {**first, "max_tokens": 16}),
        "bad_response_format": ("response_format type 'xml'", {**first, "response_format": {"type": "xml"}}),
        "context_exceeded": (f"a user message longer than the {SLOT_CONTEXT}-token slot",
                             {**first, "messages": [first["messages"][0],
                                                    {"role": "user", "content": "구매 " * SLOT_CONTEXT * 2}]}),
        "other_model_name": ("model 'no-such-model'", {**first, "model": "no-such-model", "max_tokens": 16}),
    }
    for name, (sent, body) in variants.items():
        status, answer = server.post("/v1/chat/completions", body)
        _save(folder, name, sent, status, answer)
    return {label: {"sent": len(kinds), "judged": {k: kinds.count(k) for k in sorted(set(kinds))}}
            for label, kinds in verdicts.items()}


def _without_format(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "response_format"}

