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

# From Debian: Chromium for the browser tests, and for the load script's test Apache with
# mod_wsgi and python3-venv (its production virtualenv); the rest is in the virtualenv.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -x /usr/sbin/apache2 || missing="$$missing apache2"; \
	test -e /usr/lib/apache2/modules/mod_wsgi.so || missing="$$missing libapache2-mod-wsgi-py3"; \
	/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	test -z "$$missing" || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

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
