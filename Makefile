# moe-operator developer entry points. Every target creates or reuses .venv/ first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-unit test-e2e lint-imports bench cluster-up cluster-down clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: validate every bundled example and print its capacity report
demo: venv
	@for f in examples/*.yaml; do \
	  echo "=== moectl validate -f $$f"; \
	  $(BIN)/moectl validate -f $$f; rc=$$?; \
	  [ $$rc -le 1 ] || exit $$rc; \
	done; true

lint-imports: venv
	$(BIN)/lint-imports

## test: layering contract, unit tests and end-to-end tests on the local cluster
test: venv lint-imports
	$(BIN)/pytest

## test-unit: only the fast tests (no cluster)
test-unit: venv lint-imports
	$(BIN)/pytest -m 'not e2e'

bench: venv
	$(BIN)/python bench/validate_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
