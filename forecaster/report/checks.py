"""What the report's numbers allow it to say: the verdict of an interval, whether the test
rows can answer the question at all, and the warnings shown beside the headline.

Everything reads the report's JSON-safe data (what ``metrics.json`` holds), so a reader can
check each warning against the numbers it quotes. The rules:

* **verdict** — a difference is an improvement or a worsening only when its paired
  bootstrap 95% interval lies wholly on one side of 0.
* **cannot answer** — below the minimum pooled test rows or buying rows (the evaluation's
  ``data_sufficiency``: its numbers and minimums), no verdict at all is drawn, neither
  "effect" nor "no effect"; the intervals are still shown. A single test month below the
  same minimums gets no verdict of its own.
* **base-rate warning** — a test month whose base rate (share of rows with a purchase) lies
  outside [½, 2] × the median base rate of the test months, and a two-proportion z-test
  against the other test months' rows gives |z| ≥ 3 (a month cut short at the end of
  an export has far fewer buyers; a few rows move a rate that much by chance).
* **one-month warning** — the headline difference's interval excludes 0 and one test month
  holds more than 60% of it. The headline metric (RPS) is a mean over rows, so the pooled
  difference is the sum over months of (month's rows × month's difference) / all rows, and
  a month's share is its term over that sum.
* **worse-than-climatology warning** — an arm a user could run (not climatology itself,
  not a synthetic-data bound) has a pooled RPS above climatology's: one sentence per arm
  with the likely cause of its kind. BTYD: when at least half the test rows buy, frequent
  shoppers break the models' picture of rare repeat purchases, else there are too few
  repeat purchases to fit them; XGBoost: fewer than ``FEW_TRAINING_ROWS`` training rows in
  some origin, else a change between the training and test months.
"""

from __future__ import annotations

import math
import statistics

from forecaster.report.format import (BETTER, HEADLINE_COMPARISON, HEADLINE_METRIC, METRIC_NAMES, arm_name, count,
                                      missing, month, number, percent, signed)
from models import arm_specs
from models.arm_specs import ArmKind
from narrator.korean import josa

BASE_RATE_RATIO = 2.0  # a month outside [median / 2, median * 2] of the test months is flagged ...
BASE_RATE_Z = 3.0  # ... when a two-proportion z-test against the other months' rows also says so
DRIVER_SHARE = 0.6  # one month holding more than this share of the pooled difference drives it
FREQUENT_BUYING_RATE = 0.5  # at least this share of test rows buying: frequent shoppers, for BTYD
FEW_TRAINING_ROWS = 10_000  # fewer training rows than this in an origin: too little for XGBoost
# arms a user could run; the synthetic-data bounds are what no model can beat, not a model
USER_ARM_KINDS = (ArmKind.REFERENCE, ArmKind.ESTIMATOR, ArmKind.XGB)

VERDICT_WORDS = {
    "improved": "개선 (신뢰구간이 0을 포함하지 않음)",
    "worse": "악화 (신뢰구간이 0을 포함하지 않음)",
    "no_evidence": "차이의 근거 없음 (신뢰구간이 0을 포함)",
    "undefined": "계산할 수 없음",
    "cannot_answer": "판단하지 않음 (평가 행이 최소 기준에 못 미침)",
}


def verdict(key: str, diff: dict) -> str:
    """``improved`` / ``worse`` when the 95% interval of (augmented - baseline) lies wholly
    on one side of 0, else ``no_evidence``; ``undefined`` without an interval."""
    lo, hi = diff.get("lo"), diff.get("hi")
    if missing(lo) or missing(hi):
        return "undefined"
    if lo <= 0 <= hi:
        return "no_evidence"
    lower_is_better = BETTER.get(key, "lower") == "lower"
    return "improved" if (hi < 0) == lower_is_better else "worse"


def can_answer(data: dict) -> bool:
    return bool(data["data_sufficiency"]["can_answer"])


def month_positives(data: dict, anchor: str) -> int:
    """Buying rows of a test month (every arm is scored on the same rows)."""
    scores = data["arms"][data["arm_order"][0]]["by_anchor"][anchor]
    return round(scores["base_rate"] * scores["n"])


