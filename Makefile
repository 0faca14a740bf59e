# Two commands for a fresh machine: `make serve` runs a node, `make test` runs every check.
# `serve` installs agentlog with its serving dependencies only; `test` adds the dev extra.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
SERVE_STAMP := $(VENV)/.installed-serve-$(SUM)
DEV_STAMP := $(VENV)/.installed-dev-$(SUM)

.PHONY: install install-dev serve test lint typecheck unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(SERVE_STAMP) $@

install: $(SERVE_STAMP)

install-dev: $(DEV_STAMP)

serve: install
	$(BIN)/agentlog serve

lint: install-dev
	$(BIN)/ruff check .

typecheck: install-dev
	$(BIN)/mypy

unit: install-dev
	$(BIN)/python -m pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
