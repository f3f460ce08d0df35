"""Running the real `forecaster` entry point inside a test."""

from __future__ import annotations

import sys

from forecaster import cli


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``forecaster *args`` through ``cli.main``."""
    monkeypatch.setattr(sys, "argv", ["forecaster", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err
