"""The tables of the evaluation report, as display strings, from the report's JSON-safe data.

Each table is ``{"headers", "rows", "numeric"}``; every number in a cell is written by
:mod:`forecaster.report.format`, and every verdict by :mod:`forecaster.report.checks`.
"""

from __future__ import annotations

import re

from forecaster.labels import feature_label
from forecaster.report.checks import VERDICT_WORDS, can_answer, judged, month_can_answer
from forecaster.report.format import (BASELINE_ARM, HEADLINE_ARM, METRIC_NAMES, METRICS, MINUS, MISSING, arm_name,
                                      comparison_name, count, difference, interval, magnitude, metric_header,
                                      metric_value, month, month_span, number, origin_note, percent)
from narrator.korean import format_amount

LEDGER_LABELS = {
    "model": "모델", "customers": "고객 수", "ok": "성공", "failed": "실패", "calls": "API 호출",
    "cache_hits": "캐시 적중", "reasks": "재질문", "transport_retries": "전송 재시도",
    "tokens_in": "입력 토큰", "tokens_out": "출력 토큰", "cached_tokens_in": "캐시로 아낀 입력 토큰",
    "cached_tokens_out": "캐시로 아낀 출력 토큰", "cost_usd": "비용 추정 (USD)", "cost_note": "비용 메모",
    "latency_p50_s": "지연 p50 (초)", "latency_p95_s": "지연 p95 (초)",
}
SEGMENT_NAMES = {"one_time": "한 번 구매 고객", "repeat": "재구매 고객"}
POOLED = "평가 월 전체"
BY_ANCHOR_RATIOS = ("rps_ratio_to_oracle", "rps_ratio_to_bayes")  # shown per test month when the bound ran

_NUMERIC_CELL = re.compile(rf"^[+{MINUS}]?[0-9][0-9,]*(\.[0-9]+)?(%|배|명|건|행|개월)?$|^—$")


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
    """Each test month's scores per arm, with the RPS ratio to each bound that ran."""
    cur = data["dataset"]["currency"]
    ratios = [k for k in BY_ANCHOR_RATIOS
              if any(k in s for a in data["arm_order"] for s in data["arms"][a]["by_anchor"].values())]
    rows = []
    for anchor in data["split"]["test_anchors"]:
        for a in data["arm_order"]:
            s = data["arms"][a]["by_anchor"].get(anchor)
            if s:
                rows.append([month(anchor), arm_name(a), number(s["rps"]), number(s.get("rps_skill"))]
                            + [metric_value(k, s.get(k), cur) for k in ratios]
                            + [number(s["pr_auc"]), percent(s["base_rate"]), count(s["n"])])
    headers = (["평가 월", "비교군", "RPS ↓", "RPS 기술 점수 ↑"] + [metric_header(k, cur) for k in ratios]
               + ["PR-AUC ↑", "기본 구매율", "행 수"])
    return _table(headers, rows)


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
    cur, answerable = data["dataset"]["currency"], can_answer(data)
    rows = []
    for comparison, by_metric in data["differences"].items():
        for key, d in by_metric.items():
            rows.append([comparison, METRIC_NAMES.get(key, key), metric_value(key, d["a"], cur),
                         metric_value(key, d["b"], cur), difference(key, d["diff"], cur),
                         interval(key, d, cur), VERDICT_WORDS[judged(key, d, answerable)],
                         magnitude(key, d.get("mde"), cur), f"{count(d['n_valid'])}/{count(d['n_resamples'])}"])
    headers = ["비교 (b − a)", "지표", "a", "b", "차이", "95% 신뢰구간", "판정", "최소 검출 차이", "유효 재표본"]
    return _table(headers, rows)


