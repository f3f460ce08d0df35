"""LLM-in-the-loop customer spend forecaster for Korean online shops, as a Python library.

Each customer's monthly purchases become a short Korean narrative; a forecaster (an LLM
behind any OpenAI-compatible endpoint, or offline the statistical ``"empirical"`` one, which
is NOT an LLM) answers with a validated distribution over spend buckets; its answer becomes
extra features for XGBoost, compared out of time against the same XGBoost without them.
The ``forecaster`` command line is a thin layer over these names (docs/python-api.md)::

    import forecaster as fc

    cdnow = fc.load_dataset("cdnow")                 # or fc.load_transactions(dataframe)
    print(fc.narrate(cdnow, "00145", "1998-01"))     # the text an LLM would be sent
    ev = fc.evaluate(cdnow)                          # backtest: ev.metrics, ev.differences, ev.plots
    ev.write_report("report/")
    model = fc.train(cdnow)                          # fc.TrainedModel: .save, .load, .predict, .explain
    rows = model.predict(cdnow)                      # one row per customer, as `forecaster batch`
    print(model.explain(cdnow, "00145", "1998-06").text)

Loading:
    load_dataset, load_transactions, Dataset
Narratives:
    narrate
Evaluation:
    evaluate, Evaluation
Models:
    train, TrainedModel, Explanation, default_model, save_predictions
The LLM:
    LLMForecaster (configured in code; a run above $1 needs ``confirm=True`` or ``budget_usd``)
Progress:
    set_progress, progress_hook, ProgressEvent
Errors (all derive from ForecasterError; none is SystemExit):
    ForecasterError, UserError, DamagedArtifact, NotEnoughData, CostNotApproved, LLMRunFailed

Names load on first use, so ``import forecaster`` and ``forecaster --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "load_dataset": "forecaster.api.data",
    "load_transactions": "forecaster.api.data",
    "narrate": "forecaster.api.data",
    "Dataset": "forecaster.datasets",
    "evaluate": "forecaster.api.evaluation",
    "Evaluation": "forecaster.api.evaluation",
    "train": "forecaster.api.model",
    "TrainedModel": "forecaster.api.model",
    "default_model": "forecaster.api.model",
    "save_predictions": "forecaster.api.model",
    "Explanation": "forecaster.explain.core",
    "LLMForecaster": "forecaster.providers",
    "set_progress": "forecaster.progress",
    "progress_hook": "forecaster.progress",
    "ProgressEvent": "forecaster.progress",
    "ForecasterError": "prompts.errors",
    "UserError": "forecaster.errors",
    "LLMRunFailed": "forecaster.errors",
    "DamagedArtifact": "forecaster.artifact",
    "NotEnoughData": "forecaster.minimum_data",
    "CostNotApproved": "forecaster.spending",
}
_RENAMED = {"ProgressEvent": "Event"}  # public name -> the defining module's name
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'forecaster' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
