"""Korean narratives: golden texts for three CDNOW customers, the template sandbox and user
templates, and ``forecaster narrate`` through the real entry point (the one-customer path
against the batch path: tests/test_narrative_paths.py).

Regenerate the golden files after an intended wording change (and bump
``prompts.NARRATIVE_VERSION``) with ``UPDATE_GOLDEN=1 pytest tests/test_narrative.py``,
then read them: particles after numbers and months must read naturally.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest
from clitools import run_cli

from forecaster.datasets import load_cdnow
from narrator.narrative import (
    NarrativeTemplateError,
    narrative_version,
    render_narrative,
    render_narratives,
)
from narrator.panel import MonthlyPanel, build_panel
from prompts import NARRATIVE_VERSION

GOLDEN = Path(__file__).parent / "golden"
ANCHOR = pd.Period("1998-01", freq="M")
# picked by looking at the data at the 1998-01 anchor
GOLDEN_CUSTOMERS = {
    "one_time": "00001",  # one order (January 1997), nothing since
    "regular": "00145",  # bought in 10 of 12 months, 17 orders
    "lapsed": "00547",  # 4 active months up to May 1997, then nothing for 7 months
}


@lru_cache(maxsize=1)
def cdnow_panel() -> MonthlyPanel:
    return load_cdnow().panel


def tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": [r[0] for r in rows], "ts": pd.to_datetime([r[1] for r in rows]), "amount": [r[2] for r in rows]}
    )


@pytest.mark.parametrize("kind", sorted(GOLDEN_CUSTOMERS))
def test_golden_narratives(kind: str) -> None:
    history = cdnow_panel().histories(ANCHOR).get(GOLDEN_CUSTOMERS[kind])
    text = render_narrative(history)
    path = GOLDEN / f"narrative_{kind}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")
    assert GOLDEN_CUSTOMERS[kind] not in text


def test_no_customer_id_in_the_narrative() -> None:
    ids = ["C-938271", "C-104457", "C-550019"]
    panel = build_panel(
        tx([(ids[0], "2024-01-05", 12_300), (ids[0], "2024-03-02", 45_000),
            (ids[1], "2024-02-11", 9_800), (ids[2], "2024-01-30", 1_250_000)]),
        "KRW",
    )
    batch = panel.histories(pd.Period("2024-04", freq="M"))
    assert len(batch) == 3
    for customer_id, text in zip(batch.customer_ids, render_narratives(batch)):
        assert customer_id not in text and customer_id[2:] not in text


def test_merged_spans_and_korean_amounts() -> None:
    panel = build_panel(
        tx([
            ("A", "2023-11-03", 12_300), ("A", "2023-11-20", 9_800),  # 2 orders in one month
            ("A", "2024-04-09", 153_000),
            ("Z", "2024-06-01", 5_000),  # keeps June inside the data
        ]),
        "KRW",
    )
    text = render_narrative(panel.histories(pd.Period("2024-07", freq="M"), 12).get("A"))
    assert text == (
        "첫 구매는 2023년 11월로 8개월 전이며, 그때부터 8개월 중 2개월에 구매했습니다.\n"
        "누적 3회 주문에 17.5만 원(주문당 5.8만 원)을 썼습니다.\n"
        "마지막 구매는 2024년 4월로, 이후 2개월간 구매가 없었습니다.\n"
        "최근 3개월 월평균 지출은 5.1만 원으로 그 전 5개월의 4,420원보다 늘었습니다.\n"
        "월별 기록:\n"
        "2023년 11월: 2회 주문, 2.2만 원\n"
        "12월~2024년 3월: 구매 없음\n"
        "4월: 1회 주문, 15.3만 원\n"
        "5월~6월: 구매 없음\n"
        "예측 대상: 2024년 7월"
    )


def test_window_before_the_first_purchase_and_a_silent_window() -> None:
    panel = build_panel(
        tx([("A", "2023-01-10", 20.0), ("A", "2023-02-10", 30.0), ("Z", "2024-03-01", 1.0)]), "USD"
    )
    text = render_narrative(panel.histories(pd.Period("2024-04", freq="M"), 6).get("A"))
    assert text.splitlines()[0] == "첫 구매는 2023년 1월로 15개월 전이며, 최근 6개월 동안은 구매가 없었습니다."
    assert "2023년 10월~2024년 3월: 구매 없음" in text
    assert "모두 지출이 없었습니다" not in text  # said once is enough


def test_flat_trend_takes_wa_gwa_after_won() -> None:
    rows = [("A", f"2024-{m:02d}-10", 30_000.0) for m in range(1, 7)]  # the same every month
    panel = build_panel(tx(rows), "KRW")
    text = render_narrative(panel.histories(pd.Period("2024-07", freq="M")).get("A"))
    assert "최근 3개월 월평균 지출은 3만 원으로 그 전 3개월의 3만 원과 비슷합니다." in text
    assert "누적 6회 주문에 18만 원(주문당 3만 원)을 썼습니다." in text


def test_first_purchase_last_month() -> None:
    panel = build_panel(tx([("A", "2024-03-10", 10_000), ("A", "2024-03-12", 2_000)]), "KRW")
    text = render_narrative(panel.histories(pd.Period("2024-04", freq="M")).get("A"))
    assert text == (
        "첫 구매는 2024년 3월로 바로 전달입니다.\n"
        "누적 2회 주문에 1.2만 원(주문당 6,000원)을 썼습니다.\n"
        "마지막 구매는 2024년 3월로 바로 전달입니다.\n"
        "기록이 1개월뿐이라 추세는 알 수 없습니다.\n"
        "월별 기록:\n"
        "2024년 3월: 2회 주문, 1.2만 원\n"
        "예측 대상: 2024년 4월"
    )


def test_user_template_folder(tmp_path: Path) -> None:
    (tmp_path / "narrative.j2").write_text(
        "{{ anchor_month }} 예측, 최근 {{ recent_average | josa('으로/로') }} "
        "{% for m in months %}[{{ m.label }}]{% endfor %}",
        encoding="utf-8",
    )
    history = cdnow_panel().histories(ANCHOR).get("00547")
    text = render_narrative(history, tmp_path)
    assert text == "1998년 1월 예측, 최근 0달러로 [1997년 1월][2월][3월][4월][5월][6월~12월]"
    assert narrative_version(tmp_path).startswith("narrative-custom-")
    assert narrative_version() == NARRATIVE_VERSION


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ months.__class__.__subclasses__() }}", "unsafe"),
        ("{{ customer_id }}", "undefined"),  # no id is given to templates at all
        ("{% for %}", "line 1"),
    ],
)
def test_bad_or_unsafe_templates_are_refused(tmp_path: Path, template: str, message: str) -> None:
    (tmp_path / "narrative.j2").write_text(template, encoding="utf-8")
    history = cdnow_panel().histories(ANCHOR).get("00001")
    with pytest.raises(NarrativeTemplateError, match=message):
        render_narrative(history, tmp_path)


def test_missing_user_template(tmp_path: Path) -> None:
    history = cdnow_panel().histories(ANCHOR).get("00001")
    with pytest.raises(NarrativeTemplateError, match="has no narrative.j2"):
        render_narrative(history, tmp_path)


# -- forecaster narrate ---------------------------------------------------------------------




def test_narrate_prints_the_narrative_exactly(monkeypatch, capsys) -> None:
    code, out, err = run_cli(["narrate", "00145", "--anchor", "1998-01"], monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert out == (GOLDEN / "narrative_regular.txt").read_text(encoding="utf-8")
    # CDNOW ids carry leading zeros; the plain number finds the same customer
    code, out_plain, _ = run_cli(["narrate", "145", "--anchor", "1998-01"], monkeypatch, capsys)
    assert code == 0 and out_plain == out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["99999", "--anchor", "1998-01"], "customer '99999' is not in the data 'cdnow'"),
        (["00001", "--anchor", "1998-13"], "--anchor '1998-13' is not a month of the form YYYY-MM"),
        (["00001", "--anchor", "1999-01"], "choose a month from 1997-02 to 1998-07"),
        (["00001", "--anchor", "1997-01"], "choose a month from 1997-02 to 1998-07"),
        (["23570", "--anchor", "1997-02"], "first purchase in 1997-03, so has no history before 1997-02; choose --anchor 1997-04"),
        (["00001", "--anchor", "1998-01", "--history-months", "0"], "--history-months 0"),
        (["00001", "--anchor", "1998-01", "--templates", "/nonexistent-folder"], "has no narrative.j2"),
    ],
)
def test_narrate_user_errors(args: list[str], message: str, monkeypatch, capsys) -> None:
    code, out, err = run_cli(["narrate", *args], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1
