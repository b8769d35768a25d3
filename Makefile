# Kehu: `make run` sets everything up and serves Kehu with demo data; `make test` sets everything up and runs
# the whole suite. Both work on a fresh machine and are cheap to run again.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CATALOGS := $(wildcard app/locale/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: run test bench install lint format messages clean

run: install
	$(BIN)/kehu bootstrap --customers 300
	$(BIN)/honcho start

test: install
	scripts/install-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	scripts/with-postgres $(BIN)/pytest -m "not browser"

bench: install
	$(BIN)/python -m bench

install: $(INSTALLED) $(BIN)/meilisearch $(COMPILED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

# The Meilisearch binary lives in the virtualenv; the script checks its version and checksum.
$(BIN)/meilisearch: scripts/install-meilisearch | $(BIN)/python
	scripts/install-meilisearch

%.mo: %.po $(INSTALLED)
	$(BIN)/pybabel compile --statistics -i $< -o $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# For developers adding text: extract every _() from code and templates and merge it into the catalogs.
messages: install
	$(BIN)/pybabel extract --sort-by-file --no-wrap -F babel.cfg -o app/locale/messages.pot .
	$(BIN)/pybabel update --no-wrap --no-fuzzy-matching --ignore-obsolete -i app/locale/messages.pot -d app/locale -D messages

clean:
	rm -rf $(VENV) var