def monthly_differences_table(data: dict) -> dict:
    """Per comparison and metric: each test month's difference, then the pooled one."""
    cur, answerable = data["dataset"]["currency"], can_answer(data)
    base = data["arms"][BASELINE_ARM]["by_anchor"] if BASELINE_ARM in data["arms"] else {}
    pooled_rate = data["base_rate"]["pooled"]
    rows = []
    for comparison, by_anchor in data["differences_by_anchor"].items():
        for key in data["differences"][comparison]:
            for anchor, by_metric in by_anchor.items():
                d = by_metric[key]
                ok = answerable and month_can_answer(data, anchor)
                rows.append([comparison_name(comparison), METRIC_NAMES.get(key, key), month(anchor),
                             difference(key, d["diff"], cur), interval(key, d, cur), VERDICT_WORDS[judged(key, d, ok)],
                             magnitude(key, d.get("mde"), cur), percent(base.get(anchor, {}).get("base_rate")),
                             count(base.get(anchor, {}).get("n"))])
            d = data["differences"][comparison][key]
            rows.append([comparison_name(comparison), METRIC_NAMES.get(key, key), POOLED,
                         difference(key, d["diff"], cur), interval(key, d, cur),
                         VERDICT_WORDS[judged(key, d, answerable)], magnitude(key, d.get("mde"), cur),
                         percent(pooled_rate), count(data["split"]["test_rows"])])
    headers = ["비교 (b − a)", "지표", "평가 월", "차이", "95% 신뢰구간", "판정", "최소 검출 차이", "기본 구매율", "행 수"]
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
    buckets = dict(zip(data["scheme"]["ids"], data["scheme"]["labels"]))
    rows = [[str(i + 1), feature_label(f["feature"], buckets), f["feature"], percent(f.get("purchase_gain_share")),
             percent(f.get("bucket_gain_share")), number(f.get("mean_abs_shap"), 4)]
            for i, f in enumerate(imp["features"][: imp["shown"]])]
    headers = ["순위", "특성", "열 이름", "구매 모델 gain 비중", "구간 모델 gain 비중", "평균 |SHAP| (구매 log-odds)"]
    return _table(headers, rows) if rows else None


TUNING_SHOWN = 5  # the best candidates a tuning table lists (plus the default, when it is not among them)
# digits None: the value is a name (the purchase booster's offset column; absent before it was searched)
XGB_SETTING_CELLS = (("max_depth", "깊이", 0), ("eta", "학습률", 2), ("min_child_weight", "최소 자식 가중치", 0),
                     ("purchase_offset", "구매 오프셋", None))
EMPIRICAL_SETTING_CELLS = (("half_life", "반감기 (개월)", 1), ("purchase_prior_strength", "구매 사전 강도", 0),
                           ("bucket_prior_strength", "구간 사전 강도", 0))


def _tuning_table(search: dict | None, cells: tuple[tuple[str, str, int | None], ...]) -> dict | None:
    """The best candidates of one search by RPS on the tuning month, and the default."""
    if not search or not search["candidates"]:
        return None
    keys = [key for key, _, _ in cells]

    def mark(candidate: dict) -> str:
        settings = {k: candidate.get(k) for k in keys}
        marks = [word for word, target in (("선택", search["chosen"]), ("기본값", search["default"]))
                 if settings == {k: target.get(k) for k in keys}]
        return "·".join(marks) or MISSING

    ranked = sorted(search["candidates"], key=lambda c: c[search["criterion"]])
    shown = ranked[:TUNING_SHOWN] + [c for c in ranked[TUNING_SHOWN:] if mark(c) != MISSING]
    rows = [[str(ranked.index(c) + 1)] + [number(c[k], digits) if digits is not None else c.get(k, MISSING)
                                         for k, _, digits in cells]
            + [number(c["rps"], 5), number(c["purchase_log_loss"], 5), mark(c)] for c in shown]
    headers = ["순위"] + [name for _, name, _ in cells] + ["RPS ↓", "구매 로그 손실 ↓", "비고"]
    return _table(headers, rows)


def xgb_tuning_table(data: dict) -> dict | None:
    """The XGBoost search's best candidates (None when the run records no search)."""
    return _tuning_table((data.get("tuning") or {}).get("xgb"), XGB_SETTING_CELLS)


def empirical_tuning_table(data: dict) -> dict | None:
    """The empirical forecaster's search's best candidates (None when it did not run)."""
    return _tuning_table((data.get("tuning") or {}).get("empirical"), EMPIRICAL_SETTING_CELLS)


def tables(data: dict) -> dict[str, dict | None]:
    return {"data": data_table(data), "origins": origins_table(data), "origin_notes": origin_notes_table(data),
            "scheme": scheme_table(data), "ledger": ledger_table(data), "pooled": pooled_table(data),
            "by_anchor": by_anchor_table(data), "segments": segment_table(data),
            "differences": differences_table(data), "monthly_differences": monthly_differences_table(data),
            "learning_curve": learning_curve_table(data), "importance": importance_table(data),
            "tuning_xgb": xgb_tuning_table(data), "tuning_empirical": empirical_tuning_table(data)}
