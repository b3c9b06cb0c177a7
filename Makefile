# Two commands do everything on a fresh machine (see README):
#   make pipeline   set up .venv, run the whole pipeline on the embedded (local) backend, build docs/
#   make test       set up .venv with the test tools and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKFILL_ARGS ?=

.PHONY: pipeline test lint bench clean

$(BIN)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

pipeline: $(BIN)/.runtime
	$(BIN)/python feature_backfill.py $(BACKFILL_ARGS)
	$(BIN)/python feature_pipeline.py
	$(BIN)/python training_pipeline.py
	$(BIN)/python inference_pipeline.py
	$(BIN)/python plots.py
	$(BIN)/python -m cryptocast status

test: $(BIN)/.dev
	$(BIN)/python -m pytest

lint: $(BIN)/.dev
	$(BIN)/ruff check .

bench: $(BIN)/.dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/calibration.py
	$(BIN)/python bench/train.py

clean:
	rm -rf $(VENV)
