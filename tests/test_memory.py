"""The peak-memory estimate of `forecaster data` (forecaster/memory.py) and its refusal."""

import pytest
from clitools import run_cli

from forecaster import memory
from forecaster.errors import UserError

DATA = "synthetic:300:2"


def test_every_estimate_grows_with_customers_and_transactions():
    small = memory.estimate(memory.Workload(100_000, 24, 1_000_000))
    large = memory.estimate(memory.Workload(1_000_000, 24, 10_000_000))
    assert all(large[verb] > small[verb] for verb in small)


def test_sampling_and_smaller_chunks_lower_their_verbs_estimates():
    whole = memory.estimate(memory.Workload(1_000_000, 24, 10_000_000))
    bounded = memory.estimate(memory.Workload(1_000_000, 24, 10_000_000, sample_customers=20_000,
                                              chunk_customers=10_000))
    assert bounded["train"] < whole["train"] and bounded["evaluate"] < whole["evaluate"]
    assert bounded["batch"] < whole["batch"] and bounded["data"] == whole["data"]


@pytest.mark.parametrize("text, size", [("8G", 8 * 1024 ** 3), ("512MB", 512 * 1024 ** 2), ("1.5GiB", 3 * 1024 ** 3 // 2),
                                        ("2000", 2000), ("64 k", 64 * 1024)])
def test_sizes_are_read_with_their_units(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "8X", "-1G", "0"])
def test_a_size_that_is_not_one_is_refused(text):
    with pytest.raises(UserError, match="--memory-limit"):
        memory.parse_size(text)


def test_available_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n")
    assert memory.available_bytes(meminfo) == 20_000_000 * 1024
    assert memory.available_bytes(tmp_path / "missing") is None


def test_the_refusal_names_the_verb_and_the_flag_to_change():
    work = memory.Workload(1_000_000, 12, 2_000_000, chunk_customers=1_000_000)
    estimates = memory.estimate(work)
    budget = int(estimates["data"] + 1)  # reading fits, every other verb does not
    with pytest.raises(UserError, match="forecaster train.*--sample-customers 값\\(지금 전체 고객\\)"):
        memory.check_fits(estimates, budget, work, stated=True)
    fits = {verb: need for verb, need in estimates.items() if verb in ("data", "batch")}
    with pytest.raises(UserError, match="forecaster batch.*--chunk-customers 값\\(지금 1,000,000\\)"):
        memory.check_fits(fits, budget, work, stated=True)


def test_data_reports_the_estimates(monkeypatch, capsys):
    code, out, err = run_cli(["data", "--data", DATA, "--memory-limit", "64G"], monkeypatch, capsys)
    assert code == 0, err
    assert "예상 최대 메모리" in out and "forecaster batch" in out and "64.0 GB (--memory-limit)" in out


def test_data_refuses_in_one_line_when_a_run_would_not_fit(monkeypatch, capsys):
    code, _, err = run_cli(["data", "--data", DATA, "--memory-limit", "10M"], monkeypatch, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("오류: ") and "--memory-limit 10 MB" in err


def test_a_bad_memory_limit_fails_before_the_data_is_loaded(monkeypatch, capsys):
    monkeypatch.setattr("forecaster.verbs.data.dataset_from_options", lambda *a: pytest.fail("data loaded"))
    code, _, err = run_cli(["data", "--data", DATA, "--memory-limit", "lots"], monkeypatch, capsys)
    assert code == 2 and err.startswith("오류: --memory-limit lots")


def test_data_read_in_chunks_is_batched_a_spill_file_at_a_time_in_far_less_memory():
    """10M customers and 106M rows (bench/scale.py's shop): the whole-panel batch's estimate
    is far above 8 GB, the one a spill file at a time below it, and it falls with --chunk-rows."""
    whole = memory.estimate(memory.Workload(10_000_000, 36, 106_000_000))
    files = memory.estimate(memory.Workload(10_000_000, 36, 106_000_000, chunk_rows=1_000_000))
    smaller = memory.estimate(memory.Workload(10_000_000, 36, 106_000_000, chunk_rows=250_000))
    assert whole["batch"] > 12 * memory.GB and files["batch"] < 8 * memory.GB and smaller["batch"] < files["batch"]
    work = memory.Workload(10_000_000, 36, 106_000_000, chunk_rows=1_000_000)
    with pytest.raises(UserError, match="forecaster batch.*--chunk-rows 값\\(지금 1,000,000\\)"):
        memory.check_fits({"data": 0.0, "batch": files["batch"]}, memory.GB, work, stated=True)
