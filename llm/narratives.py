"""Each anchor narrated once per run: the dry run's narratives kept for the run that follows.

A run narrates a whole :class:`HistoryBatch` (one anchor) before it asks: the dry run to price
it, provider batch jobs to write its requests, the live run to ask. The batches each step is
handed are made anew (``panel.histories(anchor)``), so :class:`NarrativeMemo` knows a batch by
what its narratives are made of (every per-customer array but the id, and the anchor's
window), not by the object. The live run takes its anchor out of the memo, so the narratives
of an anchor already asked are not kept; a dry run with no live run after it (refused, or
over budget) leaves them until the forecaster goes. At most :data:`KEEP_ROWS` rows are kept:
a run larger than that narrates its later anchors again rather than hold them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable

import numpy as np
import pandas as pd

from narrator.panel import HistoryBatch

RenderDistinct = Callable[[HistoryBatch], tuple[list[str], np.ndarray]]
# Rows whose narratives are kept at most: CDNOW's evaluate keeps 376,597 rows (173,159 distinct
# texts, 98 MB); beyond this a later step narrates its batch again instead of holding it.
KEEP_ROWS = 2_000_000


@dataclasses.dataclass(frozen=True)
class Narrated:
    """A batch's narratives: each distinct one once (``texts``, in order of first appearance)
    and for every row the index of its own (``codes``)."""

    texts: list[str]
    codes: np.ndarray

    def groups(self) -> list[np.ndarray]:
        """The rows asking each text, each ascending, as the run groups its prompts (made only
        when asked: a dry run needs the texts alone)."""
        return groups_of(self.codes)


def groups_of(codes: np.ndarray) -> list[np.ndarray]:
    """The rows of each code, codes numbered by first appearance, each group ascending."""
    if len(codes) == 0:
        return []
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def narrated_texts(narratives: list[str]) -> Narrated:
    """Narratives already made (one per row) grouped as :class:`Narrated`. The system prompt
    is the same for every customer of a run, so equal narratives are equal requests, and
    grouping the strings spares hashing the whole messages per customer."""
    codes, texts = pd.factorize(np.asarray(narratives, dtype=object))  # numbered by first appearance
    return Narrated(texts.tolist(), codes)


def batch_digest(batch: HistoryBatch) -> bytes:
    """What the batch's narratives are made of: every field but the customer ids."""
    digest = hashlib.blake2b(digest_size=20)
    for f in dataclasses.fields(batch):
        value = getattr(batch, f.name)
        if f.name == "customer_ids":
            continue
        if isinstance(value, np.ndarray):
            digest.update(f"{f.name}:{value.dtype.str}:{value.shape}".encode())
            if value.dtype == object:
                digest.update("\x1f".join(map(repr, value.ravel().tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(value).view(np.uint8).data)
        else:
            digest.update(f"{f.name}={value!r};".encode())
    return digest.digest()


class NarrativeMemo:
    """The narratives of the batches a run has narrated, until its live run takes them."""

    def __init__(self, render_distinct: RenderDistinct, keep_rows: int = KEEP_ROWS) -> None:
        self._render = render_distinct
        self._keep_rows = keep_rows
        self._kept: dict[bytes, Narrated] = {}

    def narrated(self, batch: HistoryBatch, keep: bool) -> Narrated:
        """``batch``'s narratives, rendered only if no earlier step of the run did; kept for a
        later step when ``keep`` (within ``keep_rows``), else let go (the live run, the last
        to need them)."""
        key = batch_digest(batch)
        found = self._kept.get(key) if keep else self._kept.pop(key, None)
        if found is None:
            found = Narrated(*self._render(batch))
            if keep and self._rows_kept() + len(found.codes) <= self._keep_rows:
                self._kept[key] = found
        return found

    def _rows_kept(self) -> int:
        return sum(len(narrated.codes) for narrated in self._kept.values())
