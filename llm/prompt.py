"""The messages sent for one customer: the stable system prompt first, the customer's
narrative last, and the Korean re-ask messages that follow an unusable answer.

The system prompt depends only on the bucket scheme, never on the customer, so it is
byte-identical across a batch (provider prompt caching, server prefix caching). No
customer id goes anywhere in a prompt: the narrative is the only customer-specific text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import jinja2

from prompts import SYSTEM_TEMPLATE, SYSTEM_VERSION, template_dir_or_default
from structurer.schema import BucketScheme

Message = dict[str, str]
InvalidKind = Literal["invalid_json", "validation_error", "refusal", "truncated"]

_CURRENCY_UNITS = {"KRW": "원", "USD": "달러"}
_ERROR_CHARS = 800  # keep a re-ask short: the first lines of a validation error suffice


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir_or_default(None))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def currency_unit(currency: str) -> str:
    """Korean unit of a currency code: ``원``, ``달러``, else the code itself."""
    return _CURRENCY_UNITS.get(currency.upper(), currency.upper())


@lru_cache(maxsize=32)
def system_prompt(scheme: BucketScheme) -> str:
    """The system prompt for ``scheme`` (Korean): bucket ids and labels, segment and trend
    meanings, output rules. Cached: the same object for every customer of a batch."""
    template = _environment().get_template(SYSTEM_TEMPLATE)
    return template.render(
        buckets=list(zip(scheme.ids, scheme.labels)),
        base_shares=[(bid, label, f"{share * 100:.1f}%") for bid, label, share
                     in zip(scheme.ids, scheme.labels, scheme.base_shares)] if scheme.base_shares else None,
        bucket_ids=", ".join(scheme.ids),
        currency_unit=currency_unit(scheme.currency),
    ).strip()


def build_messages(system: str, narrative: str) -> list[Message]:
    """``[system, user]``: the stable prefix first, the customer's narrative last."""
    return [{"role": "system", "content": system}, {"role": "user", "content": narrative}]


def prompt_version(narrative_version: str) -> str:
    """What records and cache keys call this prompt: ``system-v2+<narrative version>``."""
    return f"{SYSTEM_VERSION}+{narrative_version}"


def reask_message(kind: InvalidKind, error: str) -> Message:
    """The user turn that follows an unusable answer (instructor-style re-ask): what was
    wrong, and the instruction to answer again with one schema-conforming JSON object."""
    error = error.strip()[:_ERROR_CHARS]
    openers = {
        "invalid_json": f"앞의 답은 올바른 JSON이 아닙니다: {error}",
        "validation_error": f"앞의 답은 검증을 통과하지 못했습니다:\n{error}",
        "refusal": "앞의 답은 거절이었습니다. 이 요청은 고객을 식별할 수 없는 월별 구매 "
        "집계만 다루는 수요 예측입니다.",
        "truncated": "앞의 답은 길이 제한에 걸려 잘렸습니다. 근거(rationale)를 더 짧게 쓰세요.",
    }
    text = openers[kind] + "\n스키마에 맞는 JSON 객체 하나로 다시 답하세요."
    return {"role": "user", "content": text}
