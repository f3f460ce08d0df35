"""Partial months: a trailing month the export covers only in part is left out of the panel
(every customer kept), announced, and never reaches a feature; --keep-partial-month and
--data-end override the detector; a small shop whose last order fell on the 28th is complete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster import pipeline
from forecaster.datasets import Cleaning, Dataset, load_dataset
from forecaster.errors import UserError
from narrator.panel import NOT_ACQUIRED

CUT_OFF_ROWS = pd.DataFrame({  # an export that ran until 04:00 on 1 July 1998
    "customer_id": ["00001", "00002", "99999"],
    "ts": pd.to_datetime(["1998-07-01 04:00", "1998-07-01 02:10", "1998-07-01 03:00"]),
    "amount": [10.0, 20.0, 5.0],
})


@pytest.fixture(scope="module")
def cdnow():
    return load_dataset("cdnow")


@pytest.fixture(scope="module")
def cut_off_csv(cdnow, tmp_path_factory) -> str:
    tx = pd.concat([cdnow.transactions[["customer_id", "ts", "amount"]], CUT_OFF_ROWS], ignore_index=True)
    path = tmp_path_factory.mktemp("partial") / "cdnow_cut_off.csv"
    tx.assign(ts=tx["ts"].dt.strftime("%Y-%m-%d %H:%M")).to_csv(path, index=False)
    return str(path)


def dataset(tx: pd.DataFrame, **options) -> Dataset:
    return Dataset("test", tx.reset_index(drop=True), "KRW", Cleaning(rows_read=len(tx)), **options)


def test_cdnow_and_synthetic_are_complete(cdnow):
    assert cdnow.coverage.last.partial is False and cdnow.coverage.first.partial is False
    assert cdnow.coverage.last.share == 1.0  # date-only: the last day, 30 June, counts as covered
    assert cdnow.notices == () and cdnow.panel is cdnow.full_panel
    synthetic = load_dataset("synthetic:800")
    assert synthetic.coverage.last.partial is False and synthetic.notices == ()


def test_a_month_cut_off_hours_in_is_dropped_and_announced(cdnow, cut_off_csv):
    data = load_dataset(cut_off_csv, currency="USD")
    assert str(data.full_panel.last_month) == "1998-07" and str(data.panel.last_month) == "1998-06"
    assert str(data.coverage.dropped_month) == "1998-07"
    [notice] = data.notices
    assert notice.startswith("참고: 마지막 달 1998년 7월은 7월 1일 04:00까지만 기록되어 있어(한 달의 0.5%) "
                             "불완전한 달로 보고 패널에서 제외했습니다 (거래 3행, 구매 고객 3명;")
    assert "--keep-partial-month" in notice and "--data-end" in notice

def test_the_cut_off_panel_is_the_complete_panel_plus_not_acquired_rows(cdnow):
    data = dataset(pd.concat([cdnow.transactions, CUT_OFF_ROWS]))
    # every customer stays: one who bought only in the dropped month is a not-acquired row
    panel = data.panel
    assert panel.customer_ids.size == 23_571 and panel.first_idx[panel.row_of("99999")] == NOT_ACQUIRED
    rows = [panel.row_of(c) for c in cdnow.panel.customer_ids]
    assert np.array_equal(panel.spend[rows], cdnow.panel.spend)
    assert np.array_equal(panel.orders[rows], cdnow.panel.orders)
    assert np.array_equal(panel.first_idx[rows], cdnow.panel.first_idx)


def test_default_anchors_follow_the_complete_months(cut_off_csv):
    panel = load_dataset(cut_off_csv, currency="USD").panel
    assert str(pipeline.anchors_with_outcome(panel)[-1]) == "1998-06"  # test/validation months
    assert str(panel.last_month + 1) == "1998-07"  # batch's default anchor: the partial month


def test_keep_partial_month_keeps_it_and_says_so(cut_off_csv):
    data = load_dataset(cut_off_csv, currency="USD", keep_partial_month=True)
    assert str(data.panel.last_month) == "1998-07" and data.coverage.dropped_month is None
    [notice] = data.notices
    assert "불완전해 보이지만 --keep-partial-month에 따라 온전한 달로 보고 포함했습니다" in notice


def synthetic_with_cut_off_month() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(synthetic:800 plus rows in the first hours of 2025-01, the same without them)."""
    tx = load_dataset("synthetic:800").transactions
    extra = tx.groupby("customer_id").tail(1).head(40).assign(
        ts=pd.Timestamp("2025-01-01 03:00"), order_id=lambda f: f["order_id"] + 10**6)
    newcomer = extra.head(1).assign(customer_id="new-customer")
    return pd.concat([tx, extra, newcomer], ignore_index=True), tx


