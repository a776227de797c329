# Everything installs from scratch: a virtualenv from PyPI, Azurite from the npm registry.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AZURITE := node_modules/.bin/azurite
AZURITE_DIR := .azurite
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run demo test lint format bench dev-token fold clean infra-check

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "setup: Python packages into $(VENV)/ (first run, or requirements changed: a few minutes)" >&2
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@
	@echo "setup: Python packages installed" >&2

node_modules/.installed: package.json package-lock.json
	@echo "setup: Azurite from npm into node_modules/ (first run: a minute or two)" >&2
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@
	@echo "setup: Azurite installed" >&2

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

## test: lint, type-check and the whole suite (it starts its own Azurite)
test: setup lint infra-check
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
	rm -rf $(VENV) $(INFRA_VENV) node_modules $(AZURITE_DIR)
