"""An explanation as the plain text the terminal shows, for golden and content tests."""

from __future__ import annotations

import io

from rich.console import Console

from forecaster.explain.core import Explanation
from forecaster.explain.render import render


def render_text(ex: Explanation, width: int = 80) -> str:
    """The explanation as plain text (no colour) at ``width`` columns, without the spaces
    rich pads table rows with."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None, force_terminal=False,
                      highlight=False, emoji=False, markup=False)
    render(ex, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
