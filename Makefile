# Every target sets itself up: a .venv with the project installed, and any Debian
# package it needs (chromium for the browser test, wrk for benchmarks).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PORT ?= 8000
SEED ?= 0
SCENARIO ?= flash_sale
TARGET ?=
DURATION ?=
WORKERS ?=
API ?=
MODEL ?=
PROFILES ?=
REPORT_DIR ?=
ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# $(call apt,package,command): install a Debian package unless its command is already there
define apt
	@command -v $(2) >/dev/null 2>&1 || { echo "installing Debian package $(1)"; \
	  $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(1) >/dev/null; }; }
endef

LOADTEST_ARGS = $(if $(TARGET),--target $(TARGET)) $(if $(DURATION),--duration $(DURATION)) \
	$(if $(WORKERS),--workers $(WORKERS)) $(if $(API),--api $(API)) $(if $(MODEL),--model $(MODEL)) \
	$(foreach f,$(PROFILES),--profiles $(f)) $(ARGS)

.PHONY: install mock test loadtest ui bench compare calibrate clean help

help:
	@echo "make install                       set up .venv (idempotent)"
	@echo "make test                          the test suite"
	@echo "make loadtest SCENARIO=flash_sale  [TARGET=relay|dall-e-4|...|URL] [DURATION=90s] [WORKERS=N]"
	@echo "                                   [API=relay|openai|vertex|midjourney] [MODEL=...] [PROFILES=file.toml]"
	@echo "make ui SCENARIO=flash_sale        Locust web UI on http://127.0.0.1:8089 with a live SLA view"
	@echo "make mock [PORT=8000] [SEED=0]     the simulated providers, in the foreground"
	@echo "make compare                       relay vs direct: the seed's latency table, measured"
	@echo "make bench                         benchmarks, written to BENCHMARKS.md"

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "installing Python packages into $(VENV)"
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

mock: install
	$(BIN)/python -m mockprovider --port $(PORT) --seed $(SEED) $(ARGS)

test: install
	$(call apt,chromium,chromium)
	$(BIN)/python -m pytest $(ARGS)

loadtest: install
	$(BIN)/python -m loadtest run $(SCENARIO) $(LOADTEST_ARGS) $(if $(REPORT_DIR),--report-dir $(REPORT_DIR))

ui: install
	$(BIN)/python -m loadtest ui $(SCENARIO) $(LOADTEST_ARGS)

compare: install
	$(BIN)/python -m loadtest compare $(ARGS)

calibrate: install
	$(BIN)/python -m loadtest calibrate $(ARGS)

bench: install
	$(call apt,wrk,wrk)
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) reports build *.egg-info .pytest_cache
