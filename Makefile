# Mail Ape: `make run` starts the app on SQLite with a local mail sink; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
MAIL_PORT ?= 1025
export MAIL_APE_VAR_DIR ?= $(CURDIR)/django/var
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

.PHONY: run test lint install system-packages gettext messages

$(VENV)/.installed: requirements.common.txt requirements.development.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.development.txt
	touch $@

# Django's compilemessages runs GNU gettext's msgfmt; the .mo files are built, not committed.
PO_FILES := $(wildcard django/locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)

gettext:
	@command -v msgfmt >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext; }

$(MO_FILES) &: $(PO_FILES) $(VENV)/.installed | gettext
	cd django && python manage.py compilemessages --verbosity 0
	touch $(MO_FILES)

install: $(VENV)/.installed $(MO_FILES)

# After marking new strings: gather them into the catalogues, then translate them there.
messages: install
	cd django && python manage.py makemessages -l zh_Hans -e html,txt,py --ignore=mailinglist/tests

# From Debian: Chromium for the browser tests, gettext for the translations, and for the load
# script's test Apache with mod_wsgi and python3-venv (its production virtualenv); the rest is
# in the virtualenv.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
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
