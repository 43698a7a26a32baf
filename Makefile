# The two commands of the README: `make lab` and `make test`. Both create .venv if it is
# missing and install the package with its dependencies (again when pyproject.toml changes).
#
# TORCH is what pip installs for PyTorch before anything else: plain `torch` from PyPI by
# default (a CUDA build on Linux). For a CPU-only build, or another CUDA version, pass
# the requirement and index that https://pytorch.org/get-started/locally/ gives, e.g.
#   make test TORCH="torch --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
NB ?=
COLD ?=
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.dmlnotes-installed

.PHONY: lab lint test test-browser install notebooks bench bench-losses bench-metrics clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

# JupyterLab refuses to run as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: $(INSTALLED)
	$(BIN)/python -m jupyter lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

# Lint first: ruff checks style and common bugs in seconds, before minutes of notebooks.
lint: $(INSTALLED)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

test: lint
	DMLNOTES_PROGRESS=0 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -q

# Every lesson's widgets and animations in JupyterLab in headless Chromium, offline (tests/browser).
# Minutes, not part of `make test`. Chromium comes from the system (Debian: apt-get install chromium),
# or set DMLNOTES_CHROMIUM to its executable; Playwright never downloads a browser here.
CHROMIUM ?= $(or $(DMLNOTES_CHROMIUM),$(shell command -v chromium || command -v chromium-browser))

BROWSER_INSTALLED := $(VENV)/.dmlnotes-browser-installed

$(BROWSER_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[dev,browser]"
	touch $(BROWSER_INSTALLED)

test-browser: $(BROWSER_INSTALLED)
	@test -n "$(CHROMIUM)" || { echo "make test-browser needs Chromium: apt-get install chromium (Debian/Ubuntu)," \
		"or set DMLNOTES_CHROMIUM=/path/to/chromium" >&2; exit 1; }
	DMLNOTES_CHROMIUM="$(CHROMIUM)" $(BIN)/python -m pytest tests/browser -q

notebooks: $(INSTALLED)
	$(BIN)/python -m dmlnotes.notebook_runner execute $(NB)

bench: $(INSTALLED)
	$(BIN)/python -m dmlnotes.notebook_runner bench $(if $(COLD),--cold) $(NB)

bench-losses: $(INSTALLED)
	$(BIN)/python -m dmlnotes.experiments.loss_benchmark

bench-metrics: $(INSTALLED)
	$(BIN)/python -m dmlnotes.experiments.metrics_benchmark

clean:
	rm -rf $(VENV) .pytest_cache
