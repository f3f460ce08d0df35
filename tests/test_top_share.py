"""The top-20% flag: at most floor(0.2 n), ranked by score, ties broken by a BLAKE2b hash of
the id, independent of the row order."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from forecaster.top_share import top_count, top_share, tied_at_cutoff


def _ids(n: int) -> np.ndarray:
    return np.array([f"C{i:05d}" for i in range(n)], dtype=object)


@pytest.mark.parametrize("n, k", [(0, 0), (4, 0), (5, 1), (9, 1), (10, 2), (23, 4), (35, 7), (23_502, 4_700)])
def test_constant_scores_flag_exactly_floor_of_a_fifth(n, k):
    flags, cutoff = top_share(np.full(n, 0.3), _ids(n))
    assert top_count(n) == k == int(flags.sum())
    assert cutoff == (0.3 if k else None)


def test_the_flag_does_not_depend_on_the_row_order():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(500), 1)  # 11 distinct values: ties everywhere
    ids = _ids(500)
    flags, _ = top_share(scores, ids)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(500)
        shuffled, _ = top_share(scores[order], ids[order])
        assert set(ids[order][shuffled]) == set(ids[flags])


def test_distinct_scores_flag_the_highest():
    scores = np.linspace(0.0, 1.0, 50)[::-1].copy()
    flags, cutoff = top_share(scores, _ids(50))
    assert flags[:10].all() and not flags[10:].any()
    assert cutoff == scores[9]


def test_ties_at_the_boundary_are_broken_by_the_hash_of_the_id():
    ids = _ids(20)
    scores = np.array([0.9] * 2 + [0.5] * 10 + [0.1] * 8)
    flags, cutoff = top_share(scores, ids)
    tied = list(ids[2:12])
    by_hash = sorted(tied, key=lambda c: hashlib.blake2b(c.encode(), digest_size=8).digest())
    assert cutoff == 0.5 and tied_at_cutoff(scores, cutoff) == 10
    assert set(ids[flags]) == {"C00000", "C00001", *by_hash[:2]}
