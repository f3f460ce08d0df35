"""The Korean words of the evaluation report: arm and metric names, number formats and the
sentences of each section.

Every function here reads the report's JSON-safe data (what ``metrics.json`` holds), never
the raw result, so each number a sentence quotes is also in ``metrics.json``. Particles
after numbers and words are chosen by :func:`narrator.korean.josa`, never written "이(가)".
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from narrator.korean import format_amount, format_month, format_month_span, josa

HEADLINE_ARM, BASELINE_ARM = "xgb_base+forecaster", "xgb_base"
HEADLINE_METRIC = "rps"
MISSING = "—"

# display order and Korean names; unknown arms fall back to their code
ARM_LABELS = {
    "climatology": "훈련 기간 구간 빈도",
    "persistence": "지난달 구간 유지",
    "btyd": "Pareto/NBD",
    "forecaster": "예측기 단독",
    "xgb_base": "XGBoost 기본",
    "xgb_base+btyd": "XGBoost + BTYD 특성",
    "xgb_base+forecaster": "XGBoost + 예측기 특성",
    "empirical": "경험적 예측기 단독(LLM 아님)",
    "xgb_base+empirical": "XGBoost + 경험적 예측기 특성",
    "oracle": "오라클(잠재 모수)",
    "llm": "LLM 예측기",
}

# (key, Korean name, which direction is better, kind of number)
METRICS: list[tuple[str, str, str, str]] = [
    ("rps", "RPS", "lower", "score"),
    ("rps_skill", "RPS 기술 점수 (구간 빈도 대비)", "higher", "score"),
    ("rps_ratio_to_oracle", "RPS / 오라클 RPS", "lower", "ratio"),
    ("log_loss", "로그 손실", "lower", "score"),
    ("brier", "Brier 점수 (다중 구간)", "lower", "score"),
    ("accuracy", "정확도", "higher", "score"),
    ("macro_f1", "macro-F1", "higher", "score"),
    ("ece", "ECE (최고 확률 구간)", "lower", "score"),
    ("purchase_log_loss", "구매 여부 로그 손실", "lower", "score"),
    ("purchase_brier", "구매 여부 Brier 점수", "lower", "score"),
    ("pr_auc", "PR-AUC", "higher", "score"),
    ("roc_auc", "ROC-AUC", "higher", "score"),
    ("precision_top20", "상위 20% 정밀도", "higher", "score"),
    ("recall_top20", "상위 20% 재현율", "higher", "score"),
    ("lift_top10", "상위 10% 리프트", "higher", "ratio"),
    ("f1_at_threshold", "F1 (검증 월에서 정한 임계값)", "higher", "score"),
    ("spend_mae", "지출 MAE", "lower", "amount"),
    ("spend_rmse", "지출 RMSE", "lower", "amount"),
    ("spend_spearman", "지출 Spearman 상관", "higher", "score"),
    ("spend_gini", "지출 정규화 Gini", "higher", "score"),
    ("spend_bias", "총지출 편향", "zero", "percent"),
]
METRIC_NAMES = {key: name for key, name, _, _ in METRICS}
BETTER = {key: better for key, _, better, _ in METRICS}
KIND = {key: kind for key, _, _, kind in METRICS}
BETTER_MARK = {"lower": "↓", "higher": "↑", "zero": "(0에 가까울수록 좋음)"}

LEDGER_LABELS = {
    "model": "모델", "customers": "고객 수", "ok": "성공", "failed": "실패", "calls": "API 호출",
    "cache_hits": "캐시 적중", "reasks": "재질문", "transport_retries": "전송 재시도",
    "tokens_in": "입력 토큰", "tokens_out": "출력 토큰", "cached_tokens_in": "캐시로 아낀 입력 토큰",
    "cached_tokens_out": "캐시로 아낀 출력 토큰", "cost_usd": "비용 추정 (USD)", "cost_note": "비용 메모",
    "latency_p50_s": "지연 p50 (초)", "latency_p95_s": "지연 p95 (초)",
}


# -- numbers ---------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: Any, digits: int = 4) -> str:
    """``0.0634``; a dash for a missing value (an AUC of one class, a skipped point)."""
    return MISSING if _missing(value) else f"{value:,.{digits}f}"


def signed(value: Any, digits: int = 4) -> str:
    """``+0.0012`` / ``-0.0012``: differences always carry their sign."""
    return MISSING if _missing(value) else f"{value:+,.{digits}f}"


def percent(value: Any, digits: int = 1) -> str:
    return MISSING if _missing(value) else f"{100 * value:,.{digits}f}%"


def count(value: Any) -> str:
    return MISSING if _missing(value) else f"{int(value):,}"


def metric_value(key: str, value: Any, currency: str) -> str:
    """A metric in the table format of its kind (amounts in the currency's minor unit)."""
    kind = KIND.get(key, "score")
    if kind == "percent":
        return MISSING if _missing(value) else f"{100 * value:+,.1f}%"
    if kind == "amount":
        return number(value, 0 if currency.upper() == "KRW" else 2)
    if kind == "ratio":
        return number(value, 3)
    return number(value, 4)


def metric_header(key: str, currency: str) -> str:
    unit = f" ({currency})" if key in ("spend_mae", "spend_rmse") else ""
    return f"{METRIC_NAMES.get(key, key)}{unit} {BETTER_MARK[BETTER.get(key, 'lower')]}"


def arm_name(arm: str) -> str:
    """``XGBoost + 예측기 특성 (xgb_base+forecaster)``; josa skips the parenthesised code."""
    label = ARM_LABELS.get(arm)
    return f"{label} ({arm})" if label else arm


def month(text: str) -> str:
    return format_month(pd.Period(text, freq="M"))


def month_span(first: str, last: str) -> str:
    return format_month_span(pd.Period(first, freq="M"), pd.Period(last, freq="M"))


def month_range_text(text: str) -> str:
    """``2022-01..2024-09`` -> ``2022년 1월~2024년 9월``; any other text as it is."""
    match = re.fullmatch(r"(\d{4}-\d{2})\.\.(\d{4}-\d{2})", text)
    return month_span(*match.groups()) if match else text


_NOTE_WORDS = {"rounds=": "반복 ", "eps=": "혼합 가중치 ", "failed=": "실패 "}


def origin_note(note: str) -> str:
    """An arm's training note (``rounds=64/34``) in Korean words (``반복 64/34``)."""
    for code, word in _NOTE_WORDS.items():
        note = note.replace(code, word)
    return note


# -- verdicts --------------------------------------------------------------------------------


def verdict(key: str, diff: dict) -> str:
    """``improved`` / ``worse`` when the 95% interval of (augmented - baseline) lies wholly
    on one side of 0, else ``no_evidence``; ``undefined`` without an interval."""
    lo, hi = diff.get("lo"), diff.get("hi")
    if _missing(lo) or _missing(hi):
        return "undefined"
    if lo <= 0 <= hi:
        return "no_evidence"
    lower_is_better = BETTER.get(key, "lower") == "lower"
    return "improved" if (hi < 0) == lower_is_better else "worse"


VERDICT_WORDS = {
    "improved": "개선 (신뢰구간이 0을 포함하지 않음)",
    "worse": "악화 (신뢰구간이 0을 포함하지 않음)",
    "no_evidence": "차이의 근거 없음 (신뢰구간이 0을 포함)",
    "undefined": "계산할 수 없음",
}


def difference(key: str, value: Any, currency: str = "") -> str:
    """A signed difference: one decimal more than the metric itself, since differences
    between arms are often a tenth of the metric's last shown digit."""
    if KIND.get(key) == "amount":
        return signed(value, 0 if currency.upper() == "KRW" else 3)
    return signed(value, 5)


def _interval(key: str, d: dict, currency: str) -> str:
    return f"{difference(key, d['lo'], currency)}~{difference(key, d['hi'], currency)}"


def headline_sentences(data: dict) -> list[str]:
    """The answer to "does ``xgb_base+forecaster`` beat ``xgb_base``?", stated as far as the
    paired bootstrap interval allows and no further."""
    head = data["headline"]
    aug, base = arm_name(HEADLINE_ARM), arm_name(BASELINE_ARM)
    if head["verdict"] == "not_run":
        return [f"{josa(aug, '이/가')} 실행되지 않아 예측기 특성의 효과는 평가하지 않았습니다."]
    d, cur = head["difference"], data["dataset"]["currency"]
    a, b, diff = number(d["a"]), number(d["b"]), difference("rps", d["diff"], cur)
    gap = difference("rps", abs(d["diff"]), cur).lstrip("+")
    rel = percent(head["relative_change"], 1)
    rel = rel if rel.startswith("-") or rel == MISSING else "+" + rel
    interval = (f"95% 신뢰구간(고객 단위 paired bootstrap {count(d['n_valid'])}회)은 "
                f"{josa(_interval('rps', d, cur), '으로/로')}")
    if head["verdict"] == "improved":
        text = (f"{josa(aug, '은/는')} {base}보다 RPS가 {gap} 낮았습니다({a} → {b}, {rel}). {interval} 전체가 "
                "0보다 작으므로, 이 평가 월들에서는 예측기 특성이 RPS를 개선했다는 근거가 있습니다.")
    elif head["verdict"] == "worse":
        text = (f"{josa(aug, '은/는')} {base}보다 RPS가 오히려 {gap} 높았습니다({a} → {b}, {rel}). {interval} "
                "전체가 0보다 크므로, 예측기 특성을 더하면 RPS가 나빠졌다고 보아야 합니다.")
    elif head["verdict"] == "no_evidence":
        text = (f"{aug}의 RPS는 {josa(b, '으로/로')}, {base}의 {josa(a, '와/과')} 비교한 차이는 {diff}({rel})입니다. "
                f"{interval} 0을 포함하므로, 예측기 특성이 RPS를 개선했다는 근거는 없습니다.")
    else:
        text = f"{josa(aug, '와/과')} {base}의 RPS 차이에 대한 신뢰구간을 계산할 수 없었습니다({a} → {b})."
    return [text]


def comparison_sentence(data: dict) -> str:
    """What was compared: data, test months, rows, arms."""
    split = data["split"]
    anchors = split["test_anchors"]
    arms = ", ".join(arm_name(a) for a in data["arm_order"])
    return (f"{data['dataset']['name']} 데이터의 평가 월 {month_span(anchors[0], anchors[-1])}"
            f"({len(anchors)}개월, 평가 행 {count(split['test_rows'])}개)에서 비교군 {len(data['arm_order'])}개를 "
            f"같은 고객-월 행으로 비교했습니다: {arms}.")


def best_arm_sentence(data: dict) -> str:
    """The lowest pooled RPS among the arms a user could run (the oracle is a bound)."""
    candidates = {a: data["arms"][a]["pooled"]["rps"] for a in data["arm_order"] if a != "oracle"}
    candidates = {a: v for a, v in candidates.items() if not _missing(v)}
    if not candidates:
        return "RPS를 계산한 비교군이 없습니다."
    best = min(candidates, key=candidates.get)
    text = f"실행 가능한 비교군 중 RPS가 가장 낮은 것은 {josa(arm_name(best), '으로/로')} {number(candidates[best])}입니다."
    if "oracle" in data["arms"]:
        ratio = data["arms"][best]["pooled"].get("rps_ratio_to_oracle")
        text += (f" 잠재 모수를 아는 오라클의 RPS는 {number(data['arms']['oracle']['pooled']['rps'])}이고, "
                 f"가장 나은 비교군의 RPS는 오라클의 {number(ratio, 3)}배입니다.")
    return text


def forecaster_summary_sentence(data: dict) -> str:
    fc = data["forecaster"]
    if fc["is_llm"]:
        return f"예측기는 LLM({fc['model'] or MISSING}, 프롬프트 버전 {fc['prompt_version'] or MISSING})입니다."
    return (f"이번 실행의 예측기({fc['provider']})는 LLM이 아닌 통계 규칙이므로, 예측기와 관련된 결과는 "
            "LLM의 효과를 말해 주지 않습니다.")


def forecaster_sentences(data: dict) -> list[str]:
    fc = data["forecaster"]
    if fc["is_llm"]:
        return ["예측기는 LLM입니다. 고객별 한국어 서술을 읽고 구간 확률, 기대 지출, 세그먼트를 구조화된 JSON으로 "
                "답했고, 그 답은 pydantic으로 검증했습니다. 검증에 실패한 답은 다시 물었고, 끝내 실패한 고객의 "
                "예측기 특성은 비워 두었습니다."]
    return [f"이번 실행의 예측기({fc['provider']})는 LLM이 아닙니다. 고객 자신의 최근 구간 빈도(최근 달일수록 큰 "
            "가중치)를 모집단 빈도 쪽으로 수축한 통계 규칙이며, 근거 문장도 템플릿으로 만듭니다. 따라서 이 "
            "보고서에서 예측기와 관련된 결과는 LLM이 아니라 이 통계 규칙의 효과입니다."]


def sample_sentence(data: dict) -> str | None:
    ds = data["dataset"]
    if ds["sample_customers"] is None:
        return None
    return (f"전체 고객 {count(ds['customers_in_data'])}명 중 첫 평가 월 이전의 구매 개월 수로 층화한 "
            f"{count(ds['customers'])}명을 무작위로 뽑아 썼습니다(seed {data['run']['seed']}).")


def cleaning_sentences(data: dict) -> list[str]:
    """What loading changed, one sentence per non-zero count, then the loader's notes."""
    c = data["dataset"]["cleaning"]
    currency = data["dataset"]["currency"]
    out = []
    if c.get("duplicate_rows_dropped"):
        out.append(f"모든 열이 같은 중복 행 {josa(count(c['duplicate_rows_dropped']) + '개', '을/를')} 뺐습니다.")
    if c.get("null_customer_rows_dropped"):
        out.append(f"고객 ID가 비어 있는 행 {josa(count(c['null_customer_rows_dropped']) + '개', '을/를')} 뺐습니다.")
    if c.get("return_rows"):
        total = format_amount(float(c["return_total"]), currency)
        out.append(f"음수 금액(반품·취소) 행 {count(c['return_rows'])}개(합계 {total})는 남겨 같은 달 지출에서 상계했습니다.")
    if c.get("months_floored"):
        out.append(f"순지출이 음수가 된 고객-월 {josa(count(c['months_floored']) + '개', '은/는')} 0으로 맞췄습니다.")
    if c.get("timezone_rows_converted"):
        out.append(f"시간대가 붙은 타임스탬프 {josa(count(c['timezone_rows_converted']) + '개', '을/를')} "
                   f"{c.get('timezone') or 'Asia/Seoul'} 기준으로 바꿨습니다.")
    out.extend(f"{note}." if not note.endswith(".") else note for note in c.get("notes", []))
    return out or ["불러오는 과정에서 바뀐 행은 없습니다."]


def split_sentences(data: dict) -> list[str]:
    split = data["split"]
    first = split["test_anchors"][0]
    return [
        "기준 월(anchor)은 예측하는 달입니다. 특성은 그 달 이전 자료로만 만들고, 그 달의 구매 구간이 정답입니다.",
        "확장 창(expanding window) 방식으로 평가 월마다 모델을 새로 학습했습니다. 평가 월 T보다 앞선 기준 월 가운데 "
        "마지막 달은 검증 월로 떼어 XGBoost 조기 종료, 구매 임계값(검증 월 F1 최대), 지난달 구간 유지 비교군의 혼합 "
        "가중치를 정하는 데만 쓰고, 모든 비교군은 그보다 앞선 기준 월로 맞췄습니다(훈련 기간 구간 빈도도 같은 달들의 "
        "빈도입니다). Pareto/NBD와 예측기는 각 기준 월마다 그 달 이전 자료만으로 다시 적합해 특성을 만듭니다.",
        f"구간 체계와 구간별 대표 지출은 첫 평가 월({month(first)}) 이전 달({month_range_text(split['scheme_fitted_on'])})의 "
        "월 지출로만 정했습니다. 평가 월의 결과로는 아무것도 조정하지 않았습니다.",
    ]


def scheme_sentences(data: dict) -> list[str]:
    sc = data["scheme"]
    edges = ", ".join(format_amount(e, sc["currency"]) for e in sc["edges"])
    n = sc["n_buckets"]
    return [f"구간은 {n}개입니다. b0은 그달 구매가 없는 경우이고, 나머지는 그달 지출 합계를 경계 {edges}에서 나눕니다"
            "(경계값과 같은 지출은 위 구간에 넣습니다). 경계는 학습 달에 구매가 있었던 고객-월 지출의 분위수"
            "(기본은 삼분위수)로 정했습니다.",
            "대표 지출은 학습 달에 그 구간에 든 월 지출의 평균이며, 구간 확률을 기대 지출로 바꿀 때 씁니다."]


def rps_scaling_sentence(data: dict) -> str:
    k = data["rps_scaling"]["n_buckets"]
    return (f"RPS(ranked probability score)는 예측한 누적 확률과 실제 누적 확률의 차이를 제곱해 {k - 1}개 경계에서 "
            f"더한 뒤 {josa(k - 1, '으로/로')} 나눈 값으로, 0(완벽)에서 1 사이이며 낮을수록 좋습니다(Epstein 1969). "
            "RPS 기술 점수는 1 − RPS ÷ 훈련 기간 구간 빈도의 RPS로, 0보다 크면 그 기준보다 낫다는 뜻입니다.")


def not_run_sentences(data: dict) -> list[str]:
    not_run = data["arms_not_run"]
    if not not_run:
        return ["모든 비교군을 실행했습니다."]
    return [f"{arm_name(arm)}: {reason}" for arm, reason in not_run.items()]


def ledger_rows(ledger: dict) -> list[tuple[str, str]]:
    """(Korean label, formatted value) for the usage ledger table; failure reasons flattened."""
    rows = []
    for key, value in ledger.items():
        if key == "failures_by_reason":
            rows += [(f"실패 사유: {reason}", count(n)) for reason, n in (value or {}).items()]
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            text = MISSING if value is None else str(value)
        elif isinstance(value, int):
            text = count(value)
        else:
            text = number(value, 4 if key == "cost_usd" else 2)
        rows.append((LEDGER_LABELS.get(key, key), text))
    return rows


# -- tables ----------------------------------------------------------------------------------


_NUMERIC_CELL = re.compile(r"^[+-]?[0-9][0-9,]*(\.[0-9]+)?(%|배|명|건|행|개월)?$|^—$")


def _table(headers: list[str], rows: list[list[str]]) -> dict:
    """Cells are display strings; a column whose cells are all numbers is right-aligned."""
    numeric = [bool(rows) and all(_NUMERIC_CELL.match(r[j]) for r in rows) for j in range(len(headers))]
    return {"headers": headers, "rows": rows, "numeric": numeric}


def data_table(data: dict) -> dict:
    ds = data["dataset"]
    rows = [["이름", ds["name"]], ["고객 수", f"{count(ds['customers'])}명"],
            ["거래 수", f"{count(ds['transactions'])}건"],
            ["기간", f"{month_span(ds['first_month'], ds['last_month'])} ({ds['months']}개월)"],
            ["통화", ds["currency"]], ["읽은 행", f"{count(ds['cleaning'].get('rows_read'))}행"]]
    return _table(["항목", "값"], rows)


def origins_table(data: dict) -> dict:
    rows = [[month(o["test_anchor"]), month_span(o["training_first"], o["training_last"]),
             month(o["validation_anchor"]), count(o["n_train"]), count(o["n_val"]), count(o["n_test"])]
            for o in data["split"]["origins"]]
    return _table(["평가 월", "XGBoost 학습 기준 월", "검증 월", "학습 행", "검증 행", "평가 행"], rows)


def origin_notes_table(data: dict) -> dict:
    origins = data["split"]["origins"]
    arms = [a for a in data["arm_order"] if any(o["notes"].get(a) for o in origins)]
    rows = [[arm_name(a)] + [origin_note(o["notes"].get(a) or MISSING) for o in origins] for a in arms]
    return _table(["비교군"] + [month(o["test_anchor"]) for o in origins], rows)


def scheme_table(data: dict) -> dict:
    sc = data["scheme"]
    cur, edges = sc["currency"], sc["edges"]
    lows = [None, None] + edges
    highs = [None] + edges + [None]
    rows = []
    for k, (bid, label) in enumerate(zip(sc["ids"], sc["labels"])):
        low = "—" if k == 0 else ("0 초과" if lows[k] is None else f"{format_amount(lows[k], cur)} 이상")
        high = "—" if k == 0 or highs[k] is None else f"{format_amount(highs[k], cur)} 미만"
        rows.append([bid, label, low, high, format_amount(sc["representative_spend"][k], cur)])
    return _table(["id", "이름", "하한", "상한", "대표 지출"], rows)


def ledger_table(data: dict) -> dict | None:
    ledger = data["forecaster"]["ledger"]
    return _table(["항목", "값"], [list(r) for r in ledger_rows(ledger)]) if ledger else None


def pooled_table(data: dict) -> dict:
    order, cur = data["arm_order"], data["dataset"]["currency"]
    pooled = {a: data["arms"][a]["pooled"] for a in order}
    keys = [k for k, _, _, _ in METRICS if any(k in p for p in pooled.values())]
    rows = [["기본 구매율"] + [percent(pooled[a]["base_rate"]) for a in order],
            ["평가 행 수"] + [count(pooled[a]["n"]) for a in order]]
    rows += [[metric_header(k, cur)] + [metric_value(k, pooled[a].get(k), cur) for a in order] for k in keys]
    return _table(["지표"] + [arm_name(a) for a in order], rows)


def by_anchor_table(data: dict) -> dict:
    rows = []
    for anchor in data["split"]["test_anchors"]:
        for a in data["arm_order"]:
            s = data["arms"][a]["by_anchor"].get(anchor)
            if s:
                rows.append([month(anchor), arm_name(a), number(s["rps"]), number(s.get("rps_skill")),
                             number(s["pr_auc"]), percent(s["base_rate"]), count(s["n"])])
    return _table(["평가 월", "비교군", "RPS ↓", "RPS 기술 점수 ↑", "PR-AUC ↑", "기본 구매율", "행 수"], rows)


SEGMENT_NAMES = {"one_time": "한 번 구매 고객", "repeat": "재구매 고객"}


def segment_table(data: dict) -> dict:
    cur = data["dataset"]["currency"]
    rows = []
    for seg, seg_name in SEGMENT_NAMES.items():
        for a in data["arm_order"]:
            s = data["arms"][a]["by_segment"].get(seg)
            if s:
                rows.append([seg_name, arm_name(a), number(s["rps"]), number(s["log_loss"]), number(s["pr_auc"]),
                             metric_value("spend_mae", s["spend_mae"], cur), percent(s["base_rate"]), count(s["n"])])
    headers = ["고객 유형", "비교군", "RPS ↓", "로그 손실 ↓", "PR-AUC ↑", f"지출 MAE ({cur}) ↓", "기본 구매율", "행 수"]
    return _table(headers, rows)


def differences_table(data: dict) -> dict:
    cur = data["dataset"]["currency"]
    rows = []
    for comparison, by_metric in data["differences"].items():
        for key, d in by_metric.items():
            rows.append([comparison, METRIC_NAMES.get(key, key), metric_value(key, d["a"], cur),
                         metric_value(key, d["b"], cur), difference(key, d["diff"], cur),
                         _interval(key, d, cur), VERDICT_WORDS[verdict(key, d)],
                         f"{count(d['n_valid'])}/{count(d['n_resamples'])}"])
    headers = ["비교 (b − a)", "지표", "a", "b", "차이", "95% 신뢰구간", "판정", "유효 재표본"]
    return _table(headers, rows)


def learning_curve_table(data: dict) -> dict | None:
    curve = data["learning_curve"]
    if not curve:
        return None
    rows = [[count(p["customers"]), count(p["rows"]), number(p.get(BASELINE_ARM)), number(p.get(HEADLINE_ARM)),
             difference("rps", p["difference"])] for p in curve]
    headers = ["학습 고객 수", "학습 행", f"RPS {BASELINE_ARM}", f"RPS {HEADLINE_ARM}", "차이"]
    return _table(headers, rows)


def importance_table(data: dict) -> dict | None:
    imp = data["importance"]
    rows = [[str(i + 1), f["feature"], percent(f.get("purchase_gain_share")), percent(f.get("bucket_gain_share")),
             number(f.get("mean_abs_shap"), 4)]
            for i, f in enumerate(imp["features"][: imp["shown"]])]
    headers = ["순위", "특성", "구매 모델 gain 비중", "구간 모델 gain 비중", "평균 |SHAP| (구매 log-odds)"]
    return _table(headers, rows) if rows else None


def tables(data: dict) -> dict[str, dict | None]:
    return {"data": data_table(data), "origins": origins_table(data), "origin_notes": origin_notes_table(data),
            "scheme": scheme_table(data), "ledger": ledger_table(data), "pooled": pooled_table(data),
            "by_anchor": by_anchor_table(data), "segments": segment_table(data),
            "differences": differences_table(data), "learning_curve": learning_curve_table(data),
            "importance": importance_table(data)}


# -- prose -----------------------------------------------------------------------------------


def difference_sentences(data: dict) -> list[str]:
    """One line per bootstrapped metric of the headline comparison."""
    key, cur = f"{HEADLINE_ARM} - {BASELINE_ARM}", data["dataset"]["currency"]
    return [f"{METRIC_NAMES.get(m, m)}: {difference(m, d['diff'], cur)} (95% 신뢰구간 {_interval(m, d, cur)}) — "
            f"{VERDICT_WORDS[verdict(m, d)]}" for m, d in data["differences"].get(key, {}).items()]


def importance_sentence(data: dict) -> str:
    imp = data["importance"]
    return (f"중요도는 마지막 평가 월에 쓴 {arm_name(imp['model'])} 모델의 것입니다. 순위는 구매 모델과 구간 모델의 "
            "총 gain 비중을 평균한 값으로 매겼고, 평균 |SHAP|은 구매 모델의 log-odds 기여 절댓값을 마지막 평가 월 "
            "행에서 평균한 것입니다.")


def learning_curve_sentence(data: dict) -> str:
    last = data["split"]["test_anchors"][-1]
    return (f"학습 고객 수를 줄여 다시 학습했을 때 마지막 평가 월({month(last)})의 RPS입니다. "
            "고객은 무작위로 뽑았고, 검증 월과 평가 월은 위와 같습니다.")


def prose(data: dict) -> dict[str, Any]:
    return {"comparison": comparison_sentence(data), "headline": headline_sentences(data),
            "differences": difference_sentences(data), "best_arm": best_arm_sentence(data),
            "forecaster_summary": forecaster_summary_sentence(data), "forecaster": forecaster_sentences(data), "sample": sample_sentence(data),
            "cleaning": cleaning_sentences(data), "split": split_sentences(data), "scheme": scheme_sentences(data),
            "rps_scaling": rps_scaling_sentence(data), "not_run": not_run_sentences(data),
            "importance": importance_sentence(data), "learning_curve": learning_curve_sentence(data),
            "base_rate": f"평가 행 전체의 기본 구매율(평가 월에 구매한 행의 비율)은 "
                         f"{percent(data['base_rate']['pooled'])}입니다."}
