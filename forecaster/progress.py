"""The one progress hook of every run: what loading decided, the steps of a long run, the
LLM stage's bar and its summary, and a trained model's warnings all go through it.

A hook is any callable taking an :class:`Event`. The default prints to stderr with rich (the
command line uses it as it is); a notebook replaces it, or silences it with ``None``::

    import forecaster as fc
    fc.set_progress(None)                      # silence
    fc.set_progress(lambda e: print(e.message) if e.kind != "advance" else None)
    with fc.progress_hook(my_tqdm_hook): ...   # for one block only

Kinds (:data:`KINDS`): ``notice`` (one Korean line on what was decided, e.g. a partial month
left out), ``warning`` (a result to distrust, e.g. a degenerate model), ``step`` (a stage
of a long run begins), ``summary`` (a table of figures as text, e.g. the LLM usage), and for
a counted stage ``start`` (``total`` known), ``advance`` (``done`` so far) and ``end``.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

KINDS = ("notice", "warning", "step", "summary", "start", "advance", "end")


@dataclass(frozen=True)
class Event:
    """One thing a run reports: ``kind`` (see :data:`KINDS`), a Korean ``message``, and for
    a counted stage ``done`` of ``total``."""

    kind: str
    message: str = ""
    done: int = 0
    total: int | None = None
    table: Any = field(default=None, compare=False)  # a ``summary``'s rich table (``message`` is its text)


Hook = Callable[[Event], None]


class RichHook:
    """The default hook: notices plain, steps dim, warnings bold red, counted stages as a
    transient bar, all on stderr."""

    STYLES = {"step": "dim", "warning": "bold red"}

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bar: Progress | None = None
        self._task = None

    def __call__(self, event: Event) -> None:
        if event.kind == "start":
            self._bar = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(event.message, total=event.total)
        elif event.kind == "advance":
            if self._bar is not None:
                self._bar.update(self._task, completed=event.done)
        elif event.kind == "end":
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
        elif event.table is not None:
            self.console.print(event.table)
        else:
            self.console.print(event.message, style=self.STYLES.get(event.kind), soft_wrap=True,
                               markup=False, highlight=False)


_hook: Hook | None = RichHook()


def set_progress(hook: Hook | None) -> Hook | None:
    """Send every later run's events to ``hook`` (``None``: silence them); returns the hook
    it replaces, so that a caller can put it back."""
    global _hook
    previous, _hook = _hook, hook
    return previous


@contextmanager
def progress_hook(hook: Hook | None) -> Iterator[None]:
    """``hook`` for the runs inside the ``with`` block only."""
    previous = set_progress(hook)
    try:
        yield
    finally:
        set_progress(previous)


def report(kind: str, message: str = "", done: int = 0, total: int | None = None, table: Any = None) -> None:
    """Send one event to the current hook (nothing when silenced)."""
    if _hook is not None:
        _hook(Event(kind, message, done, total, table))


def notice(message: str) -> None:
    report("notice", message)


def warning(message: str) -> None:
    report("warning", message)


def step(message: str) -> None:
    report("step", message)


def summary(table: Any) -> None:
    """A rich table of figures; the event's ``message`` is its plain text."""
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    report("summary", console.export_text().rstrip(), table=table)


@contextmanager
def counted(message: str, total: int) -> Iterator[Callable[[int], None]]:
    """A counted stage: ``start``, then ``advance`` as the yielded function is called with
    the number done so far, then ``end`` (also when the stage fails)."""
    report("start", message, 0, total)
    try:
        yield lambda done: report("advance", message, done, total)
    finally:
        report("end", message, total, total)
