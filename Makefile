# Two commands do everything on a fresh machine:  `make run`  and  `make test`.
# The virtual environment is created (and refreshed when pyproject.toml changes) on demand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint browser bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,sweep,profile]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the main job: a 100-week baseline run, results in results/run/
	$(BIN)/defection run

browser: $(STAMP)  ## Chromium and the page's front-end files for the browser tests (nothing is downloaded at run time)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	$(BIN)/python -m viz.assets

test: $(STAMP) browser  ## the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/sweep_benchmark.py

clean:
	rm -rf $(VENV) results .pytest_cache
