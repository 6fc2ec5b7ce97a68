# Selfcare: `make run` for the demo portal, `make test` for the suite on PostgreSQL.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format messages bench-portal bench-notifications clean

# The virtualenv is rebuilt when a requirements file changes.
$(VENV)/.installed-run: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "make run needs Python 3.11 ($(PYTHON) not found)."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	@echo "Selfcare is at http://$(HOST):$(PORT)/  (back office: http://$(HOST):$(PORT)/fr/admin/)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.installed-dev
	scripts/ensure-chromium.sh
	scripts/with-services.sh $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Needs gettext; the compiled catalogues are committed so `make run` does not.
messages: $(VENV)/.installed-dev
	$(PY) manage.py makemessages -l ar -l fr --no-obsolete --ignore=.venv --ignore=benchmarks --ignore=staticfiles
	$(PY) manage.py compilemessages --ignore=.venv

bench-portal: $(VENV)/.installed-dev
	scripts/with-services.sh $(PY) benchmarks/portal.py

bench-notifications: $(VENV)/.installed-dev
	scripts/with-services.sh $(PY) benchmarks/notifications.py $(N)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
