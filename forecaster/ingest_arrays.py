"""Array kernels of the chunked reader (:mod:`forecaster.ingest`): integer codes for text
columns, a 64-bit hash of text for the spill's partitions, exact duplicate rows, and
pandas' grouped float sum reproduced bit for bit on integer group keys.

No per-row Python object is made: text stays in Arrow buffers until a column is coded,
and only each distinct customer id becomes a Python string (the panel's ids).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.core.groupby.ops import BaseGrouper

PANDAS_REDUCEAT = hasattr(BaseGrouper, "_reduceat_aggregate")  # sorted keys: np.add.reduceat
_MIX = np.uint64(0x9E3779B97F4A7C15)
_WEIGHTS = [np.uint64((2 * k + 1) * 0x9E3779B97F4A7C15 % 2**64) for k in range(64)]  # odd: no part lost


def sorted_codes(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(per row, the rank of its value among the distinct values; the distinct values sorted
    as Python sorts str, i.e. by code point) -- ``pd.factorize(values, sort=True)`` with the
    values left in Arrow (no Python string per row). No nulls."""
    encoded = pc.dictionary_encode(text)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks() if encoded.num_chunks != 1 else encoded.chunk(0)
    order = pc.sort_indices(encoded.dictionary).to_numpy()  # UTF-8 byte order = code point order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[encoded.indices.to_numpy(zero_copy_only=False)], encoded.dictionary.take(pa.array(order))


def dense_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes 0..k-1 for an integer column (equal values, equal codes)."""
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def text_hash(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string's UTF-8 bytes, the same in every chunk: which spill
    file a customer's rows go to (hash the distinct values, then take by code). No nulls."""
    values = values.cast(pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
    raw = values.buffers()[2]
    lengths = np.diff(offsets)
    data = (np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8))[offsets[0]:offsets[-1]]
    position = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1] - offsets[0], lengths)
    weights = np.asarray(_WEIGHTS, dtype=np.uint64)[position % len(_WEIGHTS)]
    with np.errstate(over="ignore"):
        mixed = (data.astype(np.uint64) + np.uint64(1)) * weights * (position.astype(np.uint64) + np.uint64(1))
        starts = np.minimum(offsets[:-1] - offsets[0], max(len(mixed) - 1, 0))
        sums = np.add.reduceat(mixed, starts) if len(mixed) else np.zeros(len(lengths), np.uint64)
        sums = np.where(lengths > 0, sums, np.uint64(0)) + lengths.astype(np.uint64) * _MIX
        sums ^= sums >> np.uint64(29)
        sums *= _MIX
        sums ^= sums >> np.uint64(32)
    return sums


def duplicated_rows(columns: list[np.ndarray]) -> np.ndarray:
    """``DataFrame.duplicated`` (later copies True) over integer / float key columns, exactly:
    a 64-bit digest finds the candidates (almost always none), compared in full."""
    n = len(columns[0]) if columns else 0
    digest = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for weight, values in zip(_WEIGHTS, columns):
            digest += _bits(values) * weight
    ordered = np.sort(digest)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    dup = np.zeros(n, dtype=bool)
    if len(repeated):
        candidate = np.isin(digest, repeated)
        frame = pd.DataFrame({str(i): _bits(values[candidate]) for i, values in enumerate(columns)})
        dup[candidate] = frame.duplicated().to_numpy()
    return dup


def _bits(values: np.ndarray) -> np.ndarray:
    """The column as uint64 equal exactly when the values are equal (0.0 and -0.0 equal)."""
    if values.dtype.kind == "f":
        return (values.astype(np.float64) + 0.0).view(np.uint64)
    if values.dtype.kind == "M":
        return values.view(np.int64).astype(np.uint64)
    return values.astype(np.int64).astype(np.uint64)


def group_sum(group: np.ndarray, values: np.ndarray, whole_sorted: bool) -> tuple[np.ndarray, np.ndarray]:
    """(distinct groups sorted, sums) equal bit for bit to what
    ``frame.groupby(key, sort=True).sum()`` gives for these rows inside the whole data:
    pandas (from 3.0) sums the groups of a frame whose keys come sorted with
    ``np.add.reduceat`` and otherwise with a compensated (Kahan) sum in row order.
    ``whole_sorted`` says whether the whole data's keys come sorted (a part of it may be
    sorted when the whole is not); ``group`` must keep the whole data's key order."""
    if whole_sorted and PANDAS_REDUCEAT:
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.zeros(0, np.intp)
        return group[starts], np.add.reduceat(values, starts) if len(group) else np.zeros(0)
    order = stable_order(group)
    keys = group[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.intp)
    lengths = np.diff(np.r_[starts, len(keys)])
    return keys[starts], _kahan(values[order], starts, lengths)


def stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for non-negative int64 keys: keys below 2**16 (months,
    lengths) through numpy's radix sort of 16-bit integers (6x faster than the packed sort on
    10M months), others through numpy's (vectorised, unstable) sort of key and position
    packed into one int64 when they fit."""
    n = len(key)
    if n == 0 or key.min() < 0:
        return np.argsort(key, kind="stable")
    top = int(key.max())
    if top < 2**16:
        return np.argsort(key.astype(np.uint16), kind="stable")
    if top >= (2**62) // max(n, 1):
        return np.argsort(key, kind="stable")
    return np.sort(key * n + np.arange(n, dtype=np.int64)) % n


def days_months(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(days, months) since 1970-01-01 of datetime64[us] values, as ``astype`` floors them,
    the months through a table of the days spanned (numpy's calendar once per distinct day)."""
    day = np.floor_divide(ts.view(np.int64), 86_400_000_000)
    if not len(day):
        return day, day.copy()
    low = int(day.min())
    table = np.arange(low, int(day.max()) + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return day, table[day - low]


def _kahan(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """pandas' ``group_sum`` over contiguous groups, every group at once: step k adds the
    k-th value of each group that has one."""
    by_length = stable_order(lengths.max(initial=0) - lengths)  # the groups still running at step k: a prefix
    first, steps = starts[by_length], lengths[by_length]
    total, compensation = x[first] + 0.0, np.zeros(len(first))  # step 0: 0.0 + x, compensation 0
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, int(lengths.max(initial=0))):
            n = int(np.searchsorted(-steps, -k, side="left"))  # groups with more than k values
            y = x[first[:n] + k] - compensation[:n]
            t = total[:n] + y
            c = (t - total[:n]) - y
            compensation[:n] = np.where(np.isfinite(c), c, 0.0)
            total[:n] = t
    sums = np.empty(len(first))
    sums[by_length] = total
    return sums
