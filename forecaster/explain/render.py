"""Rich text rendering of an :class:`~forecaster.explain.core.Explanation`, in Korean, readable
in an 80-column terminal. Only ``Text`` objects carry data (never markup strings), so a
rationale or narrative with brackets is printed as written."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from forecaster.explain.core import BucketShare, Explanation
from forecaster.explain.sentences import percent, signed
from narrator.korean import format_amount, format_month, josa
from narrator.panel import parse_month

BAR_CELLS = 14
_EIGHTHS = "▏▎▍▌▋▊▉"
EMPIRICAL_NAME = "통계 규칙 기반 예측기(LLM 아님)"


def bar(p: float, cells: int = BAR_CELLS) -> str:
    """A horizontal bar of ``p`` (0..1) in eighths of a cell, padded to ``cells``."""
    full, part = divmod(round(min(max(p, 0.0), 1.0) * cells * 8), 8)
    text = "█" * full + (_EIGHTHS[part - 1] if part else "")
    return text.ljust(cells)


def _share_cell(share: BucketShare) -> Text:
    return Text(f"{bar(share.probability)} {percent(share.probability):>6}")


def _section(console: Console, title: str) -> None:
    console.print()
    console.rule(Text(title, style="bold"), align="left", style="dim")


def _line(console: Console, text: str, style: str = "") -> None:
    console.print(Text(text, style=style))


def _header(ex: Explanation, console: Console) -> None:
    anchor = format_month(parse_month(ex.anchor))
    _line(console, f"고객 {ex.customer_id} · {anchor} 예측 설명", "bold")
    source = "기본 모델(통계 규칙 기반 예측기로 학습, 캐시)" if ex.default_model else "학습된 모델"
    _line(console, f"데이터 {ex.data} · {source} {ex.model_dir or '(저장하지 않음)'}", "dim")
    for warning in ex.warnings:  # a model that learned next to nothing: say it before any figure
        _line(console, warning, "bold red")


def _narrative(ex: Explanation, console: Console) -> None:
    if ex.forecaster_is_llm:
        _section(console, "1. LLM에 보낸 서술 (전송된 글 그대로)")
    else:
        _section(console, "1. 고객 서술 (LLM 예측기에 전송되는 글 그대로)")
        _line(console, "통계 규칙 기반 예측기는 이 글 대신 같은 월별 숫자를 직접 읽습니다.", "dim")
    # soft_wrap: no line breaks are added, so a copy of the text is exactly what is sent
    console.print(Text(ex.narrative), soft_wrap=True)


def _producer(ex: Explanation) -> str:
    record = ex.record
    if not ex.forecaster_is_llm:
        return f"예측기: {EMPIRICAL_NAME} · {record.model}"
    cached = " · 캐시된 응답" if record.cache_hit else ""
    return f"예측기: LLM {record.model} · 프롬프트 {record.prompt_version}{cached}"


def _forecaster(ex: Explanation, console: Console) -> None:
    _section(console, "2. 예측기의 답")
    _line(console, _producer(ex))
    shares, fc = ex.forecaster_distribution, ex.record.forecast
    if shares is None or fc is None:
        _line(console, f"예측에 실패했습니다 ({ex.record.reason}): {(ex.record.detail or '자세한 사유 없음').rstrip('.')}. "
                       "예측기 특징은 빈 값으로 모델에 들어갑니다.", "red")
        return
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    for share in shares:
        table.add_row(share.label, _share_cell(share))
    console.print(table)
    currency = ex.currency
    _line(console, f"기대 지출 {format_amount(fc.expected_spend, currency)} · 기대 주문 {fc.expected_orders:.2f}회 · "
                   f"구매 확률 {percent(fc.purchase_probability)}")
    _line(console, f"세그먼트 {fc.segment.value} · 추세 {fc.trend.value} · 확신도 {percent(fc.confidence)}")
    console.print(Text("근거: ", style="bold") + Text(fc.rationale))


def _decision_line(ex: Explanation) -> str:
    p, th = percent(ex.final.purchase_probability), percent(ex.threshold)
    verdict = "이상이라 '구매'로" if ex.decision else "미만이라 '구매 안 함'으로"
    return (f"판단: 구매 확률 {josa(p, '이/가')} 임계값 {th} {verdict} 판단합니다 "
            "(임계값은 검증 달에서 F1이 가장 높았던 값).")


def _top_line(ex: Explanation) -> str:
    top = ex.top20
    if top.member is None:
        return f"상위 20% 타깃: 판단하지 않음 — {top.note}"
    if top.cutoff is None:
        return (f"상위 20% 타깃: 이 달 고객이 {top.population:,}명뿐이라 20%(소수점 아래 버림)가 0명이어서 "
                "아무도 표시하지 않았습니다.")
    verdict = "포함됩니다" if top.member else "포함되지 않습니다"
    if top.tied > 1:
        return (f"상위 20% 타깃: 구매 확률이 경계 {josa(percent(top.cutoff), '와/과')} 같은 고객이 {top.tied:,}명이라 "
                f"{top.flagged:,}명을 채울 때까지 순서 규칙으로 정했고, 이 고객은 {verdict}. {top.rule}")
    where = "이상이라" if top.member else "미만이라"
    return (f"상위 20% 타깃: 이 달 고객 {top.population:,}명의 구매 확률 상위 20% 경계 "
            f"{percent(top.cutoff)} {where} {verdict}.")


def _models(ex: Explanation, console: Console) -> None:
    _section(console, "3. XGBoost 모델의 예측")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    table.add_column("구간", no_wrap=True)
    table.add_column("최종(기본+예측기 특징)", no_wrap=True)
    table.add_column("기본(이력 특징만)", no_wrap=True)
    for final, base in zip(ex.final.distribution, ex.baseline.distribution):
        table.add_row(final.label, _share_cell(final), _share_cell(base))
    console.print(table)
    _line(console, f"구매 확률: 최종 모델 {percent(ex.final.purchase_probability)} · "
                   f"기본 모델 {percent(ex.baseline.purchase_probability)}")
    _line(console, f"기대 지출: 최종 모델 {format_amount(ex.final.expected_spend, ex.currency)} · "
                   f"기본 모델 {format_amount(ex.baseline.expected_spend, ex.currency)}")
    _line(console, _decision_line(ex))
    _line(console, _top_line(ex))


def _contributions(ex: Explanation, console: Console) -> None:
    top = ex.top_contributions
    _section(console, f"4. 구매 확률에 가장 크게 작용한 요인 {len(top)}가지 (최종 모델)")
    _line(console, f"기여도는 SHAP 값이며 단위는 구매의 로그 오즈(log-odds)입니다. 기준값 {signed(ex.base_value)}"
                   "(학습 데이터의 평균적인 출발점)에 모든 요인의 기여를 더한 값이 이 고객의 로그 오즈입니다.", "dim")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for i, item in enumerate(top, 1):
        # "fold": with rich's default a sentence whose last word ends exactly at the cell's
        # edge lost that word's final syllable to an ellipsis (wide Korean characters)
        grid.add_row(f"{i}.", Text(item.sentence, overflow="fold"))
    console.print(grid)
    shown = sum(item.contribution for item in top)
    rest = sum(item.contribution for item in ex.contributions[len(top):])
    _line(console, f"기준값 {signed(ex.base_value)} + 위 {len(top)}개 {signed(shown)} + 나머지 "
                   f"{len(ex.contributions) - len(top)}개 {signed(rest)} = 로그 오즈 {signed(ex.margin)} → "
                   f"구매 확률 {percent(ex.final.purchase_probability)}")


def _actual(ex: Explanation, console: Console) -> None:
    month = format_month(parse_month(ex.anchor))
    _section(console, f"5. 실제로 일어난 일 ({month})")
    actual = ex.actual
    if actual is None:
        _line(console, "예측 대상 월이 데이터의 마지막 온전한 달 뒤라 실제 결과는 아직 알 수 없습니다.")
        return
    bought = actual.spend > 0
    what = (f"{actual.orders}회 주문해 {josa(format_amount(actual.spend, ex.currency), '을/를')} 썼습니다"
            f"('{actual.label}' 구간)."
            if bought else "구매하지 않았습니다('구매 없음').")
    agree = "맞았습니다" if bought == ex.decision else "빗나갔습니다"
    _line(console, f"{what} 최종 모델의 판단은 {agree}.")
    if ex.anchor_in_training:
        _line(console, f"이 달의 실제 결과는 모델 학습(검증 포함, {ex.trained_anchors[0]}~{ex.validation_anchor})에 "
                       "쓰였으므로 표본 내 비교입니다.", "dim")


def render(ex: Explanation, console: Console) -> None:
    """Print every section of the explanation to ``console``."""
    for part in (_header, _narrative, _forecaster, _models, _contributions, _actual):
        part(ex, console)

