# The README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-unit lint typecheck install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The modules' bytecode is written at install: an editable install leaves it to the first
# start, and where PYTHONDONTWRITEBYTECODE is set every start compiles every module again.
BYTECODE := $(BIN)/python -m bench._bytecode

install: $(BIN)/python
	$(BIN)/pip install -qq -e . --config-settings editable_mode=strict
	$(BYTECODE)

install-test: $(BIN)/python
	$(BIN)/pip install -qq -e '.[test]' --config-settings editable_mode=strict
	$(BYTECODE)

demo: install
	$(BIN)/slatrail demo

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p slatrail.domain -p slatrail.projections -p slatrail.application \
		-p slatrail.consumers -p slatrail.infra

# Property tests run a tenth of their examples here unless HYPOTHESIS_PROFILE=ci (.ci/run sets
# it; tests/hypothesis_profiles.py). `make test-unit`: the in-process tests alone.
test: install-test
	bash .ci/ensure-system-deps
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q

test-unit: install-test
	$(BIN)/python -m pytest -q tests/unit

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