def test_partial_rows_never_reach_a_feature():
    with_cut_off, without = synthetic_with_cut_off_month()
    partial_data, clean_data = dataset(with_cut_off), dataset(without)
    partial, clean = partial_data.panel, clean_data.panel
    assert partial.n_months == clean.n_months == 36
    anchor = partial.last_month + 1  # batch's default anchor
    assert anchor == clean.last_month + 1 == pd.Period("2025-01", "M")
    scheme = pipeline.fit_scheme(clean, anchor)
    assert pipeline.fit_scheme(partial, anchor) == scheme
    forecast = pipeline.empirical_forecast_fn(scheme)
    train_anchors = pipeline.anchors_with_outcome(partial)
    assert train_anchors == pipeline.anchors_with_outcome(clean)
    for anchors in ([anchor], train_anchors[-3:]):
        rows_partial, _ = pipeline.build_rows(partial, anchors, scheme, forecast, with_btyd=False,
                                              transactions=partial_data.transactions)
        rows_clean, _ = pipeline.build_rows(clean, anchors, scheme, forecast, with_btyd=False,
                                            transactions=clean_data.transactions)
        pd.testing.assert_frame_equal(rows_partial, rows_clean, check_exact=True)
        assert (pd.util.hash_pandas_object(rows_partial).to_numpy()
                == pd.util.hash_pandas_object(rows_clean).to_numpy()).all()


# --- the small shop, the leading month, --data-end, too little to judge ------------------


def small_shop(last_day: str, first_day: str = "2023-01-01") -> pd.DataFrame:
    """About 0.33 orders a day at 14:00, the last one on ``last_day``."""
    ts = pd.date_range(f"{first_day} 14:00", f"{last_day} 14:00", freq="3D").union([pd.Timestamp(f"{last_day} 14:00")])
    return pd.DataFrame({"customer_id": [f"c{i % 25}" for i in range(len(ts))], "ts": ts,
                         "amount": np.full(len(ts), 15_000.0)})


def test_a_small_shop_whose_last_order_fell_on_the_28th_is_complete():
    data = dataset(small_shop("2023-06-28"))
    assert data.coverage.last.partial is False and data.notices == ()
    assert str(data.panel.last_month) == "2023-06"


def test_the_same_shop_silent_from_the_5th_is_partial():
    data = dataset(small_shop("2023-06-05"))
    assert data.coverage.last.partial is True and str(data.panel.last_month) == "2023-05"


def test_a_leading_partial_month_is_reported_and_kept():
    tx = small_shop("2023-06-30")
    busy = pd.concat([tx.assign(customer_id=tx["customer_id"] + f"-{k}") for k in range(10)])  # 3.3 a day
    data = dataset(busy[busy["ts"] >= "2023-01-20"])
    assert data.coverage.first.partial is True and str(data.panel.first_month) == "2023-01"
    assert data.coverage.last.partial is False
    [notice] = data.notices
    assert notice == ("참고: 첫 달 2023년 1월은 1월 22일 14:00부터 기록되어 있어(한 달의 30.4%) 불완전한 달일 수 "
                      "있지만, 첫 구매가 몰리는 달이라 그대로 두었습니다.")
    assert dataset(busy).coverage.first.partial is False


def test_data_end_decides_instead_of_the_detector():
    tx = small_shop("2023-06-28")
    assert dataset(tx, data_end=pd.Timestamp("2023-06-29")).coverage.last.partial is True
    assert dataset(tx, data_end=pd.Timestamp("2023-06-30")).coverage.last.partial is False
    assert dataset(tx, data_end=pd.Timestamp("2023-07-10")).coverage.last.partial is False
    cut = dataset(small_shop("2023-06-05"), data_end=pd.Timestamp("2023-06-30"))
    assert cut.coverage.last.partial is False and str(cut.panel.last_month) == "2023-06"
    stated = dataset(tx, data_end=pd.Timestamp("2023-06-29"))
    assert "--data-end에 따라 불완전한 달로 보고 패널에서 제외했습니다" in stated.notices[0]
    assert "6월 29일까지만 기록되어 있어(한 달의 96.7%)" in stated.notices[0]


def test_data_end_on_cdnow(cdnow):
    assert load_dataset("cdnow", data_end="1998-06-30").notices == ()
    clipped = load_dataset("cdnow", date_range="..1998-06-20")  # dozens of orders a day, then 10 silent days
    assert clipped.coverage.last.partial is True and clipped.coverage.last.decided_by == "activity"
    assert str(clipped.panel.last_month) == "1998-05"
    stated = load_dataset("cdnow", data_end="1998-06-20", date_range="..1998-06-20")
    assert stated.coverage.last.decided_by == "data-end" and str(stated.panel.last_month) == "1998-05"
    assert load_dataset("cdnow", data_end="1998-07-31").coverage.last.partial is False
    with pytest.raises(UserError, match=r"cdnow: column 'ts', row \d+: '1998-06-2\d 00:00:00' is after --data-end"):
        load_dataset("cdnow", data_end="1998-06-20")


def test_one_month_or_too_few_orders_is_said_not_guessed():
    one = dataset(small_shop("2023-01-25", first_day="2023-01-01"))
    assert one.coverage.last.partial is None
    assert one.notices == ("참고: 데이터가 2023년 1월 한 달뿐이라 그 달이 온전히 기록되었는지 판단할 수 없어 그대로 "
                           "사용합니다 (내보낸 끝 날짜를 알면 --data-end).",)
    few = dataset(small_shop("2023-02-01", first_day="2023-01-01"))  # 12 orders, then one on 1 February
    assert few.coverage.last.partial is None and str(few.panel.last_month) == "2023-02"
    assert "앞선 달의 주문이 적어 불완전한 달인지 판단할 수 없어 그대로 사용합니다" in few.notices[0]
