"""The chunked reader (forecaster/ingest*.py) gives the in-memory reader's Dataset exactly:
panel, purchase days, cleaning counts, coverage and refusals, whatever the chunk size
(chunks that split a customer, a month or a day, with order ids and without)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from forecaster.batch import days_of
from forecaster.datasets import load_dataset
from forecaster.errors import UserError
from forecaster.ingest_arrays import stable_order
from forecaster.synthetic import write_parquet
from models.rfm import purchase_days
from models.timing import PurchaseDays


def assert_same(memory, chunked) -> None:
    a, b = memory.full_panel, chunked.full_panel
    assert list(a.customer_ids) == list(b.customer_ids) and a.start == b.start
    assert np.array_equal(a.spend, b.spend) and np.array_equal(a.orders, b.orders)  # bit for bit
    assert a.spend.dtype == b.spend.dtype and a.orders.dtype == b.orders.dtype
    assert np.array_equal(a.first_idx, b.first_idx)
    pd.testing.assert_frame_equal(purchase_days(memory.transactions), purchase_days(chunked.transactions),
                                  check_exact=True)
    anchor = memory.panel.last_month
    ids = memory.panel.customer_ids
    pd.testing.assert_frame_equal(PurchaseDays.from_transactions(memory.transactions).features(anchor, ids),
                                  PurchaseDays.from_transactions(chunked.transactions).features(anchor, ids))
    assert chunked.ingested is not None and memory.ingested is None  # the coded purchase days, against the log's
    coded = chunked.purchase_days
    assert (np.diff(coded.code) >= 0).all() and (np.diff(coded.day)[np.diff(coded.code) == 0] > 0).all()
    for at in (anchor, anchor + 1):
        pd.testing.assert_frame_equal(memory.purchase_days.features(at, ids), coded.features(at, ids),
                                      check_exact=True)
        some = ids[len(ids) // 3: 2 * len(ids) // 3 + 1]  # a chunk's view, as the batch takes it
        pd.testing.assert_frame_equal(memory.purchase_days.features(at, some),
                                      days_of(coded, some).features(at, some), check_exact=True)
    assert memory.cleaning == chunked.cleaning
    assert memory.coverage == chunked.coverage and memory.notices == chunked.notices
    assert memory.transaction_count() == chunked.transaction_count()
    assert memory.transaction_count(ids[::2], complete_months=True) == \
        chunked.transaction_count(ids[::2], complete_months=True)
    assert memory.time_range() == chunked.time_range()


_DAYS = pd.date_range("2023-01-01", "2023-05-31", freq="D")
rows = st.tuples(
    st.sampled_from(["a", "b", " b", "c", "d", None]),  # " b" is b once stripped, not a duplicate row
    st.integers(0, len(_DAYS) - 1), st.sampled_from([0, 9 * 3600, 9 * 3600 + 1]),
    st.sampled_from([0.1, 0.2, 0.7, 3.0, 12.5, 0.0, -0.3, -5.0, 1e-3]),
    st.sampled_from(["o1", "o2", "o3", "", None]),
)


def frame_of(drawn: list, with_order: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": [r[0] for r in drawn],
                          "ts": _DAYS[[r[1] for r in drawn]] + pd.to_timedelta([r[2] for r in drawn], unit="s"),
                          "amount": [r[3] for r in drawn]})
    if with_order:
        frame["order_id"] = [r[4] for r in drawn]
    frame.loc[0, ["customer_id", "amount"]] = ["a", 1.0]  # a purchase with an id: the data is loadable
    return frame


@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=60), st.booleans(), st.integers(1, 25), st.booleans())
def test_chunked_equals_in_memory(drawn, with_order, chunk_rows, doubled):
    frame = frame_of(drawn, with_order)
    if doubled:  # exact duplicate rows, which the reader drops, in other chunks
        frame = pd.concat([frame, frame.iloc[::3]], ignore_index=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.parquet"
        frame.to_parquet(path)
        assert_same(load_dataset(str(path)), load_dataset(str(path), chunk_rows=chunk_rows))


def _csv(folder: str, lines: list[str], name: str = "tx.csv") -> Path:
    path = Path(folder) / name
    path.write_text("\n".join(["customer_id,ts,amount,order_id", *lines]) + "\n", encoding="utf-8")
    return path


def test_csv_text_dates_day_first_across_chunks():
    lines = [f"c{i % 5},{(i % 28) + 1:02d}.{(i // 28) % 4 + 1:02d}.2023,\"1,{i:03d}원\",o{i // 2}" for i in range(120)]
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, lines + [" c1,05.03.2023 10:00:00+00:00,500,"])  # a zone, an empty order id
        memory, chunked = load_dataset(str(path)), load_dataset(str(path), chunk_rows=7)
        assert_same(memory, chunked)
        assert memory.cleaning.timezone_rows_converted == 1 and memory.cleaning.notes


def test_folder_of_parquet_files_and_other_columns():
    frame = frame_of([("a", i % 90, 0, 2.5, "o1") for i in range(40)] + [("b", 5, 0, 1.0, "o2")] * 3, True)
    frame["line"] = np.arange(len(frame)) % 2  # rows equal in every role column, not in this one
    with tempfile.TemporaryDirectory() as folder:
        frame.to_parquet(Path(folder) / "one.parquet")
        parts = Path(folder) / "parts"
        parts.mkdir()
        for i, start in enumerate(range(0, len(frame), 10)):
            frame.iloc[start:start + 10].to_parquet(parts / f"p{i}.parquet")
        memory = load_dataset(str(Path(folder) / "one.parquet"))
        assert_same(memory, load_dataset(str(parts)))
        assert memory.cleaning.duplicate_rows_dropped == 1  # ("b", ..., line) repeats once


def test_synthetic_shop_written_in_chunks_reads_as_one_file():
    with tempfile.TemporaryDirectory() as folder:
        rows = write_parquet(900, 4, Path(folder) / "shop", customers_per_chunk=400)
        assert len(list((Path(folder) / "shop").glob("*.parquet"))) == 3
        whole = pd.read_parquet(Path(folder) / "shop")
        assert len(whole) == rows and whole["customer_id"].nunique() <= 900 and whole["order_id"].is_unique
        whole.to_parquet(Path(folder) / "one.parquet")
        assert_same(load_dataset(str(Path(folder) / "one.parquet")),
                    load_dataset(str(Path(folder) / "shop"), chunk_rows=1000))
        again = Path(folder) / "again"
        assert write_parquet(900, 4, again, customers_per_chunk=400) == rows
        pd.testing.assert_frame_equal(pd.read_parquet(again), whole)


@pytest.mark.parametrize("lines, expected", [
    (["a,13.06.2023,10,"] + [f"a,0{i % 9 + 1}.01.2023,1," for i in range(30)] + ["b,06.14.2023,10,"],
     "mixes day/month orders: row 1 (line 2) '13.06.2023' reads only day first, row 32 (line 33)"),
    ([f"a,0{i % 9 + 1}.01.2023,1," for i in range(30)], "no date in the column settles which"),
    (["a,2023-01-05,46,30,"], None),  # a decimal comma, quoted below
    ([f"a,2023-0{i % 6 + 1}-05,{10 + i}," for i in range(200)] + ["b,1900-01-01,5,"],
     "1 row(s) lie far outside the other dates (row 201 (line 202) '1900-01-01')"),
    ([",2023-01-05,10,"] * 30, "has no customer ids"),
    ([f"a,2023-01-0{i % 9 + 1},-10," for i in range(30)], "has no purchase"),
    ([f"a,2023-01-0{i % 9 + 1},10," for i in range(30)] + ["b,2023-01-05,ten,"], "row 31 (line 32): 'ten' is not a number"),
])
def test_refusals_fire_in_chunks(lines, expected):
    if expected is None:
        lines, expected = ['a,2023-01-05,"46,30",'], "row 1 (line 2): '46,30' has a decimal comma"
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, lines)
        for chunk_rows in (None, 4):
            with pytest.raises(UserError, match="^tx.csv: ") as caught:
                load_dataset(str(path), chunk_rows=chunk_rows)
            assert expected in str(caught.value)


def test_data_end_and_date_range_in_chunks():
    lines = [f"a,2023-0{i % 6 + 1}-1{i % 9},10,o{i}" for i in range(60)] + ["a,2023-06-10,10,o1"] * 2
    with tempfile.TemporaryDirectory() as folder:
        path = _csv(folder, lines)
        for options in ({"date_range": "2023-02..2023-05"}, {"data_end": "2023-06-20"}, {"keep_partial_month": True}):
            assert_same(load_dataset(str(path), **options), load_dataset(str(path), chunk_rows=5, **options))
        with pytest.raises(UserError, match=r"row 6 \(line 7\): '2023-06-15' is after --data-end 2023-06-12"):
            load_dataset(str(path), chunk_rows=5, data_end="2023-06-12")


def test_chunk_rows_only_for_files():
    with pytest.raises(UserError, match="--chunk-rows only apply to a CSV/Parquet file"):
        load_dataset("synthetic:50", chunk_rows=10)
    with tempfile.TemporaryDirectory() as folder, pytest.raises(UserError, match="--chunk-rows 0"):
        load_dataset(str(_csv(folder, ["a,2023-01-05,10,"])), chunk_rows=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from([0.1, 0.2, 0.7, 1e16, -1e16, 3.3, 1e-3, 0.0, -0.0])),
                min_size=1, max_size=80), st.booleans())
def test_group_sum_is_pandas_grouped_sum(drawn, sort):
    """ingest_arrays.group_sum gives pandas' own sums bit for bit, whichever path pandas takes."""
    from forecaster.ingest_arrays import group_sum
    group = np.array([g for g, _ in drawn], dtype=np.int64)
    values = np.array([v for _, v in drawn])
    if sort:
        order = np.argsort(group, kind="stable")
        group, values = group[order], values[order]
    keys, sums = group_sum(group, values, whole_sorted=bool((np.diff(group) >= 0).all()))
    expected = pd.Series(values).groupby(group, sort=True).sum()
    assert np.array_equal(keys, expected.index.to_numpy())
    assert np.array_equal(sums.view(np.uint64), expected.to_numpy().view(np.uint64))


