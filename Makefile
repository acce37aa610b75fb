# Two entry points (README): `make run` serves the after-sales app, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint schemas bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/tangram init
	$(BIN)/tangram import templates/aftersales
	$(BIN)/tangram demo templates/aftersales
	TANGRAM_COOKIE_SECURE=false $(BIN)/tangram serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schemas: install
	$(BIN)/python -m engine.schemas

bench: install
	$(BIN)/python bench/expr.py
	$(BIN)/python bench/bundle.py
	$(BIN)/python bench/records.py --quick

clean:
	rm -rf $(VENV) data .pytest_cache
