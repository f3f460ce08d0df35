"""Imports point one way: ``prompts`` <- ``narrator`` <- ``structurer`` <- (``llm``, ``models``)
<- ``forecaster``, and ``llm`` and ``models`` never import each other.

Every module of the six packages is parsed with :mod:`ast` (nothing is imported), so an
import inside a function or under ``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each package may import besides itself; anything else of the six is against the flow.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "prompts": frozenset(),
    "narrator": frozenset({"prompts"}),
    "structurer": frozenset({"prompts", "narrator"}),
    "llm": frozenset({"prompts", "narrator", "structurer"}),
    "models": frozenset({"prompts", "narrator", "structurer"}),
    "forecaster": frozenset({"prompts", "narrator", "structurer", "llm", "models"}),
}
PACKAGES = tuple(MAY_IMPORT)
# calls that reach a package by its name in a string: they count as importing it
STRING_IMPORTS = frozenset({"import_module", "__import__", "files", "PackageLoader"})


def module_name(path: Path) -> str:
    """``forecaster/report/core.py`` -> ``forecaster.report.core``; a package's
    ``__init__.py`` is the package itself."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source``, relative ones resolved
    against ``module``, and of every :data:`STRING_IMPORTS` call naming a module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # a package's own module counts as one level; a plain module's parent is the first
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
        elif isinstance(node, ast.Call) and _call_name(node) in STRING_IMPORTS and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value))
    return found


def _call_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """``module:line imports target`` for every import in ``source`` against :data:`MAY_IMPORT`."""
    own = module.split(".")[0]
    bad = []
    for line, target in imported_modules(module, source, is_package):
        top = target.split(".")[0]
        if top in MAY_IMPORT and top != own and top not in MAY_IMPORT[own]:
            bad.append(f"{module}:{line} imports {target}")
    return bad


def project_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_every_package_is_walked():
    names = {module_name(path) for path in project_modules()}
    assert set(PACKAGES) <= names  # each package's __init__.py
    assert {"forecaster.report.core", "forecaster.explain.core", "llm.prompt", "models.xgb"} <= names


def test_no_import_goes_against_the_flow():
    bad = []
    for path in project_modules():
        bad += violations(module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")
    assert bad == []


@pytest.mark.parametrize(("module", "source"), [
    ("models.report", "from forecaster.evaluation import EvaluationSetup\n"),
    ("llm.client", "def f():\n    import forecaster.errors\n"),
    ("models.evaluate", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from llm.ledger import Ledger\n"),
    ("llm.forecaster", "from models import xgb\n"),
    ("prompts", "import narrator.korean\n"),
    ("narrator.panel", "from structurer.schema import BucketScheme\n"),
    ("structurer.features", "from ..llm import client\n"),
    ("narrator.narrative", "from importlib import resources\nfolder = resources.files('llm')\n"),
    ("models.btyd", "import importlib\nmod = importlib.import_module('forecaster.errors')\n"),
])
def test_an_upward_import_is_caught(module, source):
    assert len(violations(module, source)) == 1


@pytest.mark.parametrize(("module", "source"), [
    ("forecaster.report.core", "from models.evaluate import EvaluationResult\nimport llm.client\n"),
    ("models.xgb", "from structurer.schema import BucketScheme\nimport xgboost\n"),
    ("llm.prompt", "from prompts import SYSTEM_TEMPLATE\nfrom .errors import LLMError\n"),
    ("narrator.narrative", "from prompts import NARRATIVE_TEMPLATE\nfrom narrator.korean import josa\n"),
])
def test_a_downward_or_outside_import_passes(module, source):
    assert violations(module, source) == []


def test_relative_imports_are_resolved():
    assert imported_modules("forecaster.report.core", "from . import plots\nfrom ..labels import x\n") == [
        (1, "forecaster.report"), (2, "forecaster.labels")]
    assert imported_modules("forecaster.report", "from .core import write_report\n", is_package=True) == [
        (1, "forecaster.report.core")]


# Inside the application the command line sits on top of the library: nothing the Python API
# reaches (``forecaster.api`` and what it imports) may import a verb or the CLI.
COMMAND_LINE = ("forecaster.cli", "forecaster.verbs")


def command_line_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """``module:line imports target`` for every import of the command line by a library module."""
    if module.startswith(COMMAND_LINE):
        return []
    return [f"{module}:{line} imports {target}" for line, target in imported_modules(module, source, is_package)
            if target.startswith(COMMAND_LINE)]


def test_the_library_never_imports_the_command_line():
    bad = []
    for path in sorted((ROOT / "forecaster").rglob("*.py")):
        bad += command_line_imports(module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py")
    assert bad == []


def test_a_library_import_of_a_verb_is_caught():
    assert len(command_line_imports("forecaster.api.model", "def f():\n    from forecaster.verbs.options import x\n")) == 1
    assert command_line_imports("forecaster.verbs.train", "from forecaster.api.model import train\n") == []
