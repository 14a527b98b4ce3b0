# The two commands of the README: `make demo` and `make test`. Everything else is their plumbing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-deps venv demo workbench dry-run-demo test lint typecheck unit bench soak clean

setup: system-deps venv

system-deps:
	@bash tools/install-system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -m pip install -q -e '.[pipeline,dev]' 2>&1 | grep -vE '^WARNING: Location|BuildBackendWarning|^\s*$$' || true
	@$(BIN)/python -c 'import validators, flows, lxml, saxonche, pypdf, magic' 
	@touch $(STAMP)

venv: $(STAMP)

demo: setup
	@$(BIN)/python -m flows.devharness.demo

# The demo, then its instructors' workbench kept open until Ctrl-C.
workbench: setup
	@DEMO_KEEP=1 $(BIN)/python -m flows.devharness.demo

dry-run-demo: setup
	@$(BIN)/python tools/demo.py

test: setup
	@bash tools/install-system-deps.sh --tests
	@$(BIN)/ruff check .
	@$(BIN)/mypy
	@$(BIN)/python -m pytest -n 2 --dist loadfile

lint:
	@$(BIN)/ruff check .

typecheck:
	@$(BIN)/mypy

unit: venv
	@$(BIN)/python -m pytest -x -q

bench: setup
	@$(BIN)/python benchmarks/run_all.py

soak: setup
	@$(BIN)/python benchmarks/soak.py --json var/soak.json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
