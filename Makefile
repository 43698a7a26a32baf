# The two commands of the README: `make lab` and `make test`. Both create .venv if it is
# missing and install the package with its dependencies (again when pyproject.toml changes).
#
# TORCH is what pip installs for PyTorch before anything else. Given (TORCH=... on the
# command line or in the environment, as CI's pinned build), it is used as it is; if not,
# the CPU build when the machine has no NVIDIA GPU (no nvidia-smi), else `torch` from PyPI
# (a CUDA build on Linux). Another CUDA version: the requirement and index that
# https://pytorch.org/get-started/locally/ gives, e.g.
#   make lab TORCH="torch --index-url https://download.pytorch.org/whl/cu126"

PYTHON ?= python3
VENV ?= .venv
NB ?=
COLD ?=
PORT ?= 8888
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.dmlnotes-installed
PIP_LOG := $(VENV)/pip-install.log
COPIES := my-notebooks
EXERCISES := exercises

ifeq ($(origin TORCH),undefined)
ifeq ($(shell command -v nvidia-smi 2>/dev/null),)
TORCH := torch --index-url https://download.pytorch.org/whl/cpu
TORCH_NOTE := no NVIDIA GPU found, so its CPU build: a few hundred MB, about 750 MB installed
else
TORCH := torch
TORCH_NOTE := an NVIDIA GPU found, so its CUDA build from PyPI: several GB with the CUDA libraries
endif
else
TORCH_NOTE := as asked: TORCH='$(TORCH)'
endif

.PHONY: lab refresh student lint test test-browser scan-widgets install notebooks bench bench-losses bench-metrics benchmark map slides site test-site clean

# Quiet pip (-q): the full log goes to $(PIP_LOG).
$(INSTALLED): pyproject.toml
	@echo "Installing dmlnotes and its dependencies into $(VENV); the first time, this downloads"
	@echo "PyTorch ($(TORCH_NOTE)) and takes several minutes. Full pip log: $(PIP_LOG)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --log $(PIP_LOG) $(TORCH)
	$(BIN)/python -m pip install -q --log $(PIP_LOG) -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

# JupyterLab refuses to run as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

# JupyterLab works on your copies in $(COPIES)/ (git-ignored), so `git pull` never conflicts with
# a saved lesson; new lessons are copied in, existing copies are left alone. Its log is quiet
# (warnings only) and the token is ours, so the one URL to open is the last line printed.
lab: $(INSTALLED)
	@$(BIN)/python -m dmlnotes.working_copies sync
	@token=$$($(BIN)/python -c "import secrets; print(secrets.token_hex(24))"); \
	echo "Open http://localhost:$(PORT)/lab?token=$$token   (Ctrl-C twice stops JupyterLab)"; \
	JUPYTER_TOKEN=$$token exec $(BIN)/python -m jupyter lab --ServerApp.root_dir=$(COPIES) \
		--ServerApp.port=$(PORT) --ServerApp.port_retries=0 --ServerApp.log_level=WARN --LabApp.log_level=WARN $(ALLOW_ROOT)

# Your copy of one lesson replaced by the committed one; the old copy goes to $(COPIES)/backups/.
refresh: $(INSTALLED)
	$(BIN)/python -m dmlnotes.working_copies refresh $(NB)

# Exercise versions of the lessons, the cells tagged "solution" removed, in $(EXERCISES)/ (git-ignored).
student: $(INSTALLED)
	$(BIN)/python -m dmlnotes.solutions student --out $(EXERCISES) $(NB)

# Lint first: ruff checks style and common bugs in seconds, before minutes of notebooks.
lint: $(INSTALLED)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# Each widget's callback also runs at both ends and the middle of every slider (dmlnotes.widget_scan).
test: lint
	DMLNOTES_PROGRESS=0 DMLNOTES_WIDGET_SCAN=3 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -q

# Every widget over every value of its sliders: warnings, errors and nan fail (minutes; not in make test).
scan-widgets: $(INSTALLED)
	DMLNOTES_PROGRESS=0 DMLNOTES_WIDGET_SCAN=all $(BIN)/python -m pytest $(or $(NB),notebooks) --nbval-lax --nbval-current-env -q

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
	$(BIN)/python -m dmlnotes.classroom.course_map  # the map shows the run times just measured

bench: $(INSTALLED)
	$(BIN)/python -m dmlnotes.notebook_runner bench $(if $(COLD),--cold) $(NB)

bench-losses: $(INSTALLED)
	$(BIN)/python -m dmlnotes.experiments.loss_benchmark

bench-metrics: $(INSTALLED)
	$(BIN)/python -m dmlnotes.experiments.metrics_benchmark

# Lesson 16's benchmark of every loss on glyphs (search, then 3 seeds); JOBS processes side by side.
JOBS ?= 2
benchmark: $(INSTALLED)
	$(BIN)/python -m dmlnotes.benchmark run --jobs $(JOBS)

# The course map in README.md, docs/course_map.svg and the plans' timings, from the notebooks' metadata.
map: $(INSTALLED)
	$(BIN)/python -m dmlnotes.classroom.course_map

# Offline reveal.js slides of every lesson in build/slides/ (npm fetches reveal.js and MathJax once).
slides: $(INSTALLED)
	$(BIN)/python -m dmlnotes.classroom.slides

# The course website in build/site/, from the committed notebooks (nothing is executed).
site: $(INSTALLED)
	$(BIN)/python -m dmlnotes.classroom.site

# Builds the slides and the site and checks them (pages, no internet); too slow for `make test`.
test-site: $(INSTALLED)
	$(BIN)/python -m dmlnotes.classroom.slides --fetch-only
	$(BIN)/python -m pytest tests/classroom -m site -q

clean:
	rm -rf $(VENV) .pytest_cache build $(EXERCISES)
