# The two commands: `make demo` (the main job) and `make test` (the test suite). Both run
# `make setup` first, which installs and starts whatever is missing (idempotent).
SHELL := /bin/bash
VENV  := .venv
TWIN  := $(VENV)/bin/twin
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit doctor clean campaign bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/python -m twin.demo

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(VENV)/bin/python -m pytest -m "not integration and not reliability" $(PYTEST_ARGS)

doctor: setup
	$(TWIN) doctor

bench: setup
	$(VENV)/bin/python benchmarks/bringup.py

clean:
	-$(TWIN) clean
