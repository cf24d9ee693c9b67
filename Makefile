# Petrel's developer entry points.  Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

## run: create .venv, install Petrel and start the main job
run: $(STAMP)
	$(BIN)/petrel demo

## test: create .venv if missing, install with the test extras and run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff, mypy and the import-layer contracts
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: the micro-benchmarks (print JSON lines)
bench: $(STAMP)
	$(BIN)/python bench/codec.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
