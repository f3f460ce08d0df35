"""`forecaster train`: fit on every anchor with a known outcome and write an artifact folder
(XGBoost JSON models, bucket scheme, feature lists, tuned thresholds and XGBoost settings,
config, versions); loading checks that the folder matches the running code and says what
differs. The XGBoost settings are chosen on the month before the validation anchor
(:func:`models.tuning.tune_xgb`) and recorded under ``tuning`` in config.json; an artifact
trained before that was recorded has no ``tuning`` and loads as before."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from xgboost.core import XGBoostError

from forecaster import destination, minimum_data, model_warnings, pipeline
from forecaster.errors import UserError
from forecaster.providers import ForecasterChoice, Provider, registration, resolve
from models import arms, metrics
from models.arm_specs import XGB_BASE, XGB_FORECASTER
from models.errors import InsufficientData
from models.features import baseline_feature_names
from models.rows import RowSpec, forecast_group_names
from models.empirical import DEFAULT_SETTINGS, EmpiricalSettings
from models.tuning import (OFFSET_KEY, OFFSETS, XGB_DEFAULT, XGB_GRID, Tuning, offset_columns, tune_empirical, tune_xgb,
                           tuning_month, untuned, xgb_params)
from models.xgb import HurdleXGB
from narrator.panel import MonthlyPanel, parse_month
from structurer.schema import BucketScheme

ARTIFACT_FORMAT = 5  # 5: repeat_buy (models/repeat.py) and the purchase offset chosen on the tuning month
# 4: the per-customer seasonal shift (season_shift) as the purchase offset; season_orders
# 3: the centred seasonal index as the purchase model's offset; order value and rate features
# 2: day-level timing features and the seasonal index in the baseline
# the two arms an artifact holds: the baseline and the final model (baseline + forecaster)
BASE, AUGMENTED = XGB_BASE.name, XGB_FORECASTER.name
MODEL_DIRS = {BASE: "xgb_base", AUGMENTED: "xgb_augmented"}
CONFIG_FILE, SCHEME_FILE, FEATURES_FILE = "config.json", "scheme.json", "features.json"


def code_version() -> str:
    return version("llm-spend-forecaster")


@dataclass
class Artifact:
    folder: Path | None  # None until saved
    config: dict
    scheme: BucketScheme
    models: dict[str, HurdleXGB]

    @property
    def name(self) -> str:
        """How messages name it: its folder, or that it is not saved."""
        return str(self.folder) if self.folder is not None else "the trained model (not saved)"

    @property
    def representative_spend(self) -> np.ndarray:
        return np.asarray(self.config["representative_spend"])

    def threshold(self, arm: str) -> float:
        return float(self.config["thresholds"][arm])

    @property
    def feature_columns(self) -> dict[str, list[str]]:
        return self.config["features"]


def _fit_pair(rows: pd.DataFrame, spec: RowSpec, val_anchor: str, scheme: BucketScheme, seed: int,
              chosen: dict, fit: arms.Fit = arms.fit_xgb):
    train, val = rows[rows["anchor"] < val_anchor], rows[rows["anchor"] == val_anchor]
    minimum_data.check_buyers(rows, sorted(train["anchor"].unique()), val_anchor, "train")
    # both arms take the settings and the purchase offset chosen on the tuning month
    columns = {arm.name: offset_columns(arm.columns(spec), chosen) for arm in (XGB_BASE, XGB_FORECASTER)}
    models, thresholds, summary = {}, {}, {}
    for arm, cols in columns.items():
        model = fit(train, val, cols, scheme.n_buckets, seed, params=xgb_params(chosen))
        p_val = model.predict_proba(val)
        y_val = val["label"].to_numpy()
        thresholds[arm] = metrics.best_f1_threshold(1 - p_val[:, 0], y_val > 0)
        summary[arm] = {
            "validation_rps": metrics.rps(p_val, y_val),
            "validation_log_loss": metrics.log_loss(p_val, y_val),
            "validation_pr_auc": metrics.pr_auc(1 - p_val[:, 0], (y_val > 0).astype(float)),
            # what one probability for everybody scores: a model not above it ranks no better
            "climatology_pr_auc": metrics.pr_auc(np.zeros(len(y_val)), (y_val > 0).astype(float)),
            "rounds_purchase": int(model.purchase_.best_iteration + 1),
            "rounds_bucket": int(model.bucket_.best_iteration + 1),
        }
        models[arm] = model
    return models, thresholds, summary, columns, (len(train), len(val))


def training_panel(panel: MonthlyPanel, sample_customers: int | None, seed: int) -> MonthlyPanel:
    """The panel a model is trained on: every customer, or a stratified, seeded sample of
    ``sample_customers`` acquired before the month after the data ends."""
    if sample_customers is None:
        return panel
    return pipeline.sample_panel(panel, sample_customers, panel.last_month + 1, seed)


def training_scheme(panel: MonthlyPanel, verb: str = "train") -> BucketScheme:
    """For a model trained on every known month, the scheme may use every month too. Tercile
    edges that coincide (few distinct amounts) are merged, so such data gets fewer buckets."""
    minimum_data.check_train_months(panel, verb)
    try:
        return pipeline.fit_scheme(panel, panel.last_month + 1)
    except ValueError as exc:  # no month with a positive net spend (returns cancel every purchase)
        raise minimum_data.NotEnoughData(f"{verb}: {exc}; check the amount column") from None


def _xgb_tuning(rows: pd.DataFrame, spec: RowSpec, val_anchor: str, scheme: BucketScheme, seed: int,
                grid: tuple[dict, ...], fit: arms.Fit = arms.fit_xgb) -> Tuning:
    """Both arms' XGBoost settings, chosen on the baseline's columns at the anchor before
    ``val_anchor``; the defaults, with the reason, when that month has too little data."""
    try:
        return tune_xgb(rows, val_anchor, XGB_BASE.columns(spec), scheme.n_buckets, seed, grid, fit=fit)
    except InsufficientData as exc:
        return untuned(XGB_DEFAULT, str(exc))


def training_provider(choice: ForecasterChoice, panel: MonthlyPanel, scheme: BucketScheme) -> tuple[Provider, Tuning]:
    """The provider a model is trained with, and how its settings were chosen: an empirical
    forecaster takes the settings of :data:`models.tuning.EMPIRICAL_GRID` that score best on
    the anchor before the validation anchor (the last with an outcome), as an evaluation
    chooses them on its tuning month; an LLM is not searched."""
    name, _ = resolve(choice)
    defaults = dataclasses.asdict(DEFAULT_SETTINGS)
    tuning = untuned(defaults, "the provider is an LLM: the empirical forecaster's settings were not searched")
    if not registration(name).is_llm:
        anchors = [str(a) for a in pipeline.anchors_with_outcome(panel)]
        try:
            tuning = tune_empirical(panel, parse_month(tuning_month(anchors, anchors[-1])), scheme)
        except InsufficientData as exc:
            tuning = untuned(defaults, str(exc))
    return Provider.chosen(choice, scheme, EmpiricalSettings(**tuning.chosen)), tuning


def empirical_settings(config: dict) -> EmpiricalSettings:
    """The empirical forecaster's settings a model was trained with (the defaults for an
    artifact from before the search)."""
    chosen = config.get("tuning", {}).get("empirical", {}).get("chosen")
    return EmpiricalSettings(**chosen) if chosen else DEFAULT_SETTINGS


def train(panel: MonthlyPanel, transactions: pd.DataFrame, scheme: BucketScheme, forecast_fn: pipeline.ForecastFn,
          forecaster_info: dict, data_name: str, seed: int = 0, xgb_grid: tuple[dict, ...] = XGB_GRID,
          empirical_tuning: Tuning | None = None,
          trainer: Callable[[pd.DataFrame], arms.Fit] | None = None) -> Artifact:
    """Fit on every anchor with a known outcome: the last one is the validation anchor (early
    stopping, threshold); ``scheme`` comes from :func:`training_scheme`. Both arms use the
    settings of ``xgb_grid`` that score best on the anchor before the validation anchor
    (config.json's ``tuning``, with ``empirical_tuning``: how :func:`training_provider`
    chose the forecaster's). ``trainer(rows)`` gives the function every XGBoost model of the
    run (tuning candidates and both arms) is fitted with (:data:`models.arms.Fit`; e.g.
    ``forecaster.dask_train.trainer(client)``: on a Dask cluster); None fits them here
    (:func:`models.arms.fit_xgb`). Not saved yet (:func:`save`)."""
    anchors = pipeline.anchors_with_outcome(panel)
    positive = panel.spend[panel.spend > 0]
    rep = scheme.representative_spend(positive)
    rows, spec = pipeline.build_rows(panel, anchors, scheme, forecast_fn, transactions=transactions, with_btyd=False)
    val_anchor = str(anchors[-1])
    fit = arms.fit_xgb if trainer is None else trainer(rows)
    tuning = _xgb_tuning(rows, spec, val_anchor, scheme, seed, xgb_grid, fit)
    models, thresholds, summary, columns, (n_train, n_val) = _fit_pair(rows, spec, val_anchor, scheme, seed,
                                                                       tuning.chosen, fit)
    config = {
        "format": ARTIFACT_FORMAT,
        "code_version": code_version(),
        "data": data_name,
        "currency": panel.currency,
        "history_months": pipeline.HISTORY_MONTHS,
        "trained_anchors": [str(anchors[0]), str(anchors[-2])],
        "validation_anchor": val_anchor,
        "data_last_month": str(panel.last_month),
        "rows": {"train": n_train, "validation": n_val},
        "seed": seed,
        "forecaster": forecaster_info,
        "features": columns,
        "thresholds": thresholds,
        "representative_spend": rep.tolist(),
        "summary": summary,
        "tuning": {"xgb": tuning.to_json(),
                   **({"empirical": empirical_tuning.to_json()} if empirical_tuning is not None else {})},
        "warnings": model_warnings.collect(summary, val_anchor),
    }
    return Artifact(None, config, scheme, models)


def save(art: Artifact, out: Path) -> Artifact:
    """Write the artifact folder atomically (:func:`forecaster.destination.publish_folder`):
    only a new or empty folder or an earlier model folder is replaced. Returns the artifact
    with its folder."""
    def write(folder: Path) -> None:
        for arm, model in art.models.items():
            model.save(folder / MODEL_DIRS[arm])
        (folder / SCHEME_FILE).write_text(art.scheme.model_dump_json(indent=2), encoding="utf-8")
        (folder / FEATURES_FILE).write_text(json.dumps(art.config["features"], ensure_ascii=False, indent=2),
                                            encoding="utf-8")
        (folder / CONFIG_FILE).write_text(json.dumps(art.config, ensure_ascii=False, indent=2), encoding="utf-8")

    destination.publish_folder(out, destination.MODEL, write)
    return dataclasses.replace(art, folder=Path(out))


class _ForecasterInfo(BaseModel):
    provider: str
    model: str | None
    prompt_version: str


class _ConfigShape(BaseModel):
    """What loading and the verbs read from config.json, with the types they need (strict:
    a threshold "high" or a spend "12" is damage, not something to coerce)."""

    model_config = ConfigDict(extra="allow", strict=True)

    currency: str
    history_months: int = Field(ge=1)
    trained_anchors: list[str] = Field(min_length=2, max_length=2)
    validation_anchor: str
    forecaster: _ForecasterInfo
    features: dict[str, list[str]]
    thresholds: dict[str, float]
    representative_spend: list[float]


class DamagedArtifact(UserError):
    """A file of an artifact folder is missing, unreadable or not what `train` writes."""

    def __init__(self, folder: Path, name: str, reason: str) -> None:
        super().__init__(f"{folder}: {name} is damaged ({reason}); retrain with `forecaster train --out {folder}`")


def _read_json(folder: Path, name: str) -> object:
    try:
        return json.loads((folder / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedArtifact(folder, name, "missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedArtifact(folder, name, f"cannot be read: {type(exc).__name__}") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise DamagedArtifact(folder, name, f"not JSON: {exc}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "top level"
    return f"{where}: {error['msg']}"


def _check_config(folder: Path, config: object, scheme: BucketScheme) -> None:
    """The shape every reader of config.json relies on, checked once here."""
    if not isinstance(config, dict):
        raise DamagedArtifact(folder, CONFIG_FILE, "not a JSON object")
    try:
        shape = _ConfigShape.model_validate(config)
    except ValidationError as exc:
        raise DamagedArtifact(folder, CONFIG_FILE, _first_problem(exc)) from None
    for key, table in (("features", shape.features), ("thresholds", shape.thresholds)):
        missing = [arm for arm in MODEL_DIRS if arm not in table]
        if missing:
            raise DamagedArtifact(folder, CONFIG_FILE, f"{key} has no entry for {missing[0]}")
    if not all(0.0 <= shape.thresholds[arm] <= 1.0 for arm in MODEL_DIRS):
        raise DamagedArtifact(folder, CONFIG_FILE, "a threshold is outside 0..1")
    spend = np.asarray(shape.representative_spend)
    if len(spend) != scheme.n_buckets or not np.isfinite(spend).all() or (spend < 0).any():
        raise DamagedArtifact(folder, CONFIG_FILE, f"representative_spend is not {scheme.n_buckets} amounts >= 0")


def _version_differences(config: dict) -> list[str]:
    diffs = []
    if config.get("format") != ARTIFACT_FORMAT:
        diffs.append(f"artifact format {config.get('format')} != {ARTIFACT_FORMAT}")
    if config.get("code_version") != code_version():
        diffs.append(f"code version {config.get('code_version')} != {code_version()}")
    return diffs


def _differences(config: dict, scheme: BucketScheme, expected_forecaster: dict | None) -> list[str]:
    """What differs between an artifact's (well-formed) config and the running code (empty if nothing)."""
    diffs = _version_differences(config)
    if config["history_months"] != pipeline.HISTORY_MONTHS:
        diffs.append(f"history months {config['history_months']} != {pipeline.HISTORY_MONTHS}")
    features = config["features"]
    running = RowSpec(base=baseline_feature_names(), forecaster=forecast_group_names(scheme, "forecaster"),
                      btyd=[], empirical=[])
    for key, arm, name in ((BASE, XGB_BASE, "baseline"), (AUGMENTED, XGB_FORECASTER, "forecaster")):
        # either purchase offset the tuning month may choose (models/tuning.py)
        if features[key] not in [offset_columns(arm.columns(running), {OFFSET_KEY: o}) for o in OFFSETS]:
            diffs.append(f"{name} feature list differs from the running code")
    if expected_forecaster is not None:
        for key in ("provider", "model", "prompt_version"):
            if config["forecaster"].get(key) != expected_forecaster.get(key):
                diffs.append(f"forecaster {key} {config['forecaster'].get(key)!r} != {expected_forecaster.get(key)!r}")
    return diffs


def _xgboost_reason(exc: XGBoostError) -> str:
    """The message of XGBoost's C++ layer without its "[time] src/file.cc:line:" prefix and stack."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
    return re.sub(r"^\[[^\]]*\]\s+\S+:\d+:\s*", "", first)


def _load_model(folder: Path, arm: str, n_buckets: int, features: list[str]) -> HurdleXGB:
    """One arm's boosters, checked to be the binary purchase model and the (K-1)-class bucket
    model over exactly ``features``: XGBoost itself would fail later, deep in a prediction."""
    sub = MODEL_DIRS[arm]
    try:
        model = HurdleXGB.load(folder / sub, n_buckets, features)
    except XGBoostError as exc:
        reason = _xgboost_reason(exc).replace(f"{folder}/", "")  # the folder is named once, at the start
        raise DamagedArtifact(folder, f"{sub}/", f"XGBoost cannot load it: {reason}") from None
    boosters = (("purchase.json", model.purchase_, 0), ("bucket.json", model.bucket_, n_buckets - 1))
    for name, booster, classes in boosters:
        params = json.loads(booster.save_config())["learner"]["learner_model_param"]
        if booster.feature_names != features or int(params["num_class"]) != classes:
            raise DamagedArtifact(folder, f"{sub}/{name}", "its features or classes do not match config.json")
        if booster.attr("best_iteration") is None:
            raise DamagedArtifact(folder, f"{sub}/{name}", "no best_iteration")
    return model


def load(folder: Path, expected_forecaster: dict | None = None) -> Artifact:
    """Load an artifact; UserError naming every difference from the running code, or the
    first damaged file (:class:`DamagedArtifact`)."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file():
        raise UserError(f"{folder}: not a model folder (no {CONFIG_FILE}); create one with "
                        f"`forecaster train --out {folder}`")
    config = _read_json(folder, CONFIG_FILE)
    if isinstance(config, dict) and _version_differences(config):
        raise UserError(f"{folder} was trained by different code: {'; '.join(_version_differences(config))}; "
                        f"retrain it with `forecaster train --out {folder}`")
    scheme_data = _read_json(folder, SCHEME_FILE)
    try:
        scheme = BucketScheme.model_validate(scheme_data)
    except ValidationError as exc:
        raise DamagedArtifact(folder, SCHEME_FILE, _first_problem(exc)) from None
    _check_config(folder, config, scheme)
    if _read_json(folder, FEATURES_FILE) != config["features"]:
        raise DamagedArtifact(folder, FEATURES_FILE, "it differs from the feature lists in config.json")
    diffs = _differences(config, scheme, expected_forecaster)
    if diffs:
        raise UserError(f"{folder} was trained by different code: {'; '.join(diffs)}; "
                        f"retrain it with `forecaster train --out {folder}`")
    models = {arm: _load_model(folder, arm, scheme.n_buckets, config["features"][arm]) for arm in MODEL_DIRS}
    return Artifact(folder, config, scheme, models)
