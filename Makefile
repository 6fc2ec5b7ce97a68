# Selfcare: `make run` for the demo portal, `make test` for the suite on PostgreSQL.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# The fake Konnect gateway (the demo's wallet checkout) listens here, on loopback.
KONNECT_PORT ?= 8011

.PHONY: run test lint format messages bench-portal bench-notifications bench-payments bench-bill-run clean

# The virtualenv is rebuilt when a requirements file changes.
$(VENV)/.installed-run: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "make run needs Python 3.11 ($(PYTHON) not found)."; exit 1; }
	@# WeasyPrint (bill PDFs) needs Pango from the OS; pip cannot bring it.
	@scripts/ensure-pango.sh $(PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# The settings fail closed (DEBUG off; no secret key, callback token or WhatsApp
# app secret): the demo and the tests set their own. The demo's are made once and
# kept under var/, so sessions survive a restart; the tests' are made per run.
DEMO_KEY := var/demo-secret-key
DEMO_SECRETS := $(DEMO_KEY) var/demo-callback-token var/demo-whatsapp-secret var/demo-konnect-key
# SITE_URL: the links in the demo's messages and bill QR codes point at this server.
DEMO_ENV = DEBUG=1 SECRET_KEY="$$(cat $(DEMO_KEY))" SITE_URL="http://$(HOST):$(PORT)" \
	AFRICASTALKING_CALLBACK_TOKEN="$$(cat var/demo-callback-token)" WHATSAPP_APP_SECRET="$$(cat var/demo-whatsapp-secret)" \
	KONNECT_API_URL="http://127.0.0.1:$(KONNECT_PORT)" KONNECT_API_KEY="$$(cat var/demo-konnect-key)" \
	KONNECT_WALLET_ID=5f7a209aeb3f76490ac4a3d1
TEST_SECRET = $$($(PY) -c 'import secrets; print(secrets.token_hex(24))')
TEST_ENV = DEBUG=1 SECRET_KEY="test-$(TEST_SECRET)" \
	AFRICASTALKING_CALLBACK_TOKEN="test-$(TEST_SECRET)" WHATSAPP_APP_SECRET="test-$(TEST_SECRET)"

var/demo-%:
	@mkdir -p var
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

# The fake Konnect gateway runs in the background for as long as the server does
# (stopped when runserver ends, Ctrl-C included), so the demo pays a bill through a
# wallet checkout end to end.
run: $(VENV)/.installed-run $(DEMO_SECRETS)
	@echo "Demo settings: DEBUG=1 and development secrets from var/ (secret key, SMS callback token, WhatsApp app secret, Konnect API key)."
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v0
	$(DEMO_ENV) $(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py seed_payments_demo
	@echo "Selfcare is at http://$(HOST):$(PORT)/  (back office: http://$(HOST):$(PORT)/fr/admin/)"
	@echo "DEBUG is on: staff sign in with the password alone; production asks for a TOTP code (SELFCARE_STAFF_OTP_REQUIRED)."
	$(DEMO_ENV) $(PY) manage.py konnect_fake --port $(KONNECT_PORT) & fake=$$!; \
	trap 'kill $$fake 2>/dev/null; wait $$fake 2>/dev/null' EXIT; \
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

# Lint first: CI fails on style, import order or a missing migration as on a test.
test: lint
	scripts/ensure-chromium.sh
	$(TEST_ENV) scripts/with-services.sh $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Needs gettext; the compiled catalogues are committed so `make run` does not.
# Django's makemessages reads Python and the Django templates, pybabel the Jinja2
# pages; both sets of strings are merged into one catalogue per language.
messages: $(VENV)/.installed-dev
	@mkdir -p var
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k pgettext:1c,2 -o var/jinja2.pot .
	$(TEST_ENV) $(PY) manage.py makemessages -l ar -l fr --keep-pot --ignore=.venv --ignore=benchmarks --ignore=staticfiles --ignore=var --ignore=templates/jinja2
	msgcat --use-first locale/django.pot var/jinja2.pot -o var/all.pot
	for lang in ar fr; do \
	  po=locale/$$lang/LC_MESSAGES/django.po; \
	  msgmerge --quiet --update --backup=none --no-fuzzy-matching $$po var/all.pot && \
	  msgattrib --no-obsolete -o $$po $$po; \
	done
	rm -f locale/django.pot var/jinja2.pot var/all.pot
	$(TEST_ENV) $(PY) manage.py compilemessages --ignore=.venv

bench-portal: $(VENV)/.installed-dev
	$(TEST_ENV) scripts/with-services.sh $(PY) benchmarks/portal.py

bench-notifications: $(VENV)/.installed-dev
	$(TEST_ENV) scripts/with-services.sh $(PY) benchmarks/notifications.py $(N)

# BENCH_ARGS="--duration 5 --profile 200" for a shorter run with a profile.
bench-payments: $(VENV)/.installed-dev
	$(TEST_ENV) scripts/with-services.sh $(PY) benchmarks/payments.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

# N accounts billed by the bill run on Celery workers, against a raw COPY (default N = 1,000,000).
bench-bill-run: $(VENV)/.installed-dev
	$(TEST_ENV) scripts/with-services.sh $(PY) benchmarks/bill_run.py --accounts $(or $(N),1000000)
