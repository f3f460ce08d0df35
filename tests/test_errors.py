"""Every error the project raises on purpose shares one base at the bottom of the layers
(``prompts.errors.ForecasterError``), each package has its own types on top of it, and the
command line turns any of them into one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from clitools import run_cli
from prompts.errors import ForecasterError

PACKAGES = ("prompts", "narrator", "structurer", "llm", "models", "forecaster")


def _project_exception_classes() -> list[type]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [package] + [importlib.import_module(info.name)
                               for info in pkgutil.walk_packages(package.__path__, f"{name}.")]
        for module in modules:
            found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                      if issubclass(obj, BaseException) and obj.__module__ == module.__name__]
    return found


def test_every_project_exception_derives_from_the_common_base():
    classes = _project_exception_classes()
    assert len(classes) >= 10  # the walk really found the packages' errors
    stray = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ForecasterError)]
    assert stray == []


def test_each_layer_has_its_own_error_type():
    from forecaster.errors import UserError
    from llm.errors import LLMError
    from models.errors import ModelError
    from narrator.errors import NarratorError
    from structurer.errors import StructurerError

    for own in (NarratorError, StructurerError, LLMError, ModelError, UserError):
        assert issubclass(own, ForecasterError) and own is not ForecasterError


def test_the_data_errors_keep_being_value_errors():
    from narrator.panel import parse_month

    with pytest.raises(ValueError) as raised:
        parse_month("January")
    assert isinstance(raised.value, ForecasterError)


def test_an_untranslated_lower_layer_error_is_still_one_line(monkeypatch, capsys):
    from models.errors import InsufficientData
    from forecaster.verbs import data as data_verb

    def refuse(*args, **kwargs):
        raise InsufficientData("no rows to score")

    monkeypatch.setattr(data_verb, "dataset_from_options", refuse)
    code, out, err = run_cli(["data", "--data", "synthetic:50"], monkeypatch, capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == ["오류: no rows to score"]
