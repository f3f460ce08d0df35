"""The offline evaluation report: ``metrics.json``, ``predictions.parquet``, ``report.md``,
``report.html`` and the PNG figures, written into one folder.

:func:`build_report_data` gathers every number the report shows into one JSON-safe dict
(``metrics.json``), with the warnings of :mod:`forecaster.report.checks`; the Korean prose
(:mod:`forecaster.report.text`) and tables (:mod:`forecaster.report.tables`) are rendered from that
dict only, so nothing appears in the report that the JSON does not hold.
:func:`write_report` writes everything into one new or empty folder; ``forecaster evaluate``
gives it a temporary folder and renames that into place at the end
(:mod:`forecaster.destination`), so a failure leaves neither a half-written folder nor a
damaged old one.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from forecaster.evaluation import EvaluationSetup
from forecaster.labels import feature_label
from forecaster.providers import registration
from forecaster.report import checks, plots, tables, text
from forecaster.report.format import (ARM_LABELS, BASELINE_ARM, BETTER, HEADLINE_ARM, HEADLINE_COMPARISON,
                                      HEADLINE_METRIC, METRIC_NAMES, arm_name, comparison_name, month)
from models.evaluate import EvaluationResult

REPORT_FORMAT = 1
TOP_FEATURES = 15
PLOT_FOLDER = "plots"
FILES = {"metrics": "metrics.json", "predictions": "predictions.parquet",
         "report_md": "report.md", "report_html": "report.html"}


# -- JSON-safe data --------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """Plain JSON types with stable keys: numpy scalars/arrays unwrapped, NaN/inf -> None,
    periods and timestamps as text, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (pd.Period, pd.Timestamp)):
        return str(value)
    return value


def arm_order(arms: list[str]) -> list[str]:
    """Known arms in the report's order, then any other arm in the order given."""
    known = [a for a in ARM_LABELS if a in arms]
    return known + [a for a in arms if a not in known]


def _dataset_summary(setup: EvaluationSetup) -> dict:
    panel, full = setup.panel, setup.dataset.panel
    # the sampled customers' transactions only; rows of a partial month left out of the
    # panel are not part of what was evaluated
    sampled = panel.customer_ids if setup.sample_customers is not None else None
    transactions = setup.dataset.transaction_count(sampled, complete_months=True)
    cleaning = dataclasses.asdict(setup.dataset.cleaning)
    return {
        "name": setup.dataset.name,
        "currency": setup.dataset.currency,
        "customers": int(len(panel.customer_ids)),
        "customers_in_data": int(len(full.customer_ids)),
        "sample_customers": setup.sample_customers,
        "transactions": transactions,
        "first_month": str(panel.first_month),
        "last_month": str(panel.last_month),
        "months": int(panel.n_months),
        "cleaning": cleaning,
        "notices": [n.removeprefix("참고: ") for n in setup.dataset.notices],
    }


def _split_summary(setup: EvaluationSetup, result: EvaluationResult) -> dict:
    origins = []
    for test_anchor, info in result.metrics["origins"].items():
        first, last = info["training_anchors"]
        origins.append({"test_anchor": test_anchor, "training_first": first, "training_last": last,
                        "validation_anchor": info["validation_anchor"], "n_train": info["n_train"],
                        "n_val": info["n_val"], "n_test": info["n_test"], "notes": info["notes"]})
    return {"test_anchors": [str(a) for a in setup.test_anchors],
            "test_rows": int(sum(o["n_test"] for o in origins)),
            "scheme_fitted_on": setup.scheme.fitted_on, "origins": origins}


def _scheme_summary(setup: EvaluationSetup) -> dict:
    scheme = setup.scheme
    return {"ids": scheme.ids, "labels": scheme.labels, "edges": list(scheme.edges),
            "currency": scheme.currency, "fitted_on": scheme.fitted_on, "n_buckets": scheme.n_buckets,
            "representative_spend": np.asarray(setup.representative_spend, dtype=float).tolist()}


def _forecaster_summary(setup: EvaluationSetup, ledger: dict | None) -> dict:
    return {"provider": setup.provider, "model": setup.model, "prompt_version": setup.prompt_version,
            "is_llm": registration(setup.provider).is_llm, "ledger": ledger}


def _base_rates(arms: dict, order: list[str]) -> dict:
    """Every arm is scored on the same rows, so the purchase base rate is the same for all:
    taken from the first arm's scores."""
    entry = arms[order[0]]
    return {"pooled": entry["pooled"]["base_rate"],
            "by_anchor": {a: s["base_rate"] for a, s in entry["by_anchor"].items()},
            "by_segment": {k: s["base_rate"] for k, s in entry["by_segment"].items()}}


