"""Hyperparameters chosen on the tuning month only (models/tuning.py): the choice never reads
a later row, a grid of one reproduces the untuned run, a clearly better setting wins, and
the artifact and the report record it."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from forecaster import artifact, evaluation, pipeline
from forecaster.datasets import load_dataset
from forecaster.providers import Provider
from forecaster.report.tables import xgb_tuning_table
from forecaster.report.text import tuning_sentences
from models.empirical import DEFAULT_SETTINGS, EmpiricalSettings
from models.evaluate import arm_columns, evaluate
from models.repeat import REPEAT_COLUMN
from models.tuning import OFFSET_KEY, OFFSETS, XGB_DEFAULT, offset_columns, tune_empirical, tune_xgb

DATA = "synthetic:300"
SMALL_XGB_GRID = ({"max_depth": 2, "min_child_weight": 1.0}, {"max_depth": 4}, {"max_depth": 6, "eta": 0.3})
SMALL_EMPIRICAL_GRID = (EmpiricalSettings(1.5, 1.0, 1.0), DEFAULT_SETTINGS, EmpiricalSettings(6.0, 10.0, 5.0))


@pytest.fixture(scope="module")
def setup():
    return evaluation.prepare(load_dataset(DATA), None, None, seed=0, n_resamples=100,
                              xgb_grid=SMALL_XGB_GRID, empirical_grid=SMALL_EMPIRICAL_GRID)


@pytest.fixture(scope="module")
def rows(setup):
    frame, spec = pipeline.build_rows(setup.panel, setup.anchors, setup.scheme, None, with_btyd=False,
                                      transactions=setup.dataset.transactions)
    return frame, spec.base


def _validation_anchor(setup) -> str:
    known = [str(a) for a in pipeline.anchors_with_outcome(setup.panel)]
    return known[known.index(str(setup.test_anchors[0])) - 1]


def _scrambled_after(frame: pd.DataFrame, month: str, cols: list[str]) -> pd.DataFrame:
    """Every row after ``month`` (the validation and test anchors among them) with random
    features and labels."""
    out = frame.copy()
    later = out["anchor"] > month
    rng = np.random.default_rng(1)
    out.loc[later, cols] = rng.normal(size=(int(later.sum()), len(cols)))
    out.loc[later, "label"] = rng.integers(0, out["label"].max() + 1, size=int(later.sum()))
    return out


def test_xgb_choice_never_reads_a_row_after_the_tuning_month(setup, rows):
    frame, cols = rows
    validation = _validation_anchor(setup)
    honest = tune_xgb(frame, validation, cols, setup.scheme.n_buckets, 0, SMALL_XGB_GRID)
    assert honest.month == setup.tuning_month < validation < str(setup.test_anchors[0])
    scrambled = tune_xgb(_scrambled_after(frame, honest.month, cols), validation, cols, setup.scheme.n_buckets, 0,
                         SMALL_XGB_GRID)
    assert scrambled.chosen == honest.chosen
    assert scrambled.candidates == honest.candidates  # the very same scores, not only the same winner
    # each setting with each purchase offset, the offset part of the choice
    assert [c[OFFSET_KEY] for c in honest.candidates] == list(OFFSETS) * len(SMALL_XGB_GRID)
    assert honest.chosen[OFFSET_KEY] in OFFSETS


def test_empirical_choice_never_reads_a_month_after_the_tuning_month(setup):
    month = pd.Period(setup.tuning_month, freq="M")
    honest = tune_empirical(setup.panel, month, setup.scheme, SMALL_EMPIRICAL_GRID)
    panel = setup.panel
    later = panel.column(month) + 1
    spend, orders = panel.spend.copy(), panel.orders.copy()
    rng = np.random.default_rng(2)
    spend[:, later:] = rng.exponential(100.0, size=spend[:, later:].shape)
    orders[:, later:] = rng.integers(0, 3, size=orders[:, later:].shape)
    scrambled = tune_empirical(dataclasses.replace(panel, spend=spend, orders=orders), month, setup.scheme,
                               SMALL_EMPIRICAL_GRID)
    assert scrambled.candidates == honest.candidates
    assert scrambled.chosen == honest.chosen
    assert setup.empirical_tuning.chosen == honest.chosen  # prepare() opened its provider with this choice
    assert setup.forecaster.forecaster.settings == EmpiricalSettings(**honest.chosen)


def test_a_grid_of_one_reproduces_the_untuned_run():
    one = evaluation.prepare(load_dataset(DATA), None, None, seed=0, n_resamples=100,
                             xgb_grid=(XGB_DEFAULT,), empirical_grid=(DEFAULT_SETTINGS,))
    tuned = evaluation.run(one, one.forecaster.forecast_fn())
    assert tuned.metrics["tuning"]["xgb"]["chosen"] == XGB_DEFAULT
    # the run as it was before any search: the default forecaster and XGBoost settings
    untuned_fn = Provider.chosen("empirical", one.scheme).forecast_fn()
    frame, spec = pipeline.build_rows(one.panel, one.anchors, one.scheme, untuned_fn, with_btyd=True,
                                      transactions=one.dataset.transactions)  # as run() builds them
    tests = [str(a) for a in one.test_anchors]
    plan = arm_columns(*(offset_columns(cols, XGB_DEFAULT) for cols in (spec.base, spec.forecaster, spec.btyd)))
    before = evaluate(frame, tests, one.scheme, one.representative_spend, plan, seed=0, n_resamples=100)
    for arm, entry in before.metrics["arms"].items():
        for key in ("rps", "log_loss", "pr_auc", "spend_mae"):
            assert tuned.metrics["arms"][arm]["pooled"][key] == entry["pooled"][key], (arm, key)
    assert tuned.metrics["differences"] == before.metrics["differences"]


def _interaction_rows(seed: int) -> pd.DataFrame:
    """Purchases where exactly one of x1, x2 is high: an interaction no stump can express."""
    rng = np.random.default_rng(seed)
    parts = []
    for anchor in ("2024-01", "2024-02", "2024-03", "2024-04"):
        n = 3000
        x = rng.uniform(size=(n, 3))
        buys = ((x[:, 0] > 0.5) ^ (x[:, 1] > 0.5)) & (rng.uniform(size=n) < 0.9)
        label = np.where(buys, 1 + (x[:, 2] > 0.5), 0)
        parts.append(pd.DataFrame({"anchor": anchor, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "label": label}))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("grid", [({"max_depth": 1}, {"max_depth": 4}), ({"max_depth": 4}, {"max_depth": 1})])
def test_the_search_picks_the_clearly_better_setting(grid):
    result = tune_xgb(_interaction_rows(0), "2024-04", ["x1", "x2", "x3"], 3, 0, grid)
    assert result.month == "2024-03"
    assert result.chosen["max_depth"] == 4
    scores = {c["max_depth"]: c["rps"] for c in result.candidates}
    assert scores[4] < 0.8 * scores[1]  # clearly better, not a coin flip


def test_config_records_the_tuning_and_an_artifact_without_it_still_loads(tmp_path):
    data = load_dataset("synthetic:300:4")
    panel = data.panel
    scheme = artifact.training_scheme(panel)
    provider = Provider.chosen("empirical", scheme)
    art = artifact.train(panel, data.transactions, scheme, provider.forecast_fn(), provider.info, "synthetic",
                         xgb_grid=SMALL_XGB_GRID)
    saved = artifact.save(art, tmp_path / "model")
    config = json.loads((saved.folder / "config.json").read_text(encoding="utf-8"))
    search = config["tuning"]["xgb"]
    known = [str(a) for a in pipeline.anchors_with_outcome(panel)]
    assert search["month"] == known[-2] and config["validation_anchor"] == known[-1]
    assert len(search["candidates"]) == len(SMALL_XGB_GRID) * len(OFFSETS)
    assert search["chosen"] in [{**XGB_DEFAULT, **g, OFFSET_KEY: o} for g in SMALL_XGB_GRID for o in OFFSETS]
    for model in art.models.values():  # both arms take the chosen offset: repeat_buy among the columns or not
        assert (REPEAT_COLUMN in model.feature_names_) == (search["chosen"][OFFSET_KEY] == REPEAT_COLUMN)
    assert search["criterion"] == "rps" and search["default"] == XGB_DEFAULT
    params = json.loads(art.models["xgb_base"].purchase_.save_config())["learner"]["gradient_booster"]
    assert int(params["tree_train_param"]["max_depth"]) == search["chosen"]["max_depth"]

    del config["tuning"]  # as an artifact trained before the search was recorded
    (saved.folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    loaded = artifact.load(saved.folder)
    assert "tuning" not in loaded.config
    assert loaded.threshold("xgb_base") == art.threshold("xgb_base")


def test_the_report_states_the_choice_in_a_sentence_and_a_table():
    candidates = [{**XGB_DEFAULT, "rps": 0.0370, "purchase_log_loss": 0.191},
                  {"max_depth": 3, "eta": 0.05, "min_child_weight": 20.0, OFFSET_KEY: REPEAT_COLUMN, "rps": 0.0368,
                   "purchase_log_loss": 0.190}]
    chosen = {k: candidates[1][k] for k in XGB_DEFAULT}
    data = {"tuning": {"month": "1998-02", "xgb": {"month": "1998-02", "criterion": "rps", "chosen": chosen,
                                                   "default": XGB_DEFAULT, "candidates": candidates, "note": ""},
                       "empirical": {"month": None, "criterion": "rps", "chosen": {}, "default": {},
                                     "candidates": [], "note": "not searched"}}}
    sentence, = tuning_sentences(data)
    assert "1998년 2월" in sentence and "후보 2개" in sentence
    assert "깊이 3, 학습률 0.05, 최소 자식 가중치 20, 구매 오프셋 repeat_buy를" in sentence
    older = {"tuning": {**data["tuning"], "xgb": {**data["tuning"]["xgb"], "chosen": {
        k: v for k, v in chosen.items() if k != OFFSET_KEY}}}}  # a metrics.json from before the offset was searched
    assert "최소 자식 가중치 20을" in tuning_sentences(older)[0]  # the particle after 20 (이십)
    table = xgb_tuning_table(data)
    assert [row[0] for row in table["rows"]] == ["1", "2"]
    assert table["rows"][0][-1] == "선택" and table["rows"][1][-1] == "기본값"
    assert table["rows"][0][4] == REPEAT_COLUMN and table["rows"][1][4] == XGB_DEFAULT[OFFSET_KEY]
    assert tuning_sentences({}) == [] and xgb_tuning_table({}) is None  # an older metrics.json
