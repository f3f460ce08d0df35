"""Work on both cores for the chunked reader: numpy's sorts, Arrow's kernels and pandas'
Arrow-backed string methods release the GIL, so two threads reduce two chunks at once."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

THREADS = 2  # bench/scale.py, 1M customers on the idle 2-core machine: the panel 8.9 s on one thread, 6.3 s on two


def ordered(fn: Callable[[T], R], items: Iterable[T], threads: int = THREADS) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, results in order, at most ``threads`` items
    taken from ``items`` and not yet yielded (memory: that many chunks at once, not all). An
    item's error is raised when its turn comes, as ``map`` would raise it; items after it are
    not started once it is seen."""
    if threads <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque[Future] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
