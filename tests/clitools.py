"""Running the real `forecaster` entry point inside a test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def train_once(folder: Path, data: str) -> Path:
    """``forecaster train --data DATA --out FOLDER`` for a module-scoped fixture (no
    monkeypatch fixture there); fails the test if training exits with an error."""
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["forecaster", "train", "--data", data, "--out", str(folder)])
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code, f"train exited with {exc.code}"
    finally:
        mp.undo()
    return folder
