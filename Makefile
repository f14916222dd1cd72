# `make test` and `make demo` build .venv from nothing when it is missing (or pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PACK_VENV := policies/venv
PACK_STAMP := $(PACK_VENV)/.installed

.PHONY: test demo rehearsal check lint typecheck fast slow slow-program-and-pack slow-helper bench clean \
	cluster-tools e2e

# Pinned versions first (requirements.lock), then the project itself, editable, without
# resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e '.[kubernetes,plots,preview,test]'
	touch $(STAMP)

# The policy pack's own environment, where the engine's shim starts it (PulumiPolicy.yaml).
$(PACK_STAMP): policies/requirements.txt requirements.lock
	test -x $(PACK_VENV)/bin/python || $(PYTHON) -m venv $(PACK_VENV)
	$(PACK_VENV)/bin/python -m pip install --quiet -r policies/requirements.txt -c requirements.lock
	touch $(PACK_STAMP)

# The fast layers first (lint, types, the workflows, pure logic in process), then the program,
# the pack and the helper. CI on GitHub runs the same targets as separate jobs. The helper's
# Kubernetes tests run on a real kube-apiserver, etcd and Traefik (one per pytest worker) from
# `make cluster-tools`: without them they are skipped saying so, or fail where
# CUTOVER_TESTS_REQUIRE_CLUSTER is set (.ci/run builds the tools first and sets it).
test: check fast slow

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/zizmor --offline --min-severity medium .github/workflows

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers: the state machine alone takes ~5 s of the layer's ~16 s of tests.
fast: $(STAMP)
	$(BIN)/pytest -q -n 2 tests/unit

# Four workers on two cores: most of these tests wait on servers and subprocesses (measured:
# 377 s against 425 s with three, the whole suite passing either way).
slow: $(STAMP) $(PACK_STAMP)
	$(BIN)/pytest -n 4 -m "not cluster" tests/program tests/pack tests/helper

slow-program-and-pack: $(STAMP) $(PACK_STAMP)
	$(BIN)/pytest -n 4 tests/program tests/pack

slow-helper: $(STAMP) $(PACK_STAMP)
	$(BIN)/pytest -n 4 -m "not cluster" tests/helper

# The real tools (kube-apiserver, etcd, the Gateway API CRDs, pulumi, its Python language host,
# pulumi-resource-kubernetes, Traefik) built from the Go module proxy into a cache keyed by
# version (CUTOVER_TOOLS_CACHE, default ~/.cache/cutover-tools); a second run builds nothing.
cluster-tools:
	bash .ci/cluster-tools

# The real layer: tests/e2e against those tools. Kept out of `test`: the first build of the
# tools takes tens of minutes. A tool the proxy refuses fails cluster-tools naming it; the e2e
# tests still run, and those needing it fail saying what is missing.
e2e: $(STAMP) $(PACK_STAMP)
	-bash .ci/cluster-tools
	$(BIN)/pytest -n 2 -m cluster tests/helper
	$(BIN)/pytest tests/e2e

# A rehearsal of the prod stack to try the README's commands against (`python -m rehearsal
# down` stops it).
rehearsal: $(STAMP)
	$(BIN)/python -m rehearsal up --per-second 400

demo: $(STAMP) $(PACK_STAMP)
	$(BIN)/python -m rehearsal.demo

bench: $(STAMP) $(PACK_STAMP)
	$(BIN)/python benchmarks/program.py
	$(BIN)/python benchmarks/preview.py
	$(BIN)/python benchmarks/rollback.py
	$(BIN)/python benchmarks/gateway_rollback.py
	$(BIN)/python benchmarks/watchdog.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/gates.py
	$(BIN)/python benchmarks/install.py
	$(BIN)/python benchmarks/kpis.py

clean:
	rm -rf $(VENV) $(PACK_VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
