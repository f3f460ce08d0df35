"""The Korean sentences of the evaluation report, section by section.

Every function here reads the report's JSON-safe data (what ``metrics.json`` holds), never
the raw result, so each number a sentence quotes is also in ``metrics.json``. Particles
after numbers and words are chosen by :func:`narrator.korean.josa`, never written "이(가)";
numbers and intervals are written by :mod:`forecaster.report.format`, verdicts and warnings
decided by :mod:`forecaster.report.checks`; the tables are in :mod:`forecaster.report.tables`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecaster.report.checks import VERDICT_WORDS, can_answer, cannot_answer_reason, judged
from forecaster.report.format import (BASELINE_ARM, BAYES_ARM, BOUND_ARMS, HEADLINE_ARM, HEADLINE_COMPARISON,
                                      METRIC_NAMES, MISSING, ORACLE_ARM, arm_name, count, degenerate, difference,
                                      interval, magnitude, missing, month, month_range_text, month_span, number,
                                      percent, signed_percent)
from models import bootstrap
from narrator.korean import format_amount, josa

MDE_FACTOR = number(bootstrap.minimum_detectable_difference(1.0), 2)  # 2.80
# each bound as a sentence names it the first time, then for short
BOUND_NAMES = {ORACLE_ARM: ("잠재 모수를 아는 오라클", "오라클"),
               BAYES_ARM: ("생성 모형의 사전분포만 아는 베이즈 비교군", "베이즈 비교군")}
BOUNDS_MEANING = ("오라클은 고객마다 참 모수를 아는 완벽한 정보가 주는 한계이고, 베이즈 비교군은 생성 모형의 사전분포 "
                  "아래에서 각 고객의 기준 월 이전 기록 전체로 모수를 적분한 예측으로, 그 자료가 허락하는 한계입니다.")

# -- headline --------------------------------------------------------------------------------


def _interval_clause(d: dict, cur: str) -> str:
    """``95% 신뢰구간(...)은 −0.00009 ~ +0.00003으로``: the particle follows the last digit."""
    return (f"95% 신뢰구간(고객 단위 paired bootstrap {count(d['n_valid'])}회)은 "
            f"{josa(interval('rps', d, cur), '으로/로')}")


def _verdict_sentence(head: dict, cur: str) -> str:
    aug, base = arm_name(HEADLINE_ARM), arm_name(BASELINE_ARM)
    d = head["difference"]
    a, b, diff = number(d["a"]), number(d["b"]), difference("rps", d["diff"], cur)
    gap = magnitude("rps", d["diff"], cur)
    rel = signed_percent(head["relative_change"], 1)
    if head["verdict"] == "cannot_answer":
        return (f"참고로 {aug}의 RPS는 {josa(b, '으로/로')}, {base}의 {josa(a, '와/과')} 비교한 차이는 "
                f"{diff}({rel})이고, {_interval_clause(d, cur)} 계산되었습니다.")
    if head["verdict"] == "improved":
        return (f"{josa(aug, '은/는')} {base}보다 RPS가 {gap} 낮았습니다({a} → {b}, {rel}). {_interval_clause(d, cur)} "
                "전체가 0보다 작으므로, 이 평가 월들에서는 예측기 특성이 RPS를 개선했다는 근거가 있습니다.")
    if head["verdict"] == "worse":
        return (f"{josa(aug, '은/는')} {base}보다 RPS가 오히려 {gap} 높았습니다({a} → {b}, {rel}). "
                f"{_interval_clause(d, cur)} 전체가 0보다 크므로, 예측기 특성을 더하면 RPS가 나빠졌다고 보아야 합니다.")
    if head["verdict"] == "no_evidence":
        return (f"{aug}의 RPS는 {josa(b, '으로/로')}, {base}의 {josa(a, '와/과')} 비교한 차이는 {diff}({rel})입니다. "
                f"{_interval_clause(d, cur)} 0을 포함하므로, 예측기 특성이 RPS를 개선했다는 근거는 없습니다.")
    return f"{josa(aug, '와/과')} {base}의 RPS 차이에 대한 신뢰구간을 계산할 수 없었습니다({a} → {b})."


def mde_sentence(data: dict) -> str | None:
    """The smallest RPS difference these test rows could detect, and how it is computed;
    that the bootstrap had no variation when its interval has width 0."""
    d, cur = data["headline"]["difference"], data["dataset"]["currency"]
    if d is None:
        return None
    if degenerate(d):
        return ("신뢰구간의 폭이 0입니다: 모든 재표본에서 차이가 같았습니다. 두 비교군의 예측이 같거나 평가 행이 "
                "너무 적어, 부트스트랩으로는 이 차이의 불확실성을 잴 수 없었습니다.")
    if missing(d.get("mde")):
        return None
    return (f"이 평가 행으로 찾아낼 수 있는 가장 작은 RPS 차이(최소 검출 차이)는 약 {magnitude('rps', d['mde'], cur)}입니다. "
            f"차이의 부트스트랩 표준오차 {magnitude('rps', d['se'], cur)}에 (z₀.₉₇₅ + z₀.₈₀) ≈ "
            f"{josa(MDE_FACTOR, '을/를')} 곱한 값으로, 참 차이가 이만큼이면 양측 5% 수준에서 80% 확률로 0과 구별됩니다. 이보다 작은 차이는 "
            "있어도 이 데이터로는 잘 드러나지 않습니다.")


def power_sentences(data: dict) -> list[str]:
    """An LLM run's detectable difference as estimated before it (forecaster/power.py), and
    where its LLM arms ran: on a sample, the empirical run on every customer beside it."""
    plan, cur = data.get("power"), data["dataset"]["currency"]
    if not plan:
        return []
    run = plan["run"]
    out = [f"LLM을 부르기 전에 경험적 예측기로 같은 평가 행을 먼저 평가해 추정한 최소 검출 차이는 약 "
           f"{magnitude('rps', run['mde_rps'], cur)}였습니다(고객 {count(run['customers'])}명). LLM의 답이 기본 모델과 "
           "더 다를수록 실제 최소 검출 차이는 이보다 커집니다."]
    if plan["sample_customers"] is not None and plan["population"]:
        population = plan["population"]
        arms = population["arms"]
        base, aug = arms.get("xgb_base", {}), arms.get("xgb_base+forecaster", {})
        reason = (f" --target-mde {np.format_float_positional(plan['target_mde'], trim='-')} 검출에 필요한 가장 작은 "
                  "표본입니다." if plan["target_mde"] else "")
        out.append(f"LLM 비교군은 고객 {count(plan['sample_customers'])}명의 층화 표본에서만 평가했습니다.{reason} 전체 고객 "
                   f"{count(population['customers'])}명에서 경험적 예측기(LLM 아님)를 쓴 평가의 RPS는 xgb_base "
                   f"{number(base.get('rps'), 4)}, xgb_base+forecaster {number(aug.get('rps'), 4)}였습니다.")
    return out


def headline_sentences(data: dict) -> list[str]:
    """The answer to "does ``xgb_base+forecaster`` beat ``xgb_base``?", stated as far as the
    paired bootstrap interval and the amount of test data allow and no further."""
    head = data["headline"]
    if head["verdict"] == "not_run":
        return [f"{josa(arm_name(HEADLINE_ARM), '이/가')} 실행되지 않아 예측기 특성의 효과는 평가하지 않았습니다."]
    lines = [] if can_answer(data) else [cannot_answer_reason(data)]
    return lines + [_verdict_sentence(head, data["dataset"]["currency"])]


# -- other sections --------------------------------------------------------------------------


def comparison_sentence(data: dict) -> str:
    """What was compared: data, test months, rows, arms."""
    split = data["split"]
    anchors = split["test_anchors"]
    arms = ", ".join(arm_name(a) for a in data["arm_order"])
    return (f"{data['dataset']['name']} 데이터의 평가 월 {month_span(anchors[0], anchors[-1])}"
            f"({len(anchors)}개월, 평가 행 {count(split['test_rows'])}개)에서 비교군 {len(data['arm_order'])}개를 "
            f"같은 고객-월 행으로 비교했습니다: {arms}.")


def best_arm_sentence(data: dict) -> str:
    """The lowest pooled RPS among the arms a user could run (the oracle and the bayes arm
    are bounds), and its ratio to each bound that ran."""
    candidates = {a: data["arms"][a]["pooled"]["rps"] for a in data["arm_order"] if a not in BOUND_ARMS}
    candidates = {a: v for a, v in candidates.items() if not missing(v)}
    if not candidates:
        return "RPS를 계산한 비교군이 없습니다."
    best = min(candidates, key=candidates.get)
    text = f"실행 가능한 비교군 중 RPS가 가장 낮은 것은 {josa(arm_name(best), '으로/로')} {number(candidates[best])}입니다."
    bounds = [b for b in BOUND_ARMS if b in data["arms"]]
    if not bounds:
        return text
    scores = ", ".join(f"{BOUND_NAMES[b][0]}의 RPS는 {number(data['arms'][b]['pooled']['rps'])}" for b in bounds)
    ratios = ", ".join(f"{BOUND_NAMES[b][1]}의 {number(data['arms'][best]['pooled'].get(f'rps_ratio_to_{b}'), 3)}배"
                       for b in bounds)
    text += f" {scores}이고, 가장 나은 비교군의 RPS는 {ratios}입니다."
    return text + (f" {BOUNDS_MEANING}" if len(bounds) == len(BOUND_ARMS) else "")


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
    out.extend(data["dataset"].get("notices", []))  # how the data was read and which months were judged partial
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


def difference_sentences(data: dict) -> list[str]:
    """One line per bootstrapped metric of the headline comparison (no verdict when the
    test rows cannot answer)."""
    cur, answerable = data["dataset"]["currency"], can_answer(data)
    by_metric = data["differences"].get(HEADLINE_COMPARISON, {})
    return [f"{METRIC_NAMES.get(m, m)}: {difference(m, d['diff'], cur)} (95% 신뢰구간 {interval(m, d, cur)}) — "
            f"{VERDICT_WORDS[judged(m, d, answerable)]}" for m, d in by_metric.items()]


def monthly_differences_sentence(data: dict) -> str:
    return ("평가 월마다 따로 계산한 차이(b − a)와 95% 신뢰구간입니다. 각 달의 구간은 그 달의 행에서 고객을 다시 뽑아 "
            "구했고, '평가 월 전체'는 위와 같습니다. 한 달의 차이가 다른 달과 크게 다르면 전체 결과를 그 달이 "
            f"좌우하고 있을 수 있습니다. 최소 검출 차이는 차이의 부트스트랩 표준오차 × (z₀.₉₇₅ + z₀.₈₀ ≈ {MDE_FACTOR})입니다.")


def importance_sentence(data: dict) -> str:
    imp = data["importance"]
    return (f"중요도는 마지막 평가 월에 쓴 {arm_name(imp['model'])} 모델의 것입니다. 순위는 구매 모델과 구간 모델의 "
            "총 gain 비중을 평균한 값으로 매겼고, 평균 |SHAP|은 구매 모델의 log-odds 기여 절댓값을 마지막 평가 월 "
            "행에서 평균한 것입니다.")


def learning_curve_sentence(data: dict) -> str:
    last = data["split"]["test_anchors"][-1]
    return (f"학습 고객 수를 줄여 다시 학습했을 때 마지막 평가 월({month(last)})의 RPS입니다. "
            "고객은 무작위로 뽑았고, 검증 월과 평가 월은 위와 같습니다.")


def _xgb_settings_text(settings: dict) -> str:
    return (f"깊이 {settings['max_depth']}, 학습률 {number(settings['eta'], 2)}, "
            f"최소 자식 가중치 {number(settings['min_child_weight'], 0)}"
            + (f", 구매 오프셋 {settings['purchase_offset']}" if "purchase_offset" in settings else ""))


def _empirical_settings_text(settings: dict) -> str:
    return (f"반감기 {number(settings['half_life'], 1)}개월, 구매 사전 강도 "
            f"{number(settings['purchase_prior_strength'], 0)}, 구간 사전 강도 {number(settings['bucket_prior_strength'], 0)}")


def tuning_sentences(data: dict) -> list[str]:
    """How the XGBoost settings (and the empirical forecaster's, when it was searched) were
    chosen: on which month, among how many candidates, by which score; empty when the run
    records no search (an older metrics.json)."""
    tuning = data.get("tuning")
    if not tuning:
        return []
    xgb, empirical = tuning["xgb"], tuning.get("empirical") or {}
    if xgb["month"] is None:
        out = [f"XGBoost 설정은 탐색할 자료가 부족해 기본값({_xgb_settings_text(xgb['chosen'])})을 썼습니다."]
    else:
        out = [f"XGBoost 설정(트리 깊이, 학습률, 최소 자식 가중치, 구매 모형 오프셋)은 첫 검증 월의 앞 달인 {month(xgb['month'])}에서 "
               f"후보 {count(len(xgb['candidates']))}개를 그보다 앞선 기준 월로 학습해 RPS로 비교하고, 가장 낮은 "
               f"{josa(_xgb_settings_text(xgb['chosen']), '을/를')} 모든 평가 월과 모든 XGBoost 비교군에 똑같이 "
               "썼습니다. 평가 월과 검증 월의 행은 이 선택에 전혀 쓰지 않았습니다."]
    if empirical.get("month"):
        out.append(f"통계 규칙 예측기의 설정도 같은 달에 후보 {count(len(empirical['candidates']))}개 중 RPS가 가장 "
                   f"낮은 {josa(_empirical_settings_text(empirical['chosen']), '으로/로')} 골랐습니다.")
    return out


def prose(data: dict) -> dict[str, Any]:
    return {"comparison": comparison_sentence(data), "headline": headline_sentences(data),
            "mde": mde_sentence(data), "power": power_sentences(data),
            # the headline itself says that the data cannot answer
            "warnings": [w["message"] for w in data["warnings"] if w["code"] != "cannot_answer"],
            "differences": difference_sentences(data), "best_arm": best_arm_sentence(data),
            "forecaster_summary": forecaster_summary_sentence(data), "forecaster": forecaster_sentences(data),
            "sample": sample_sentence(data), "cleaning": cleaning_sentences(data), "split": split_sentences(data),
            "scheme": scheme_sentences(data), "rps_scaling": rps_scaling_sentence(data),
            "not_run": not_run_sentences(data), "monthly_differences": monthly_differences_sentence(data),
            "importance": importance_sentence(data), "learning_curve": learning_curve_sentence(data),
            "tuning": tuning_sentences(data),
            "base_rate": f"평가 행 전체의 기본 구매율(평가 월에 구매한 행의 비율)은 "
                         f"{percent(data['base_rate']['pooled'])}입니다."}
