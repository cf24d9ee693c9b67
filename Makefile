# Petrel's developer entry points.  Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed-run
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: run test lint docs bench bench-compare clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The broker needs only Petrel and uvloop; the test and lint tools come with `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[fast]'
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,fast]'
	touch $(STAMP) $(RUN_STAMP) $(DOCS_STAMP)

# The site needs only Petrel and MkDocs with its plugins (the docs extra).
$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	touch $(DOCS_STAMP)

## run: create .venv, install Petrel (with uvloop only) and start the broker on 127.0.0.1:5672
run: $(RUN_STAMP)
	$(BIN)/petrel broker

## test: create .venv if missing, install with the test extras and run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff, mypy and the import-layer contracts
lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples docs/tooling
	$(BIN)/ruff format --check src tests bench examples docs/tooling
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/engine
	$(BIN)/lint-imports

## docs: build the documentation site into site/ (mkdocs.yml) with --strict: a broken link,
##       a missing reference or a docstring mkdocstrings cannot parse fails it
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## bench: the benchmarks (print JSON lines); bench/broker.py needs Proton's C examples
bench: $(STAMP)
	$(BIN)/python bench/codec.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/selector.py
	$(BIN)/python bench/store.py --count 100000
	$(BIN)/python bench/broker.py

## bench-compare: Petrel's broker vs RabbitMQ and Proton's C broker (installs rabbitmq-server
##                if missing; needs g++ and Debian's Proton C/C++ example packages)
bench-compare: $(STAMP)
	$(BIN)/python bench/compare.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist site