@pytest.mark.parametrize("appended", ["duplicates", "new rows", "nothing"])
@pytest.mark.parametrize("chunk_rows", [3, 7, 1000])
def test_sorted_export_sums_as_in_memory(appended, chunk_rows):
    """A file sorted by customer and day: pandas sums each day's amounts without compensation
    (1.0 + 1.0 + 1e16 is 1e16, not 1e16 + 2 as its compensated sum gives); copies of rows
    appended at the end leave it sorted once they are dropped, new rows do not."""
    rows = [(c, "2023-01-0%d 10:00:%02d" % (1 + d // 3, d), 1e16 if d % 3 == 2 else 1.0)
            for c in ("a", "b", "c") for d in range(9)]
    rows += [("b", "2023-02-10 10:00:00", -0.3), ("b", "2023-02-10 11:00:00", 0.1), ("b", "2023-02-10 12:00:00", 0.2)]
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).sort_values(["customer_id", "ts"], kind="stable")
    frame["ts"] = pd.to_datetime(frame["ts"])
    if appended == "duplicates":
        frame = pd.concat([frame, frame.iloc[[0, 10, 20]]], ignore_index=True)
    elif appended == "new rows":
        frame = pd.concat([frame, frame.iloc[[0]].assign(amount=0.7)], ignore_index=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.parquet"
        frame.to_parquet(path)
        memory, chunked = load_dataset(str(path)), load_dataset(str(path), chunk_rows=chunk_rows)
        assert_same(memory, chunked)
        assert memory.cleaning.duplicate_rows_dropped == (3 if appended == "duplicates" else 0)


@pytest.mark.parametrize("orders", [[1, 2, None, 2, 7] * 8, ["x1", " x1", "", None, "x2"] * 8, [3, 3, 1, 2, 5] * 8])
def test_order_ids_of_each_type(orders):
    """Integer order ids are kept as integers (the same orders as their text); a column with
    missing values or text goes through order_ids as in memory."""
    frame = frame_of([("a", i % 50, 0, 1.5, None) for i in range(40)], False)
    frame["order_id"] = pd.array(orders, dtype="Int64") if isinstance(orders[0], int) and None in orders else orders
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.parquet"
        frame.to_parquet(path)
        assert_same(load_dataset(str(path)), load_dataset(str(path), chunk_rows=6))


def test_zero_and_negative_zero_amounts_are_one_row_twice():
    """pandas' duplicated takes 0.0 and -0.0 as equal; so does the chunked reader's digest."""
    frame = frame_of([("a", 3, 0, 2.0, None), ("b", 4, 0, 0.0, None), ("b", 4, 0, -0.0, None), ("c", 9, 0, 1.0, None)], False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tx.parquet"
        frame.to_parquet(path)
        memory = load_dataset(str(path))
        assert memory.cleaning.duplicate_rows_dropped == 1
        assert_same(memory, load_dataset(str(path), chunk_rows=2))


@pytest.mark.parametrize("high", [1, 2**8, 2**16 - 1, 2**16, 2**40])
def test_stable_order_is_numpys_stable_argsort(high):
    """Every path of ingest_arrays.stable_order (16-bit radix, packed sort, plain argsort)
    orders ties by position, as np.argsort(kind="stable") does."""
    rng = np.random.default_rng(high)
    for n in (0, 1, 7, 5_000):
        key = rng.integers(0, high + 1, n).astype(np.int64)
        assert np.array_equal(stable_order(key), np.argsort(key, kind="stable"))
