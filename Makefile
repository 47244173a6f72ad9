# Two commands: `make run` and `make test`. Everything else is a step they call.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
DEVSTAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
FLASK  := $(BIN)/flask --app server
HOST   ?= 127.0.0.1
PORT   ?= 5000
WORKERS ?= 2

.PHONY: run test test-browser install install-dev migrate bootstrap serve lint clean audit fuzz vendor-js soak-ci

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-[0-9]*
	touch $@

# Tests, linters and the fuzzer: `make test` installs them, `make run` never does.
$(DEVSTAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-dev-*
	touch $@

install: $(STAMP)

install-dev: install $(DEVSTAMP)

migrate: install
	$(FLASK) db upgrade

bootstrap: migrate
	$(FLASK) bootstrap

# The scheduler runs in a process of its own beside the web server, never inside a worker;
# both stop together.
serve: install
	@$(FLASK) scheduler run & SCHED=$$!; \
	trap 'kill $$SCHED 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --workers $(WORKERS) --bind $(HOST):$(PORT) --timeout 120 'server:create_app()'

## make run: install, migrate, load demo data on an empty database, print logins, serve.
run: bootstrap
	@echo "Serving Tapak on http://$(HOST):$(PORT)  (API under /api/v1, spec at /api/openapi.json)"
	@echo "  review pages: http://$(HOST):$(PORT)/review/masuk   field app (enumerators): http://$(HOST):$(PORT)/lapangan/"
	$(MAKE) --no-print-directory serve

lint: install-dev
	$(BIN)/ruff check .

## make test: install, ruff, pytest (PostgreSQL too when TEST_DATABASE_URL is set).
test: lint
	$(BIN)/pytest

## make fuzz: schemathesis, all checks, against a live demo instance per role (tests/fuzz/run.py).
## CI runs it once with the fixed seed; SEED=random EXAMPLES=100 explores further.
SEED ?= 20261205
EXAMPLES ?= 25
fuzz: install-dev
	$(BIN)/python tests/fuzz/run.py --seed $(SEED) --max-examples $(EXAMPLES)

## make soak-ci: the soak's 2-minute version (bench/soak.py --ci): SQLite, 20,000 families, the
## real processes with faults; fails only on acknowledged visits lost or stored twice, or a
## queue not empty 60 s after the end. CI runs it once, not again on PostgreSQL.
soak-ci: install-dev
	$(BIN)/python -m bench.soak --ci

## make test-browser: only the review pages' browser tests (headless Chromium, /usr/bin/chromium).
test-browser: install-dev
	$(BIN)/pytest -m browser tests/pages

## make audit: known vulnerabilities of the pinned runtime packages (pip-audit, PyPI's advisory
## data); skipped, not failed, when that service cannot be reached. Not part of `make test`.
## The probe asks for what pip-audit reads (a release's `vulnerabilities`): a mirror that serves
## packages but not those would otherwise "find no vulnerabilities" in packages it never checked.
audit: install-dev
	@if $(BIN)/python -c "import json, urllib.request as u; \
		json.load(u.urlopen('https://pypi.org/pypi/pip/24.0/json', timeout=10))['vulnerabilities']" \
		2>/dev/null; then \
		$(BIN)/pip-audit -r requirements.txt; \
	else \
		echo "make audit: skipped: PyPI's vulnerability data (pypi.org) is unreachable from here"; \
	fi

## make vendor-js: refresh the field app's vendored JavaScript (idb, json-logic-js) from the npm
## registry, pinned and integrity-checked (tools/vendor_js.py; Python only). The files are
## committed, so `make run` never needs it nor Node; `tools/vendor_js.py --check` needs no network.
vendor-js: install
	$(BIN)/python tools/vendor_js.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
