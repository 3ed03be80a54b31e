# The suite's two commands (see README):
#   make run    install into .venv, execute every notebook in place (each in the profile of its
#               committed outputs unless PROFILE=smoke|quick|full),
#               refresh figures/ and the README's notebook and results tables
#   make train  install into .venv, train the runs without a record as Ray tasks (local Ray, or the
#               cluster $RAY_ADDRESS names), then render those notebooks from the records
#   make test   install into .venv, lint, unit tests, nbval of every notebook in the smoke profile
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PROFILE empty: each notebook runs in the profile of its committed outputs (its metadata)
PROFILE ?= $(SUITE_PROFILE)
NOTEBOOKS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: install run train test lint unit nbval table clean-results format

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (suite)" >/dev/null
	touch $@

install: $(VENV)/.installed

run: install
	SUITE_PROFILE=$(PROFILE) $(PY) scripts/run_notebooks.py $(NOTEBOOKS)
	$(PY) scripts/colab.py >/dev/null
	$(PY) -m helpers.report --readme README.md

# NOTEBOOKS empty: every notebook. The render at the end trains nothing (train.py checks it).
train: install
	SUITE_PROFILE=$(PROFILE) $(PY) scripts/train.py $(NOTEBOOKS)
	$(PY) scripts/colab.py >/dev/null
	$(PY) -m helpers.report --readme README.md

# The README's two generated tables: the notebooks (with the profile of their outputs) and results
table: install
	$(PY) scripts/colab.py >/dev/null
	$(PY) -m helpers.report --readme README.md

lint: install
	$(VENV)/bin/ruff check src tests notebooks benchmarks scripts conftest.py
	$(VENV)/bin/ruff format --check src tests notebooks benchmarks scripts conftest.py

format: install
	$(VENV)/bin/ruff check --fix src tests notebooks benchmarks scripts conftest.py
	$(VENV)/bin/ruff format src tests notebooks benchmarks scripts conftest.py

unit: install
	SUITE_PROFILE=smoke $(PY) -m pytest -q --durations=10 tests

# nbval trains every notebook's smoke runs afresh in a temporary suite root, so the tests never
# reuse or touch the committed records, figures and logs (decoded images stay cached in data/).
nbval: install
	@root=$$(mktemp -d) && echo "nbval suite root: $$root" && \
	SUITE_ROOT=$$root SUITE_CACHE_DIR=$(abspath data/.cache) SUITE_PROFILE=smoke \
		$(PY) -m pytest -q --durations=12 --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 notebooks; \
	status=$$?; rm -rf $$root; exit $$status

test: lint unit nbval
