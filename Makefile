# The README's commands. Each target creates .venv when it is missing, installs the CPU build of
# torch first (a looser requirement would pull a multi-GB GPU build), then the package.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
DEMO_DIR ?= demo-output

.PHONY: demo test test-slow lint perf clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)

# One stamp per set of extras; reinstalled when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH) -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	DEMO_DIR=$(DEMO_DIR) MARL_DATA_HOME=$(DEMO_DIR)/data bash scripts/demo.sh

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

perf: $(VENV)/.installed-test
	$(BIN)/marl-bench perf envs
	$(BIN)/marl-bench perf algos

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
