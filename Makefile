# Everything installs from scratch: a virtualenv from PyPI, Azurite and the web app's browser
# libraries from the npm registry, and (for the browser tests) Debian's chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AZURITE := node_modules/.bin/azurite
AZURITE_DIR := .azurite
WEBAPP_VENDOR := webapp/vendor
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run demo test lint format bench dev-token fold clean infra-check webapp-vendor browser

setup: $(VENV)/.installed node_modules/.installed $(WEBAPP_VENDOR)/.copied

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "setup: Python packages into $(VENV)/ (first run, or requirements changed: a few minutes)" >&2
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@
	@echo "setup: Python packages installed" >&2

node_modules/.installed: package.json package-lock.json
	@echo "setup: Azurite and the web app's libraries from npm into node_modules/ (first run: a minute or two)" >&2
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@
	@echo "setup: npm packages installed" >&2

## webapp-vendor: copy the web app's pinned npm files into webapp/vendor/ (git-ignored, deployed
## with the app: node_modules/ is not; azd's prepackage hook runs the same script)
webapp-vendor: node_modules/.installed
	@node webapp/copy-vendor.mjs
	@touch $(WEBAPP_VENDOR)/.copied

$(WEBAPP_VENDOR)/.copied: node_modules/.installed webapp/copy-vendor.mjs
	@node webapp/copy-vendor.mjs
	@touch $@

## browser: Debian's chromium for the browser tests (tests/e2e), installed where apt-get is and
## it is missing. Elsewhere install Chromium and set CHROMIUM=<its path>; E2E_BROWSER=off leaves
## the browser tests out on a machine that has none (they fail without a browser otherwise).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if [ "$(E2E_BROWSER)" = off ] || [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "setup: no Chromium at $(CHROMIUM) and no apt-get: install Chromium and set CHROMIUM=<its path>, or E2E_BROWSER=off (README, Browser tests)" >&2; \
		exit 1; \
	fi; \
	echo "setup: chromium from Debian's packages, for the browser tests (about a minute)" >&2; \
	$(SUDO) apt-get update -qq >/dev/null && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null && \
	echo "setup: chromium installed" >&2

## run: Azurite (data in .azurite/) and the app on http://127.0.0.1:7071, timers in-process
## (LOG_LEVEL=DEBUG adds every request: route, status, time; AZURE_LOG_LEVEL the SDK's own)
run: setup
	@mkdir -p $(AZURITE_DIR)
	@echo "run: starting Azurite (data in $(AZURITE_DIR)/) and the app"
	@$(AZURITE) --silent --location $(AZURITE_DIR) \
		--blobHost 127.0.0.1 --tableHost 127.0.0.1 --queueHost 127.0.0.1 \
		--disableTelemetry --skipApiVersionCheck --loose & \
	AZURITE_PID=$$!; trap "kill $$AZURITE_PID 2>/dev/null || true" EXIT INT TERM; \
	$(PY) -m functions.local

## demo: a followed mail, a reply and a tracked mail, against the Graph stand-in (no tenant)
demo: setup
	$(PY) -m devtools.demo

## test: lint, type-check and the whole suite (it starts its own Azurite, and the app for the
## browser tests in tests/e2e)
test: setup browser lint infra-check
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## bench: the benchmarks; figures go to docs/performance.md
bench: setup
	$(PY) -m bench

## dev-token EMAIL=... [ADMIN=1]: a development bearer token for a seller (an id made from the
## address, always the same: docs/admin.md, "Seller identity")
dev-token: setup
	@$(PY) -m shared.ops.cli dev-token "$(EMAIL)" $(if $(ADMIN),--admin)

## fold: fold recorded events into KPIs now (the timer does it every 10 s)
fold: setup
	$(PY) -m shared.ops.cli fold

## infra-check: checkov on infra/ (Bicep), offline; each skipped check states its reason inline.
## Its own virtualenv: checkov's dependency tree would fight the app's.
INFRA_VENV := .venv-infra
infra-check: $(INFRA_VENV)/.installed
	BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true CKV_PARSE_ERROR_FAIL=true \
		$(INFRA_VENV)/bin/checkov -d infra --framework bicep --quiet --compact --skip-download

$(INFRA_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	touch $@

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules $(AZURITE_DIR) $(WEBAPP_VENDOR)
