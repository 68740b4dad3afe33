# The two commands: `make demo` (the main job) and `make test` (the test suite). Both run
# `make setup` first, which installs and starts whatever is missing (idempotent).
SHELL := /bin/bash
VENV  := .venv
TWIN  := $(VENV)/bin/twin
PYTEST_ARGS ?=

.PHONY: setup image-torch demo lint test test-unit test-stock-kernel doctor clean campaign bench

setup:
	@bash scripts/setup.sh

# The optional worker image with PyTorch (CPU) for `--backend gloo`; also built on first use.
image-torch: setup
	$(VENV)/bin/python -m twin.host.images torch

demo: setup
	$(TWIN) demo

# ruff (style, imports, likely bugs) and mypy (types), as configured in pyproject.toml; make test runs it first
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(VENV)/bin/python -m pytest -m "not integration and not reliability" $(PYTEST_ARGS)

# The stock-kernel path (netem links, the OVS kernel datapath, systemd's dockerd and OVS) in a
# Debian 12 VM booted here with QEMU, provisioned as the Vagrantfile provisions
# (docs/stock-kernel.md). Takes the machine lock itself.
test-stock-kernel: setup
	@bash scripts/stock-kernel/run.sh

doctor: setup
	$(TWIN) doctor

bench: setup
	$(VENV)/bin/python benchmarks/bringup.py
	$(VENV)/bin/python benchmarks/link_fidelity.py
	$(VENV)/bin/python benchmarks/collectives.py

# The full campaign: the reference sweep on ci-2site, the determinism A/B, and the 40-city fabric.
campaign: setup
	$(TWIN) campaign run campaigns/fntf-reference.yaml
	$(TWIN) campaign report results/campaigns/fntf-reference.csv
	$(TWIN) campaign run campaigns/determinism.yaml
	$(TWIN) campaign report results/campaigns/determinism.csv
	$(TWIN) campaign run campaigns/fntf-40city.yaml
	$(TWIN) campaign report results/campaigns/fntf-40city.csv

clean:
	-$(TWIN) clean
