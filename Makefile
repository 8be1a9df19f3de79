# One command runner for developers and CI (.ci/run calls `make test`).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU build of PyTorch the tests use for tensor inputs; an unpinned "torch" would pull GBs of CUDA.
TORCH ?= torch==2.13.0

.PHONY: install example dev lint typecheck test bench clean

install:  ## install runlane itself
	$(PIP) install -q -e .

example: install  ## log a few runs into ./.runlane and show how to look at them
	$(PYTHON) examples/quickstart.py

dev:  ## install runlane with everything the tests need
	$(PIP) install -q -e '.[dev]'
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH)"

lint:
	$(PYTHON) -m ruff check runlane tests benchmarks examples
	$(PYTHON) -m ruff format --check runlane tests benchmarks examples

typecheck:
	$(PYTHON) -m mypy

test: dev lint typecheck  ## install test dependencies, then lint, type-check and run every test
	$(PYTHON) -m pytest

bench: install  ## measure against SPEC.md section 7 (results go in benchmarks/README.md)
	$(PYTHON) benchmarks/bench_core.py
	$(PYTHON) benchmarks/bench_history.py
	$(PYTHON) benchmarks/bench_listing.py
	$(PYTHON) benchmarks/bench_writer.py
	$(PYTHON) benchmarks/bench_server.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .runlane
