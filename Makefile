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

.PHONY: lab lint test install notebooks bench bench-losses bench-metrics benchmark map slides site test-site clean

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
	rm -rf $(VENV) .pytest_cache build
