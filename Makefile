# One command runner for developers and CI (.ci/run calls `make test`).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# The CPU build of PyTorch the tests use for tensor inputs; an unpinned "torch" would pull GBs of CUDA.
TORCH ?= torch==2.13.0

.PHONY: install example dev services lint typecheck test bench bench-mlflow clean

install:  ## install runlane itself
	$(PIP) install -q -e .

example: install  ## log a few runs into ./.runlane and show how to look at them
	$(PYTHON) examples/quickstart.py

# torch first: the integrations' frameworks then find it and leave it as it is (no CUDA build pulled in).
dev:  ## install runlane with everything the tests need, the integrations' frameworks included
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e '.[dev,lightning,transformers,keras]'

services:  ## what the tests need outside Python: Debian's Chromium, and PostgreSQL at 127.0.0.1:5432
	.ci/chromium
	.ci/postgres

lint:
	$(PYTHON) -m ruff check runlane tests benchmarks examples
	$(PYTHON) -m ruff format --check runlane tests benchmarks examples

typecheck:
	$(PYTHON) -m mypy

test: dev services lint typecheck  ## install test dependencies and services, then lint, type-check and run every test
	$(PYTHON) -m pytest

bench: install  ## measure against SPEC.md section 7 (results go in benchmarks/README.md)
	$(PIP) install -q -e ".[postgres]"  # bench_store.py compares the SQLite and PostgreSQL stores
	$(PYTHON) benchmarks/bench_core.py
	$(PYTHON) benchmarks/bench_history.py
	$(PYTHON) benchmarks/bench_listing.py
	$(PYTHON) benchmarks/bench_writer.py
	$(PYTHON) benchmarks/bench_server.py
	$(PYTHON) benchmarks/bench_store.py
	$(PYTHON) benchmarks/bench_ui.py

bench-mlflow: install  ## the real mlflow client against runlane's server and `mlflow server` (mlflow goes into .mlflow-env)
	test -x .mlflow-env/bin/mlflow || ($(PYTHON) -m venv .mlflow-env && .mlflow-env/bin/pip install -q mlflow)
	$(PYTHON) benchmarks/bench_mlflow.py --mlflow-env .mlflow-env

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .runlane