def month_can_answer(data: dict, anchor: str) -> bool:
    """A test month alone meets the same minimum test rows and buying rows as the pool."""
    need = data["data_sufficiency"]
    rows = data["arms"][data["arm_order"][0]]["by_anchor"][anchor]["n"]
    return rows >= need["min_test_rows"] and month_positives(data, anchor) >= need["min_test_positives"]


def judged(key: str, diff: dict, answerable: bool) -> str:
    """The verdict a table or sentence may state: none when the rows cannot answer."""
    return verdict(key, diff) if answerable else "cannot_answer"


def cannot_answer_reason(data: dict) -> str:
    s = data["data_sufficiency"]
    return (f"평가 행이 {count(s['test_rows'])}개(구매한 행 {count(s['test_positives'])}개)로, 비교군의 차이를 "
            f"판단하는 데 필요한 최소 기준(평가 행 {count(s['min_test_rows'])}개, 구매한 행 "
            f"{count(s['min_test_positives'])}개)에 못 미칩니다. 이 데이터로는 예측기 특성이 도움이 되는지 답할 수 "
            "없으므로 효과가 있다거나 없다고 결론짓지 않으며, 아래 신뢰구간은 참고로만 보여 줍니다.")


# -- warnings --------------------------------------------------------------------------------


def _rate_z(pos: float, n: float, other_pos: float, other_n: float) -> float:
    """Two-proportion z statistic of one month's base rate against the other months' rows."""
    rate = (pos + other_pos) / (n + other_n)
    se = math.sqrt(rate * (1 - rate) * (1 / n + 1 / other_n))
    return (pos / n - other_pos / other_n) / se if se > 0 else 0.0


def base_rate_warnings(data: dict) -> list[dict]:
    """Test months whose base rate is outside [½, 2] x the median of the test months' base
    rates (the median of all of them, so one odd month does not pull the reference of the
    others toward itself) and clearly so (|z| of a two-proportion test against their rows at least ``BASE_RATE_Z``:
    a handful of rows moves a rate by that much by chance)."""
    rates = data["base_rate"]["by_anchor"]
    n = {a: s["n"] for a, s in data["arms"][data["arm_order"][0]]["by_anchor"].items()}
    pos = {a: month_positives(data, a) for a in rates}
    out = []
    for anchor, rate in rates.items():
        others = [a for a in rates if a != anchor and not missing(rates[a])]
        if not others or missing(rate):
            continue
        median = statistics.median(r for r in rates.values() if not missing(r))
        if median / BASE_RATE_RATIO <= rate <= median * BASE_RATE_RATIO:
            continue
        z = _rate_z(pos[anchor], n[anchor], sum(pos[a] for a in others), sum(n[a] for a in others))
        if abs(z) < BASE_RATE_Z:
            continue
        out.append({
            "code": "base_rate_outlier", "anchor": anchor, "base_rate": rate, "median": median, "z": z,
            "message": (f"{month(anchor)}의 기본 구매율 {josa(percent(rate), '은/는')} 평가 월 기본 구매율의 "
                        f"중앙값 {percent(median)}의 ½배 이상 2배 이하 범위를 벗어납니다. 그 달의 자료가 끝까지 들어 "
                        "있는지(내보낸 자료의 마지막 달이 잘리지 않았는지) 확인하고, 그 달의 차이는 다른 달과 따로 "
                        "보십시오."),
        })
    return out


def _monthly_contributions(data: dict) -> dict[str, float]:
    """Each test month's rows x headline difference: the pooled difference of a mean over
    rows is their sum over all test rows."""
    by_anchor = data["differences_by_anchor"].get(HEADLINE_COMPARISON, {})
    n = {a: s["n"] for a, s in data["arms"][data["arm_order"][0]]["by_anchor"].items()}
    return {a: d[HEADLINE_METRIC]["diff"] * n[a] for a, d in by_anchor.items()
            if not missing(d[HEADLINE_METRIC]["diff"])}


