# Quick start: `make demo` (set up and run the demo) and `make test` (set up and run the tests).
# Set-up finds a Python >= 3.12 (.python-version lets pyenv/uv pick it), creates .venv, installs.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests read the real runs from ../shared/data when it is there (offline dataset loader).
export BAYESCALE_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export MPLBACKEND := Agg

.PHONY: demo test test-fast lint docs examples setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/find-python.sh > /dev/null || exit 1
	@if [ ! -x $(PY) ]; then \
		PYBIN=$$(bash scripts/find-python.sh); echo "creating $(VENV) with $$PYBIN" >&2; \
		$$PYBIN -m venv $(VENV) || { echo "error: could not create $(VENV) (on Debian: apt-get install python3-venv)" >&2; exit 1; }; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayescale demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The documentation site (Sphinx + MyST); warnings are errors.
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Every example with small draw counts (figures in examples_output/).
EXAMPLE_DRAWS ?= 200
examples: $(STAMP)
	@set -e; for f in examples/*.py; do echo "== $$f" >&2; $(PY) $$f --draws $(EXAMPLE_DRAWS) --out-dir examples_output; done

lint: $(STAMP)
	$(VENV)/bin/ruff check bayescale tests benchmarks examples
	$(VENV)/bin/ruff format --check bayescale tests benchmarks examples

clean:
	rm -rf $(VENV) bayescale-demo .pytest_cache docs/_build examples_output
