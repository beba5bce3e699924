# Thin wrappers for people working in the checkout. Every target sets itself up: a .venv with the
# project installed, and any Debian package it needs (chromium for the browser test, prometheus for
# the live-metrics test, iproute2 for the several-hosts test, wrk for benchmarks). CI jobs should
# call `loadtest run ...` itself: make exits 2 whenever a recipe fails, whatever code the recipe
# returned (its last line, "Error N", names the gate's own code).
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
WEB_PORT ?= 8089
ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# $(call apt,package,command): install a Debian package unless its command is already there
define apt
	@command -v $(2) >/dev/null 2>&1 || { echo "installing Debian package $(1)"; \
	  $(SUDO) apt-get install -y -q $(1) >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $(1) >/dev/null; }; }
endef

# `--option=value`, so a value that starts with a dash (DURATION=-5s) is the option's, and is judged there.
LOADTEST_ARGS = $(if $(TARGET),--target=$(TARGET)) $(if $(DURATION),--duration=$(DURATION)) \
	$(if $(WORKERS),--workers=$(WORKERS)) $(if $(API),--api=$(API)) $(if $(MODEL),--model=$(MODEL)) \
	$(foreach f,$(PROFILES),--profiles=$(f)) $(if $(MOCK_WORKERS),--mock-workers=$(MOCK_WORKERS)) $(ARGS)

.PHONY: help install lint test test-fast mock loadtest capacity ui bench compare calibrate screenshots clean

help:
	@echo "Targets:"
	@echo "  make install                 set up .venv with the suite and its test tools (idempotent)"
	@echo "  make test                    lint, then every test (what CI runs)"
	@echo "  make test-fast               unit and mock tests only (under two minutes)"
	@echo "  make lint                    ruff and mypy"
	@echo "  make loadtest                run a scenario headless and gate it"
	@echo "  make capacity                the highest arrival rate at which SCENARIO's SLA holds: a bracket"
	@echo "                               and a knee plot (ARGS=\"--start 40 --max-step 30\"; loadtest capacity -h)"
	@echo "  make ui                      Locust's web UI on http://127.0.0.1:WEB_PORT with a live SLA tab"
	@echo "  make mock                    the simulated providers in the foreground"
	@echo "  make compare                 relay vs direct: the seed's latency table, measured (~8 min)"
	@echo "  make calibrate ARGS=...      fit a provider profile from observed latencies"
	@echo "  make bench                   benchmarks, written to BENCHMARKS.md"
	@echo "  make screenshots             the browser tests, keeping their screenshots in docs/ (~2 min)"
	@echo "  make clean                   remove .venv and reports"
	@echo "Variables (loadtest, ui; capacity takes all but DURATION and WEB_PORT):"
	@echo "  SCENARIO=flash_sale          a built-in scenario (loadtest scenarios) or a TOML path"
	@echo "  TARGET=relay|dall-e-4|URL    a provider of the mock, or a base URL (then API=)"
	@echo "  API=relay|openai|vertex|midjourney   the wire format of a URL target"
	@echo "  MODEL=...                    the model to ask the target for"
	@echo "  DURATION=90s                 stretch or shrink every stage in proportion"
	@echo "  WORKERS=N                    Locust master + N workers"
	@echo "  PROFILES=file.toml           extra mock profiles"
	@echo "  REPORT_DIR=dir               where the report goes (default ./reports/<scenario>-<time>)"
	@echo "  WEB_PORT=8089                the web UI's port (ui)"
	@echo "  ARGS=...                     anything else, e.g. ARGS=\"--set relay.error_rate=0.05\""
	@echo "Variables (mock): PORT=8000 SEED=0 ARGS=...  MOCK_WORKERS=N (loadtest: the embedded mock's processes)"

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "installing Python packages into $(VENV)"
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

# A scenario with a gateway in it (scenarios/gateway_*.toml, or any SCENARIO naming "gateway") starts
# LiteLLM's proxy: its extra, installed when such a scenario is asked for.
GATEWAY_STAMP := $(VENV)/.gateway-installed
NEEDS_GATEWAY := $(if $(findstring gateway,$(SCENARIO)),$(GATEWAY_STAMP))

$(GATEWAY_STAMP): $(STAMP)
	@echo "installing the gateway extra (LiteLLM's proxy) into $(VENV)"
	@$(BIN)/pip install -q --disable-pip-version-check -e '.[gateway]'
	@touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(call apt,chromium,chromium)
	$(call apt,prometheus,prometheus)
	$(call apt,iproute2,ip)
	$(BIN)/python -m pytest $(ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

mock: install
	$(BIN)/python -m mockprovider --port $(PORT) --seed $(SEED) $(if $(MOCK_WORKERS),--workers=$(MOCK_WORKERS)) $(ARGS)

loadtest: install $(NEEDS_GATEWAY)
	$(BIN)/loadtest run $(SCENARIO) $(LOADTEST_ARGS) $(if $(REPORT_DIR),--report-dir=$(REPORT_DIR))

# The search sets each step's rate and length itself: no DURATION.
capacity: install $(NEEDS_GATEWAY)
	$(BIN)/loadtest capacity $(SCENARIO) $(if $(TARGET),--target=$(TARGET)) $(if $(WORKERS),--workers=$(WORKERS)) \
	  $(if $(API),--api=$(API)) $(if $(MODEL),--model=$(MODEL)) $(foreach f,$(PROFILES),--profiles=$(f)) \
	  $(if $(REPORT_DIR),--report-dir=$(REPORT_DIR)) $(ARGS)

ui: install $(NEEDS_GATEWAY)
	$(BIN)/loadtest ui $(SCENARIO) $(LOADTEST_ARGS) --web-port=$(WEB_PORT)

compare: install
	$(BIN)/loadtest compare $(ARGS)

calibrate: install
	$(BIN)/loadtest calibrate $(ARGS)

# The README's pictures: the browser tests, each screenshot also kept (as a palette PNG) in docs/.
screenshots: install
	$(call apt,chromium,chromium)
	LOADTEST_SCREENSHOTS=docs $(BIN)/python -m pytest tests/test_ui.py tests/test_pages.py -q $(ARGS)

bench: install
	$(call apt,wrk,wrk)
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) reports build *.egg-info .pytest_cache .mypy_cache .ruff_cache
