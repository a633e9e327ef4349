# Mail Ape: `make run` starts the app on SQLite with a local mail sink; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
MAIL_PORT ?= 1025
export MAIL_APE_VAR_DIR ?= $(CURDIR)/django/var
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test lint install system-packages

$(VENV)/.installed: requirements.common.txt requirements.development.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.development.txt
	touch $@

install: $(VENV)/.installed

# Chromium for the browser tests comes from Debian; the rest is in the virtualenv.
system-packages:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

run: install
	cd django && python manage.py migrate --noinput
	cd django && PORT=$(PORT) EMAIL_HOST_PORT=$(MAIL_PORT) \
	MAILING_LIST_LINK_DOMAIN=$${MAILING_LIST_LINK_DOMAIN:-http://localhost:$(PORT)} \
	honcho --procfile $(CURDIR)/Procfile.dev --app-root $(CURDIR)/django start

lint: install
	ruff check .
	ruff format --check .
	mypy
	cd django && python manage.py makemigrations --check --dry-run

test: install system-packages lint
	pytest
	pytest --ds=config.test_sqlite_settings -m also_on_sqlite -p no:cacheprovider

.PHONY: deploy-check
deploy-check: install
	bash .ci/deploy-check
