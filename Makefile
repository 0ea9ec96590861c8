# fablab: `make demo` serves a working demo, `make test` runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: demo test install migrate bench check lint clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "fablab needs Python 3.11 or newer: make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --quiet -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo
	$(PY) manage.py sync_schedules
	$(PY) manage.py serve --with-printers

# PYTEST_ARGS adds options, e.g. make test PYTEST_ARGS="--reuse-db -k api"
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	@for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

check: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

lint: install
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) var
