# Two commands do everything on a fresh machine (see README):
#   make pipeline   set up .venv, run the whole pipeline on the embedded (local) backend, build docs/
#   make test       set up .venv with the test tools and run the test suite
# and one for maintainers:
#   make lock       remake every lock file from pyproject.toml (after changing a dependency there)
#
# Every install is from a lock file with hashes required (pip --require-hashes): the same packages,
# byte for byte, on every machine; pip itself first (requirements/pip.txt, see tools/lock.py). tools/venv.sh picks the interpreter (PYTHON=... to choose one).
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
BACKFILL_ARGS ?=

.PHONY: pipeline test lint lock bench clean

$(BIN)/python:
	tools/venv.sh $(VENV)

$(BIN)/.runtime: $(BIN)/python requirements/pip.txt requirements.txt pyproject.toml
	$(PIP) install --require-hashes -r requirements/pip.txt
	$(PIP) install --require-hashes -r requirements.txt
	$(PIP) install --no-deps -e .
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements/dev.txt
	$(PIP) install --require-hashes -r requirements/dev.txt
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

lock: $(BIN)/.dev
	$(BIN)/python tools/lock.py

bench: $(BIN)/.dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/store_growth.py
	$(BIN)/python bench/store_decade.py
	$(BIN)/python bench/calibration.py
	$(BIN)/python bench/calibration.py --stage choice
	$(BIN)/python bench/train.py
	$(BIN)/python bench/envs.py
	$(BIN)/python bench/health.py

clean:
	rm -rf $(VENV)
