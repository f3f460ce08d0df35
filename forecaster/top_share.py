"""The top-20% target flag: at most ``floor(0.2 · n)`` customers, whatever the scores.

Customers are ranked by purchase probability, highest first; customers with the same
probability are ordered by an 8-byte BLAKE2b hash of their id (then by the id), so the
flag does not depend on row order, is the same on every machine and run, and does not
favour low ids. ``floor`` rather than ``round`` keeps the share at or below 20% for every
n (with fewer than 5 customers nobody is flagged). With near-constant scores a cut-off
by value (``p >= 80th percentile``) flagged 74% of customers; this rule never does.
"""

from __future__ import annotations

import hashlib

import numpy as np

TOP_SHARE = 0.2
RULE = ("상위 20%는 구매 확률이 높은 순으로 고객 수의 20%(소수점 아래 버림)까지이며, 확률이 같은 고객은 "
        "고객 ID의 BLAKE2b 해시 순서로 정합니다.")


def top_count(n: int, share: float = TOP_SHARE) -> int:
    """How many of ``n`` customers are flagged (the epsilon absorbs 0.2·n's binary rounding)."""
    return int(np.floor(share * n + 1e-9))


def tie_keys(customer_ids: np.ndarray) -> np.ndarray:
    """A stable 64-bit key per id (only the customers tied at the boundary need one)."""
    return np.array([int.from_bytes(hashlib.blake2b(str(c).encode("utf-8"), digest_size=8).digest(), "big")
                     for c in customer_ids], dtype=np.uint64)


def top_cutoff(scores: np.ndarray, share: float = TOP_SHARE) -> tuple[float | None, int]:
    """(the lowest flagged score, None when nobody is flagged; how many of the customers at
    exactly that score are flagged: :func:`tied_chosen` picks them)."""
    n, k = len(scores), top_count(len(scores), share)
    if k == 0:
        return None, 0
    cutoff = float(np.partition(scores, n - k)[n - k])  # the k-th highest score
    return cutoff, k - int((scores > cutoff).sum())


def tied_chosen(tied_ids: np.ndarray, slots: int) -> np.ndarray:
    """Which of the customers at the cut-off score are flagged: the first ``slots`` by the
    hash of their id, then the id (module doc)."""
    chosen = np.zeros(len(tied_ids), dtype=bool)
    chosen[np.lexsort((tied_ids.astype(str), tie_keys(tied_ids)))[:slots]] = True
    return chosen


def top_share(scores: np.ndarray, customer_ids: np.ndarray, share: float = TOP_SHARE) -> tuple[np.ndarray, float | None]:
    """(flag per customer, the lowest flagged score or None when nobody is flagged)."""
    scores = np.asarray(scores, dtype=float)
    flags = np.zeros(len(scores), dtype=bool)
    cutoff, slots = top_cutoff(scores, share)
    if cutoff is None:
        return flags, None
    flags[scores > cutoff] = True
    tied = np.flatnonzero(scores == cutoff)
    flags[tied[tied_chosen(np.asarray(customer_ids)[tied], slots)]] = True
    return flags, cutoff


def tied_at_cutoff(scores: np.ndarray, cutoff: float | None) -> int:
    """How many customers share the boundary score (more than one: the hash decided some)."""
    return 0 if cutoff is None else int((np.asarray(scores) == cutoff).sum())
