# The two commands: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help setup demo test test-fast up lint typecheck ci clean package vendor

STAGE ?= prod

help:
	@echo "make demo   start the local stack, upload the corpus photos, show the results"
	@echo "make test   the whole suite: unit, functional (moto), end-to-end (local stack)"
	@echo "make up     run the local stack in the foreground (Ctrl-C stops it)"
	@echo "make lint   ruff and mypy"
	@echo "make vendor   fill vendor/ (Pillow-SIMD + plugins for Lambda): then chalice package/deploy --stage S work"
	@echo "make package  make vendor, then build and check the Lambda package (STAGE=prod) into build/lambda/package"

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests/unit tests/processors -q

up: setup
	$(PY) -m local_stack

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

vendor: setup
	$(PY) -m infra.package_lambda --vendor-only

package: setup
	$(PY) scripts/package_lambda.py --stage $(STAGE)

ci: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output build/lambda vendor