def _headline(differences: dict, sufficiency: dict) -> dict:
    """The headline comparison's RPS difference and its verdict: ``cannot_answer`` (no
    conclusion at all) when the test rows are below the evaluation's minimum."""
    key = HEADLINE_COMPARISON
    if key not in differences:
        return {"comparison": key, "metric": HEADLINE_METRIC, "verdict": "not_run", "difference": None,
                "relative_change": None}
    diff = differences[key][HEADLINE_METRIC]
    relative = diff["diff"] / diff["a"] if diff["a"] else float("nan")
    return {"comparison": key, "metric": HEADLINE_METRIC,
            "verdict": checks.judged(HEADLINE_METRIC, diff, bool(sufficiency["can_answer"])),
            "difference": diff, "relative_change": relative,
            "minimum_detectable_difference": diff.get("mde")}


def _with_difference(point: dict) -> dict:
    """A learning-curve point with ``difference`` = augmented - baseline RPS (None when
    either model could not be fitted on that sample)."""
    base, aug = point.get(BASELINE_ARM), point.get(HEADLINE_ARM)
    return {**point, "difference": aug - base if base is not None and aug is not None else None}


def _importance(importance: pd.DataFrame, model: str) -> dict:
    """Features ranked by the mean of their share of each booster's total gain (so the
    bucket booster's features count as much as the purchase booster's)."""
    table = importance.copy()
    for col in ("purchase_gain", "bucket_gain"):
        total = table[col].sum()
        table[f"{col}_share"] = table[col] / total if total > 0 else 0.0
    table["rank_score"] = table[["purchase_gain_share", "bucket_gain_share"]].mean(axis=1)
    table = table.sort_values(["rank_score", "mean_abs_shap"], ascending=False)
    features = [{"feature": str(name), **row} for name, row in table.drop(columns="rank_score").iterrows()]
    return {"model": model, "shown": min(TOP_FEATURES, len(features)), "features": features}


def _confusion(predictions: pd.DataFrame, order: list[str], scheme: dict) -> dict:
    arm = HEADLINE_ARM if HEADLINE_ARM in order else BASELINE_ARM if BASELINE_ARM in order else order[0]
    counts = plots.confusion_counts(predictions, arm, scheme["n_buckets"])
    return {"arm": arm, "labels": scheme["labels"], "rows": "observed bucket", "columns": "most probable bucket",
            "counts": counts.tolist()}


def _reliability(predictions: pd.DataFrame, order: list[str]) -> dict:
    return {arm: plots.reliability_bins(score, bought) for arm, score, bought in plots.by_arm(predictions, order)}


def build_report_data(setup: EvaluationSetup, result: EvaluationResult, ledger: dict | None = None) -> dict:
    """Every number the report shows, JSON-safe, under stable keys; ``ledger`` is the run's
    LLM usage (None when it asked no one)."""
    m = result.metrics
    order = arm_order(list(m["arms"]))
    scheme = _scheme_summary(setup)
    data = {
        "report_format": REPORT_FORMAT,
        "dataset": _dataset_summary(setup),
        "split": _split_summary(setup, result),
        "scheme": scheme,
        "forecaster": _forecaster_summary(setup, ledger),
        "run": {"seed": setup.seed, "n_resamples": setup.n_resamples},
        "rps_scaling": {"n_buckets": scheme["n_buckets"], "divisor": scheme["n_buckets"] - 1, "range": [0, 1],
                        "formula": "mean_i sum_{k=1}^{K-1} (F_ik - O_ik)^2 / (K - 1)"},
        "arm_order": order,
        "arms": m["arms"],
        "base_rate": _base_rates(m["arms"], order),
        "data_sufficiency": m["data_sufficiency"],
        "headline": _headline(m["differences"], m["data_sufficiency"]),
        "differences": m["differences"],
        "differences_by_anchor": m["differences_by_anchor"],
        "learning_curve": [_with_difference(point) for point in m["learning_curve"]],
        "importance": _importance(result.importance, m.get("importance_model", "")),
        "confusion": _confusion(result.predictions, order, scheme),
        "reliability": _reliability(result.predictions, order),
        "arms_not_run": dict(setup.arms_not_run),
        "btyd_selection": m.get("btyd_selection"),  # per anchor: BG/NBD or Pareto/NBD, chosen on the month before
        "tuning": m.get("tuning"),  # the settings chosen on the tuning month, every candidate's score
        "power": m.get("power"),  # an LLM run's detectable difference, estimated before it (forecaster/power.py)
    }
    data = json_safe(data)
    data["warnings"] = json_safe(checks.warnings(data))  # from the JSON-safe numbers they quote
    return data


# -- figures ---------------------------------------------------------------------------------

CHART_METRICS = ("rps", "log_loss", "pr_auc")  # the per-month difference chart's panels
_IMPROVES = {"lower": "음수가 개선", "higher": "양수가 개선"}


def _difference_panels(data: dict) -> list[tuple[str, list[tuple[str, float, float, float]]]]:
    """(panel title, [(label, difference, lo, hi) per test month, then pooled]) per chart
    metric of the headline comparison."""
    by_anchor, pooled = data["differences_by_anchor"][HEADLINE_COMPARISON], data["differences"][HEADLINE_COMPARISON]
    return [(f"{METRIC_NAMES[key]} ({_IMPROVES[BETTER[key]]})",
             [(month(a), d[key]["diff"], d[key]["lo"], d[key]["hi"]) for a, d in by_anchor.items()]
             + [(tables.POOLED, pooled[key]["diff"], pooled[key]["lo"], pooled[key]["hi"])])
            for key in CHART_METRICS]


