"""A request that overflows the model's context: recognised from the server's 400 (OpenAI,
llama.cpp server, vLLM), and told to the user with what to do. Not retried: the same request
overflows again."""

from __future__ import annotations


def exceeds_context(code: object, type_: object, error: object) -> bool:
    """Whether a 400's error says the request overflowed the model's context: OpenAI's code
    ``context_length_exceeded``, llama.cpp server's type ``exceed_context_size_error``
    (tests/fixtures/llama_server/context_exceeded.json), or vLLM's (and OpenAI's) message
    "This model's maximum context length is N tokens"."""
    message = error.get("message") if isinstance(error, dict) else error
    return (code == "context_length_exceeded" or type_ == "exceed_context_size_error"
            or "maximum context length" in str(message or ""))


def context_exceeded_detail(server_words: str, reask: bool) -> str:
    """The failure's detail: what happened and what to do (first, so that it survives the
    ledger's cut to a line), then the server's own words."""
    what = "재질문(앞선 답과 오류를 덧붙인 요청)이" if reask else "요청이"
    return (f"{what} 모델의 컨텍스트 길이를 넘었습니다(context length exceeded). 컨텍스트가 더 큰 모델을 쓰거나 서버의 컨텍스트를 늘리세요(llama-server --ctx-size, vLLM "
            f"--max-model-len). OpenAI와 vLLM은 답 길이 상한까지 더해 세므로 --llm-max-tokens를 줄여도 됩니다. "
            f"서버 응답: {' '.join(server_words.split())}")
