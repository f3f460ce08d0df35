# `make demo` and `make test` are the two set-up commands: each creates .venv when absent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean record-cassettes

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
	$(BIN)/python bench/btyd_fit.py

clean:
	rm -rf $(VENV) demo-report

# Re-record the LLM cassettes against a real endpoint (needs OPENAI_API_KEY and
# FORECASTER_MODEL; see docs/llm.md). CI never records.
record-cassettes: $(STAMP)
	FORECASTER_RECORD=1 $(BIN)/python -m pytest tests/test_llm_cassettes.py
