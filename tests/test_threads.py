"""forecaster.threads.ordered: map's results and errors, in order, with bounded look-ahead."""

import threading
import time

import pytest

from forecaster.threads import ordered


def test_results_come_in_order_whatever_finishes_first():
    def slow_first(k: int) -> int:
        time.sleep(0.05 if k % 2 == 0 else 0)  # even items finish after the odd one beside them
        return k * k

    assert list(ordered(slow_first, range(9), threads=2)) == [k * k for k in range(9)]


def test_no_more_items_taken_than_threads_ahead_of_the_consumer():
    taken, peak, lock = [0], [0], threading.Lock()

    def items():
        for k in range(20):
            with lock:
                taken[0] += 1
            yield k

    consumed = 0
    for _ in ordered(lambda k: k, items(), threads=3):
        consumed += 1
        peak[0] = max(peak[0], taken[0] - consumed)
    assert consumed == 20
    assert peak[0] <= 2  # at most `threads` taken and not yet yielded, one of them just yielded


def test_the_first_error_in_order_is_raised_and_later_items_are_not_started():
    started = []

    def fail_on_odd(k: int) -> int:
        started.append(k)
        if k in (3, 5):
            time.sleep(0.05 if k == 3 else 0)  # both in flight: 5 fails first in time, 3 first in order
            raise ValueError(f"item {k}")
        return k

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for value in ordered(fail_on_odd, range(100), threads=4):
            got.append(value)
    assert got == [0, 1, 2]
    assert max(started) < 10


def test_one_thread_is_plain_map():
    assert list(ordered(str, [3, 1, 2], threads=1)) == ["3", "1", "2"]
