# moe-operator developer entry points. Every target creates or reuses .venv/ first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv system-deps generate demo demo-down bench-operator test test-unit test-e2e lint-imports bench cluster-up cluster-down cluster-status clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: capacity reports, then the local cluster with the operator and an example deployed (left running)
demo: venv system-deps
	@bash deploy/local/demo.sh

## demo-down: stop the operator and the local cluster
demo-down:
	@for p in operator simulator; do if [ -f .local-cluster/$$p.pid ]; then kill $$(cat .local-cluster/$$p.pid) 2>/dev/null || true; rm -f .local-cluster/$$p.pid; fi; done
	@$(PYTHON) deploy/local/cluster.py down

## system-deps: Debian packages the local cluster needs (Prometheus, openssl); Go builds the rest
system-deps:
	@missing=""; for c in prometheus openssl; do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	@command -v go >/dev/null || { echo "Go is needed once to build the local cluster binaries"; exit 1; }

## cluster-up / cluster-down: the local control plane with simulated GPU nodes and Prometheus
cluster-up: venv system-deps
	$(BIN)/python deploy/local/cluster.py up

cluster-down:
	@$(PYTHON) deploy/local/cluster.py down

cluster-status:
	@$(PYTHON) deploy/local/cluster.py status

## generate: write generated files (the CRD) from their sources
generate: venv
	$(BIN)/moectl crd > crds/moedeployments.moe.inference.io.yaml
	$(BIN)/moectl crd --peering > crds/kopfpeerings.kopf.dev.yaml
	$(BIN)/moectl crd --scaler > crds/moerolescalers.moe.inference.io.yaml
	$(BIN)/moectl rules > deploy/monitoring/moe-rules.yaml
	$(BIN)/moectl rules --prometheus-rule > deploy/monitoring/moe-prometheusrule.yaml
	$(BIN)/moectl dashboard > charts/moe-operator/dashboards/moe-deployment.json
	$(BIN)/moectl rules > charts/moe-operator/files/moe-rules.yaml
	mkdir -p charts/moe-operator/crds && cp crds/*.yaml charts/moe-operator/crds/

lint-imports: venv
	$(BIN)/lint-imports

## test: layering contract, unit tests, then end-to-end tests on the local cluster (built and started as needed)
test: venv system-deps lint-imports
	$(BIN)/pytest -m 'not e2e'
	$(BIN)/pytest -m e2e

## test-e2e: only the end-to-end tests
test-e2e: venv system-deps
	$(BIN)/pytest -m e2e

## test-unit: only the fast tests (no cluster)
test-unit: venv lint-imports
	$(BIN)/pytest -m 'not e2e'

bench: venv
	$(BIN)/python bench/validate_latency.py

bench-operator: venv system-deps
	$(BIN)/python bench/operator_bench.py --background 50

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