def driver_warnings(data: dict) -> list[dict]:
    """One month holding more than ``DRIVER_SHARE`` of a headline difference whose interval
    excludes 0."""
    pooled = data["differences"].get(HEADLINE_COMPARISON, {}).get(HEADLINE_METRIC)
    if pooled is None or verdict(HEADLINE_METRIC, pooled) not in ("improved", "worse"):
        return []
    parts = _monthly_contributions(data)
    total = sum(parts.values())
    if len(parts) < 2 or total == 0:
        return []
    out = []
    for anchor, part in parts.items():
        share = part / total
        if share > DRIVER_SHARE:
            name = METRIC_NAMES[HEADLINE_METRIC]
            out.append({
                "code": "one_month_drives", "anchor": anchor, "share": share,
                "message": (f"평가 월 전체의 {name} 차이 가운데 {josa(percent(share, 0), '이/가')} {month(anchor)} 한 달에서 "
                            f"나왔습니다(평가 월별 차이 × 행 수로 나눈 몫, 기준 {percent(DRIVER_SHARE, 0)}). 전체 "
                            "결론이 그 달에 크게 기대고 있으니 평가 월별 차이를 함께 보고, 그 달이 다른 달과 같은 "
                            "조건인지(자료가 잘린 달이 아닌지) 확인하십시오."),
            })
    return out


def _worse_than_climatology_cause(arm: arm_specs.ArmSpec, data: dict) -> str:
    """The likely cause, as the end of a Korean sentence, of ``arm`` scoring below climatology."""
    if arm is arm_specs.BTYD:
        rate = data["base_rate"]["pooled"]
        if not missing(rate) and rate >= FREQUENT_BUYING_RATE:
            return (f"평가 월 행의 {percent(rate)}에 구매가 있을 만큼 자주 사는 고객이 많아, 구매가 드문 고객을 가정하는 "
                    "BTYD 모형이 맞지 않았기 때문일 수 있습니다")
        return "반복 구매가 적어 BTYD 모형이 구매 빈도와 이탈을 추정할 자료가 부족했기 때문일 수 있습니다"
    if arm.kind is ArmKind.XGB:
        fewest = min(o["n_train"] for o in data["split"]["origins"])
        if fewest < FEW_TRAINING_ROWS:
            return f"훈련 행이 가장 적은 평가 월에 {count(fewest)}개뿐이라 모형이 배울 자료가 부족했기 때문일 수 있습니다"
        return "훈련 월과 평가 월 사이에 구매 양상이 달라졌기 때문일 수 있으니 평가 월별 결과를 함께 보십시오"
    if arm is arm_specs.PERSISTENCE:
        return "지난달의 지출 구간이 다음 달에 거의 되풀이되지 않는 자료이기 때문일 수 있습니다"
    return "예측기의 확률이 이 자료의 구매 수준과 맞지 않기 때문일 수 있으니 신뢰도 그림을 확인하십시오"


def climatology_warnings(data: dict) -> list[dict]:
    """One sentence for every arm a user could run whose pooled RPS is worse than
    climatology's (its RPS skill below 0), with the likely cause of its kind."""
    reference = arm_specs.CLIMATOLOGY.name
    if reference not in data["arms"]:
        return []
    climatology_rps = data["arms"][reference]["pooled"]["rps"]
    specs = {arm.name: arm for arm in arm_specs.ARMS if arm.kind in USER_ARM_KINDS and arm.name != reference}
    out = []
    for name in data["arm_order"]:
        rps = data["arms"][name]["pooled"]["rps"]
        if name not in specs or missing(rps) or missing(climatology_rps) or rps <= climatology_rps:
            continue
        skill = data["arms"][name]["pooled"].get("rps_skill")
        out.append({
            "code": "worse_than_climatology", "anchor": None, "arm": name, "rps": rps,
            "climatology_rps": climatology_rps,
            "message": (f"{arm_name(name)}의 평가 월 전체 RPS가 {josa(number(rps), '으로/로')} {arm_name(reference)}의 "
                        f"{number(climatology_rps)}보다 나쁜데(RPS 기술 점수 {signed(skill, 3)}), "
                        f"{_worse_than_climatology_cause(specs[name], data)}."),
        })
    return out


def sufficiency_warnings(data: dict) -> list[dict]:
    if can_answer(data):
        return []
    return [{"code": "cannot_answer", "anchor": None, "message": cannot_answer_reason(data)}]


def warnings(data: dict) -> list[dict]:
    """Every warning of the report, most serious first."""
    return sufficiency_warnings(data) + driver_warnings(data) + climatology_warnings(data) + base_rate_warnings(data)