def figures(data: dict, predictions: pd.DataFrame) -> dict[str, Figure]:
    """name -> matplotlib figure of the report; a figure without data (no learning curve, no
    features) is left out."""
    labels = {a: ARM_LABELS.get(a, a) for a in data["arm_order"]}
    order = data["arm_order"]
    conf = data["confusion"]
    out = {
        "reliability": plots.reliability_diagram(data["reliability"], labels),
        "pr_curve": plots.pr_curves(predictions, order, labels),
        "gains": plots.gains_chart(predictions, order, labels),
        "confusion": plots.confusion_matrix(np.array(conf["counts"]), conf["labels"],
                                            f"혼동 행렬: {arm_name(conf['arm'])}, 평가 월 전체"),
    }
    if HEADLINE_COMPARISON in data["differences_by_anchor"]:
        out["differences"] = plots.differences_chart(_difference_panels(data),
                                                     comparison_name(HEADLINE_COMPARISON, minus="-"))
    imp = data["importance"]
    if imp["features"]:
        buckets = dict(zip(data["scheme"]["ids"], data["scheme"]["labels"]))
        top = pd.DataFrame(imp["features"][: imp["shown"]])
        top.index = [feature_label(f, buckets) for f in top["feature"]]
        out["importance"] = plots.importance_chart(top, arm_name(imp["model"]))
    if data["learning_curve"]:
        out["learning_curve"] = plots.learning_curve_chart(data["learning_curve"], labels)
    return out


def render_plots(data: dict, predictions: pd.DataFrame) -> dict[str, bytes]:
    """name -> PNG bytes of :func:`figures`."""
    return {name: plots.png(fig) for name, fig in figures(data, predictions).items()}


# -- documents -------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]<>|~"} | {"\n": " ", "\r": " "})


def markdown_escape(value: Any) -> Any:
    """Backslash-escape, in every string of ``value`` (nested), what Markdown would read as
    markup: table pipes, links, raw HTML, emphasis, strikethrough. The Markdown template's
    own literal markup is not touched, since only the context passes through here. A tilde
    with a space on both sides (an interval's ``−0.00377 ~ −0.00298``) can neither open nor
    close a strikethrough, so it stays readable in the raw file."""
    if isinstance(value, str):
        return value.translate(_MARKDOWN_SPECIAL).replace(" \\~ ", " ~ ")
    if isinstance(value, dict):
        return {k: markdown_escape(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [markdown_escape(v) for v in value]
    return value


def _environment(markdown: bool) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("forecaster.report", "templates"), autoescape=not markdown,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def render_documents(data: dict, images: dict[str, bytes]) -> dict[str, str]:
    """``report.md`` (figures linked from ``plots/``) and ``report.html`` (figures inline)."""
    context = {"data": data, "prose": text.prose(data), "tables": tables.tables(data),
               "figures": {name: plots.CAPTIONS[name].format(shown=data["importance"]["shown"]) for name in images}}
    md_images = {name: f"{PLOT_FOLDER}/{name}.png" for name in images}
    html_images = {name: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
                   for name, png in images.items()}
    return {
        "report_md": _environment(True).get_template("report.md.j2").render(
            markdown_escape({"images": md_images, **context})),
        "report_html": _environment(False).get_template("report.html.j2").render(images=html_images, **context),
    }


# -- writing ---------------------------------------------------------------------------------


def _write_all(folder: Path, setup: EvaluationSetup, result: EvaluationResult, ledger: dict | None) -> dict[str, str]:
    """Everything into ``folder``; returns output name -> path relative to it."""
    data = build_report_data(setup, result, ledger)
    (folder / FILES["metrics"]).write_text(
        json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    result.predictions.to_parquet(folder / FILES["predictions"], index=False)
    images = render_plots(data, result.predictions)
    (folder / PLOT_FOLDER).mkdir()
    written = dict(FILES)
    for name, png in images.items():
        (folder / PLOT_FOLDER / f"{name}.png").write_bytes(png)
        written[f"plot_{name}"] = f"{PLOT_FOLDER}/{name}.png"
    for key, document in render_documents(data, images).items():
        (folder / FILES[key]).write_text(document, encoding="utf-8")
    return written


def write_report(folder: Path, setup: EvaluationSetup, result: EvaluationResult,
                 ledger: dict | None = None) -> dict[str, Path]:
    """Write every output into ``folder``, a new or empty folder; returns output name -> path
    (``metrics``, ``predictions``, ``report_md``, ``report_html``, ``plot_<name>``). Atomic
    replacement of an earlier report is the caller's: ``forecaster evaluate`` passes a
    temporary folder that it renames into place (:mod:`forecaster.destination`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{folder}: write_report needs a new or empty folder")
    written = _write_all(folder, setup, result, ledger)
    return {key: folder / rel for key, rel in written.items()}
