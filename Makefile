# Two commands do everything on a fresh machine:  `make run`  and  `make test`.
# The virtual environment is created (and refreshed when pyproject.toml or the lock file
# changes) on demand, pinned by requirements.lock: the environment REPORT.md was made in.
PYTHON ?= python3
comma  := ,
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := all,test,profile

.PHONY: install run test typecheck params lint browser bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## the main job: a 100-week baseline run, results in results/run/
	$(BIN)/defection run

browser: $(STAMP)  ## Chromium and the page's front-end files for the browser tests (nothing is downloaded at run time)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm)
	$(BIN)/python -m isk_defection.viz.assets

test: $(STAMP) browser  ## the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	.ci/typecheck
	$(BIN)/python -m pytest

typecheck: $(STAMP)  ## mypy over the package (settings in pyproject.toml; see .ci/typecheck)
	.ci/typecheck

params: $(STAMP)  ## regenerate the typed Params class in model/parameters.py from its registry
	$(BIN)/python -c "from isk_defection.model.parameters import write_params_class as w; w()"

lock: $(STAMP)  ## re-resolve requirements.lock from pyproject.toml (newest versions allowed)
	$(BIN)/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
		--python-version 3.12 --python-platform x86_64-unknown-linux-gnu \
		--custom-compile-command "make lock" -o requirements.lock

bench: $(STAMP)
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/sweep_benchmark.py

clean:
	rm -rf $(VENV) results .pytest_cache
