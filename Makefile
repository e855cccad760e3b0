# Taskloom — every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.taskloom-installed
PKG_ROOTS := $(wildcard libs/*/__init__.py services/*/__init__.py)
PYTEST_ARGS ?=
REQUEST ?=

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint fmt bench schemas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py $(PKG_ROOTS)
	$(PIP) install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install taskloom with its dev tools

run: install ## start the embedded stack and run the demo (Ctrl-C stops everything)
	$(PY) -m taskloom.cli dev --demo $(if $(REQUEST),--request $(REQUEST),)

test: install ## run the whole suite against real NATS and PostgreSQL
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install ## the suite without the slow fault-injection tests
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

.build/mypy: $(PKG_ROOTS)
	@rm -rf .build/mypy && mkdir -p .build/mypy/taskloom
	@for d in libs/* services/*; do [ -f $$d/__init__.py ] && ln -s ../../../$$d .build/mypy/taskloom/$$(basename $$d); done; true

lint: install .build/mypy ## ruff and mypy, both must be clean
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check libs services tests bench
	cd .build/mypy && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p taskloom

fmt: install ## format the code and fix what ruff can
	$(VENV)/bin/ruff format libs services tests bench
	$(VENV)/bin/ruff check --fix .

schemas: install ## regenerate the committed JSON Schemas of the contracts
	$(PY) -m taskloom.contracts libs/contracts/schemas

bench: install ## run every benchmark and print its figures (Celery's anchor too, with Redis)
	@$(PIP) install -q -e '.[dev,anchors]'
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## remove the virtualenv, build output and the embedded stack's data
	rm -rf $(VENV) .build build *.egg-info .taskloom .pytest_cache .mypy_cache .ruff_cache
