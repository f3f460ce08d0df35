"""Warnings about a trained model that learned (next to) nothing: `train` prints them, the
artifact's config.json stores them (``"warnings": [{arm, code, message}]``), `batch`'s closing
summary and `explain` show them again. A model with a warning is still saved: the user may
want it, and the warning says what it means and what to do."""

from __future__ import annotations

from narrator.korean import josa

# Early stopping at this many boosting rounds or fewer: the validation month gave the booster
# nothing to improve on after its first trees.
MAX_DEGENERATE_ROUNDS = 2
PREFIX = "경고: "
_REMEDY = "데이터(고객이나 달)를 늘리거나 마지막 달의 기록이 완전한지 확인하세요."
_BOOSTERS = {"purchase": ("rounds_purchase", "구매 여부 모델"), "bucket": ("rounds_bucket", "지출 구간 모델")}


def collect(summary: dict[str, dict], validation_anchor: str) -> list[dict]:
    """One warning per degenerate booster and per arm that ranks buyers no better than one
    probability for everybody, from ``train``'s validation summary."""
    out = []
    for arm, figures in summary.items():
        for part, (key, name) in _BOOSTERS.items():
            rounds = figures[key]
            if rounds <= MAX_DEGENERATE_ROUNDS:
                out.append({"arm": arm, "code": f"early_stop_{part}", "message": (
                    f"{arm}의 {josa(name, '이/가')} 검증 달 {validation_anchor}에서 조기 종료로 {rounds}라운드 만에 "
                    f"멈췄습니다. 거의 아무것도 배우지 못해 예측이 모든 고객에게 비슷할 수 있습니다. {_REMEDY}")})
        auc, base = figures["validation_pr_auc"], figures["climatology_pr_auc"]
        if not auc > base:  # also when either is nan (no buyer to rank)
            out.append({"arm": arm, "code": "no_ranking_skill", "message": (
                f"{arm}의 검증 달 {validation_anchor} PR-AUC {josa(f'{auc:.3f}', '이/가')} 모든 고객에게 같은 "
                f"확률을 줄 때의 값(그 달 구매율 {base:.3f})보다 높지 않습니다. 이 모델은 살 고객을 가려내지 "
                f"못합니다. {_REMEDY}")})
    return out


def lines(config: dict) -> list[str]:
    """The stored warnings as lines to print (none for a healthy model or an older artifact)."""
    return [PREFIX + w["message"] for w in config.get("warnings", [])]
