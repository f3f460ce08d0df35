"""The evaluation set-up is built once and frozen; the verbs share one anchor parser and one
definition of their data options."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from clitools import run_cli

from forecaster import evaluation
from forecaster.datasets import load_dataset
from forecaster.verbs.options import DataOptions, DateOptions, with_options

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py


def test_the_setup_states_everything_before_the_run_and_the_run_leaves_it_unchanged():
    setup = evaluation.prepare(load_dataset("synthetic:300"), None, None, seed=0, n_resamples=100)
    assert setup.provider == "empirical" and setup.model and setup.prompt_version  # from the provider itself
    assert "llm" in setup.arms_not_run and "oracle" not in setup.arms_not_run  # synthetic data: the oracle runs
    with pytest.raises(dataclasses.FrozenInstanceError):
        setup.provider = "llm"  # type: ignore[misc]
    with pytest.raises(TypeError):
        setup.arms_not_run["oracle"] = "changed"  # type: ignore[index]
    def stated(s: evaluation.EvaluationSetup) -> tuple:
        return (s.test_anchors, s.scheme.model_dump_json(), s.representative_spend.tolist(), s.provider, s.model,
                s.prompt_version, s.seed, s.sample_customers, s.n_resamples, dict(s.arms_not_run), s.notes)

    before = stated(setup)
    evaluation.run(setup, setup.forecaster.forecast_fn())
    assert stated(setup) == before


def test_without_latent_parameters_the_setup_says_the_oracle_will_not_run(tmp_path):
    shop = tmp_path / "shop.csv"
    rows = [f"c{c},2024-{m:02d}-1{c % 9},{1000 + 37 * c * m}" for c in range(40) for m in range(1, 9)]
    shop.write_text("customer_id,ts,amount\n" + "\n".join(rows) + "\n")
    setup = evaluation.prepare(load_dataset(str(shop)), None, None, seed=0, n_resamples=100)
    assert setup.arms_not_run["oracle"] == evaluation.NO_LATENT


@pytest.mark.parametrize("verb", [["narrate", "C000001"], ["explain", "C000001"], ["batch", "--model", "nowhere"]])
def test_every_verb_reads_anchor_with_the_same_line(verb, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli([*verb, "--anchor", "January", "--data", "synthetic:300",
                            *(["--out", str(tmp_path / "b.csv")] if verb[0] == "batch" else [])], monkeypatch, capsys)
    assert code == 2
    assert err == "오류: --anchor 'January' is not a month of the form YYYY-MM (e.g. 1998-01)\n"


def test_a_data_options_bundle_becomes_its_options_in_place_and_comes_back_whole():
    def verb(out: str, data: DataOptions = DataOptions(), limit: int = 3) -> tuple:
        return out, data, limit

    command = with_options(verb)
    names = list(inspect.signature(command).parameters)
    assert names == ["out", "data", "customer_col", "date_col", "amount_col", "order_col", "currency",
                     "chunk_rows", "keep_partial_month", "data_end", "date_format", "date_range", "decimal_comma", "limit"]
    assert command("x", data="synthetic", data_end="2023-06-30", limit=5) == (
        "x", DataOptions(data="synthetic", dates=DateOptions(data_end="2023-06-30")), 5)
