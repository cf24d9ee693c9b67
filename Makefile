# Petrel's developer entry points.  Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
RUN_STAMP := $(VENV)/.installed-run
DOCS_STAMP := $(VENV)/.installed-docs
ACCEL_STAMP := $(VENV)/.built-accel
# The modules mypyc compiles, as src/petrel/_accel.py lists them: a change rebuilds.
ACCEL_SOURCES := $(shell $(PYTHON) -c "import runpy; print(' '.join('src/' + m.replace('.', '/') + '.py' for m in runpy.run_path('src/petrel/_accel.py')['COMPILED_MODULES']))") \
                 src/petrel/_accel.py
# pytest-xdist workers for `make test` and `make test-pure`: one pytest process (with the
# brokers and peers it starts) keeps about one core busy, two keep both.  A test file stays
# in one worker (--dist loadfile: its module fixtures start once), and files go out in
# collection order, where tests/conftest.py puts those with `slow` tests first (else the
# longest could start last).  PYTEST_WORKERS=0 runs in one process, as plain pytest does.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
# The tests the pure-Python run repeats: everything the compiled modules are made from.
PURE_TESTS := tests/codec tests/spec tests/message tests/engine tests/fuzz tests/test_accel.py \
              tests/broker/test_queues.py tests/broker/test_queue_costs.py \
              tests/broker/test_flow.py tests/router/test_forwarding.py

.PHONY: run test test-pure lint docs accel bench bench-compare clean

# The venv gets uv first: it installs the same packages from the same index as pip, about
# a minute faster for the test extras on a fresh machine (pip unpacks and byte-compiles
# ~700 MB one file at a time).  --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE
# is set (as on CI), nothing else writes the .pyc files, and every broker and client the
# tests start would compile its imports again (the suite took a fifth longer).  Where uv
# cannot be had or fails, pip does the install.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	-$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv>=0.4,<1'

# `$(call install,$(EXTRAS))`: Petrel, editable, with those extras (a variable, since `call`
# would split a literal list at its commas).
DEV_EXTRAS := dev,fast
ACCEL_EXTRAS := fast,accel
install = $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[$(1)]' \
	|| $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(1)]'

# The broker needs only Petrel and uvloop; the test and lint tools come with `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(call install,fast)
	touch $(RUN_STAMP)

# The suite's Proton is built from its sdist, with Proton's own SASL even where Cyrus SASL's
# headers are installed (see tests/helpers/proton_own_sasl.py): the tests expect that one.
OWN_SASL_PC := build/pkgconfig-own-sasl

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python tests/helpers/proton_own_sasl.py $(OWN_SASL_PC)
	export PKG_CONFIG_LIBDIR=$(CURDIR)/$(OWN_SASL_PC); $(call install,$(DEV_EXTRAS))
	$(BIN)/python tests/helpers/proton_own_sasl.py --check $(OWN_SASL_PC)
	touch $(STAMP) $(RUN_STAMP) $(DOCS_STAMP)

# The site needs only Petrel and MkDocs with its plugins (the docs extra).
$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(call install,docs)
	touch $(DOCS_STAMP)

# The compiled hot path (mypyc, in place; see hatch_build.py).  Without a C compiler it
# says so and the pure-Python modules run: nothing else changes.
$(ACCEL_STAMP): hatch_build.py $(ACCEL_SOURCES) | $(RUN_STAMP)
	$(call install,$(ACCEL_EXTRAS))
	$(BIN)/python hatch_build.py
	touch $(ACCEL_STAMP)

## accel: compile the hot path with mypyc (about 1.5 minutes; `make run` and `make test` do it)
accel: $(ACCEL_STAMP)

## run: create .venv, install Petrel (with uvloop), compile the hot path, start the broker on
##      127.0.0.1:5672
run: $(RUN_STAMP) $(ACCEL_STAMP)
	$(BIN)/petrel broker

## test: create .venv if missing, install with the test extras and run the whole suite
##       (compiled), then the codec, engine and message tests again on the pure-Python path;
##       in two pytest-xdist workers (`make test PYTEST_WORKERS=0`: in one process)
test: $(STAMP) $(ACCEL_STAMP)
	$(BIN)/python -m pytest $(PYTEST_XDIST)
	$(MAKE) test-pure

## test-pure: the tests of the compiled modules, with PETREL_PURE_PYTHON=1
test-pure: $(STAMP)
	PETREL_PURE_PYTHON=1 $(BIN)/python -m pytest -q $(PYTEST_XDIST) $(PURE_TESTS)

## lint: ruff, mypy and the import-layer contracts
lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples docs/tooling hatch_build.py
	$(BIN)/ruff format --check src tests bench examples docs/tooling hatch_build.py
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/engine
	$(BIN)/mypy --strict --ignore-missing-imports hatch_build.py  # setuptools, hatchling: no stubs here
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
	-$(PYTHON) hatch_build.py --clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist site
