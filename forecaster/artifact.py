"""`forecaster train`: fit on every anchor with a known outcome and write an artifact folder
(XGBoost JSON models, bucket scheme, feature lists, tuned thresholds, config, versions);
loading checks that the folder matches the running code and says what differs."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster import pipeline
from forecaster.errors import UserError
from models import arms, metrics
from models.features import baseline_feature_names
from models.xgb import HurdleXGB
from narrator.panel import MonthlyPanel
from structurer.features import forecast_feature_names
from structurer.schema import BucketScheme

ARTIFACT_FORMAT = 1
BASE, AUGMENTED = "xgb_base", "xgb_base+forecaster"
MODEL_DIRS = {BASE: "xgb_base", AUGMENTED: "xgb_augmented"}


def code_version() -> str:
    return version("llm-spend-forecaster")


@dataclass
class Artifact:
    folder: Path
    config: dict
    scheme: BucketScheme
    models: dict[str, HurdleXGB]

    @property
    def representative_spend(self) -> np.ndarray:
        return np.asarray(self.config["representative_spend"])

    def threshold(self, arm: str) -> float:
        return float(self.config["thresholds"][arm])

    @property
    def feature_columns(self) -> dict[str, list[str]]:
        return self.config["features"]


def _fit_pair(rows: pd.DataFrame, spec: pipeline.RowSpec, val_anchor: str, scheme: BucketScheme, seed: int):
    train, val = rows[rows["anchor"] < val_anchor], rows[rows["anchor"] == val_anchor]
    columns = {BASE: spec.base, AUGMENTED: spec.base + spec.forecaster}
    models, thresholds, summary = {}, {}, {}
    for arm, cols in columns.items():
        model = arms.fit_xgb(train, val, cols, scheme.n_buckets, seed)
        p_val = model.predict_proba(val)
        y_val = val["label"].to_numpy()
        thresholds[arm] = metrics.best_f1_threshold(1 - p_val[:, 0], y_val > 0)
        summary[arm] = {
            "validation_rps": metrics.rps(p_val, y_val),
            "validation_log_loss": metrics.log_loss(p_val, y_val),
            "validation_pr_auc": metrics.pr_auc(1 - p_val[:, 0], (y_val > 0).astype(float)),
            "rounds_purchase": int(model.purchase_.best_iteration + 1),
            "rounds_bucket": int(model.bucket_.best_iteration + 1),
        }
        models[arm] = model
    return models, thresholds, summary, columns, (len(train), len(val))


def training_scheme(panel: MonthlyPanel) -> BucketScheme:
    """For a model trained on every known month, the scheme may use every month too."""
    if panel.n_months < 4:
        raise UserError(f"the data spans {panel.n_months} months; training needs at least 4")
    return pipeline.fit_scheme(panel, panel.last_month + 1)


def train(panel: MonthlyPanel, scheme: BucketScheme, forecast_fn: pipeline.ForecastFn, forecaster_info: dict,
          data_name: str, out: Path, seed: int = 0) -> Artifact:
    """Fit on every anchor with a known outcome: the last one is the validation anchor (early
    stopping, threshold); ``scheme`` comes from :func:`training_scheme`."""
    anchors = pipeline.anchors_with_outcome(panel)
    positive = panel.spend[panel.spend > 0]
    rep = scheme.representative_spend(positive)
    rows, spec = pipeline.build_rows(panel, anchors, scheme, forecast_fn, with_btyd=False)
    val_anchor = str(anchors[-1])
    models, thresholds, summary, columns, (n_train, n_val) = _fit_pair(rows, spec, val_anchor, scheme, seed)
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
    }
    return save(out, config, scheme, models)


def save(out: Path, config: dict, scheme: BucketScheme, models: dict[str, HurdleXGB]) -> Artifact:
    """Write into a temporary sibling folder and move it into place at the end."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for arm, model in models.items():
            model.save(tmp / MODEL_DIRS[arm])
        (tmp / "scheme.json").write_text(scheme.model_dump_json(indent=2), encoding="utf-8")
        (tmp / "features.json").write_text(json.dumps(config["features"], ensure_ascii=False, indent=2), encoding="utf-8")
        (tmp / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Artifact(out, config, scheme, models)


def _differences(config: dict, scheme: BucketScheme, expected_forecaster: dict | None) -> list[str]:
    """What differs between an artifact's config and the running code (empty if nothing)."""
    diffs = []
    if config.get("format") != ARTIFACT_FORMAT:
        diffs.append(f"artifact format {config.get('format')} != {ARTIFACT_FORMAT}")
    if config.get("code_version") != code_version():
        diffs.append(f"code version {config.get('code_version')} != {code_version()}")
    features = config.get("features", {})
    if features.get(BASE) != baseline_feature_names():
        diffs.append("baseline feature list differs from the running code")
    if features.get(AUGMENTED) != baseline_feature_names() + forecast_feature_names(scheme):
        diffs.append("forecaster feature list differs from the running code")
    if expected_forecaster is not None:
        for key in ("provider", "model", "prompt_version"):
            if config["forecaster"].get(key) != expected_forecaster.get(key):
                diffs.append(f"forecaster {key} {config['forecaster'].get(key)!r} != {expected_forecaster.get(key)!r}")
    return diffs


def load(folder: Path, expected_forecaster: dict | None = None) -> Artifact:
    """Load an artifact; UserError naming every difference from the running code."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise UserError(f"{folder}: not a model folder (no config.json); create one with `forecaster train --out {folder}`")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    scheme = BucketScheme.model_validate_json((folder / "scheme.json").read_text(encoding="utf-8"))
    diffs = _differences(config, scheme, expected_forecaster)
    if diffs:
        raise UserError(f"{folder} was trained by different code: {'; '.join(diffs)}; "
                        f"retrain it with `forecaster train --out {folder}`")
    models = {arm: HurdleXGB.load(folder / sub, scheme.n_buckets, config["features"][arm])
              for arm, sub in MODEL_DIRS.items()}
    return Artifact(folder, config, scheme, models)
