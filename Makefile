# The verbs a newcomer looks for. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# The browser tests drive Debian's chromium (never a downloaded browser), the benchmark's HTTP
# rows use wrk, the docs' shell examples use jq: all come from Debian's packages, installed when missing.
CHROMIUM ?= /usr/bin/chromium
WRK ?= /usr/bin/wrk
JQ ?= /usr/bin/jq
# The accessibility checks load axe-core (pinned in tests/axe/package-lock.json) into the test browser.
NPM ?= /usr/bin/npm
AXE := tests/axe/node_modules/axe-core/axe.min.js
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q

.PHONY: run test test-fast test-rq bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

$(CHROMIUM) $(WRK) $(JQ) $(NPM):
	@echo "Installing Debian's $(notdir $@)"
	$(APT_INSTALL) $(notdir $@) || ($(SUDO) apt-get update -q && $(APT_INSTALL) $(notdir $@))

$(AXE): tests/axe/package-lock.json | $(NPM)
	$(NPM) ci --prefix tests/axe --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

## run: start web + worker (+ an embedded Valkey when REDIS_URL is unset); Ctrl-C stops all
run: $(VENV)/.runtime
	$(BIN)/python scripts/run.py $(RUN_ARGS)

## test-fast: the inner loop, under a minute: all but the browser, process, fuzz and bench tests, with coverage
FAST = not browser and not processes and not fuzz and not bench and not slow
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest -q -m "$(FAST)" --cov=app --cov=jobs --cov-report=term:skip-covered

## test: lint, the inner loop (test-fast), every other test, then RQ's own suite with Offload's workers
test: lint $(CHROMIUM) $(WRK) $(JQ) $(AXE)
	$(MAKE) --no-print-directory test-fast
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -m "not ($(FAST))"
	$(BIN)/python -m scripts.rq_suite

## test-rq: RQ's own test suite with Offload's workers, compared with scripts/rq_suite/departures.toml
test-rq: $(VENV)/.dev
	$(BIN)/python -m scripts.rq_suite

## bench: the benchmark suite (one table; PEERS=1 adds Celery and Dramatiq, ARGS="--smoke" for a quick run)
bench: $(VENV)/.dev $(WRK)
	$(BIN)/python -m scripts.bench $(if $(PEERS),--peers) $(ARGS)

## lint: ruff's checks and formatting, and the type checker on app/ and jobs/
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache
