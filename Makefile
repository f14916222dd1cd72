# `make test` and `make demo` build .venv from nothing when it is missing (or pyproject.toml changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

typecheck: $(STAMP)
	$(BIN)/mypy

# The fast layer first (pure logic, in process), then the program, the pack and the helper.
unit: $(STAMP)
	$(BIN)/pytest -q tests/unit
	$(BIN)/pytest -n 3 tests/program tests/pack tests/helper

demo: $(STAMP)
	$(BIN)/python -m cutover.demo

bench: $(STAMP)
	$(BIN)/python benchmarks/program.py
	$(BIN)/python benchmarks/preview.py
	$(BIN)/python benchmarks/rollback.py
	$(BIN)/python benchmarks/gateway_rollback.py
	$(BIN)/python benchmarks/watchdog.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
