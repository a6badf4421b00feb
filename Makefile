# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv on first use; only Python 3.11+ and make are required.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.installed-dev-stamp
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint venv clean static

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Linting needs the dev extra (ruff) on top of the test one.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

venv: $(STAMP)

## make demo: the example site with an admin login, the Huey consumer, the RTMP listener and a demo stream.
## DEMO_ARGS="--port 8001 --rtmp-port 1936" moves it off ports in use.
demo: $(STAMP)
	$(BIN)/python example_site/manage.py demo $(DEMO_ARGS)

## make test: the whole suite, on PostgreSQL when one answers on 127.0.0.1:5432 (user postgres,
## database test; PG* variables change that), else SQLite. Tests needing a service or browser
## that is missing are skipped (they fail instead under WAGTAIL_LIVE_REQUIRE_ALL=1, as in CI).
test: $(STAMP)
	WAGTAIL_LIVE_TEST_DB=$${WAGTAIL_LIVE_TEST_DB:-auto} $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m django makemigrations --check --dry-run --settings=example_site.settings

## Rebuild wagtail_live/static/wagtail_live/vendor from package.json (needs Node.js; the result is committed).
static:
	npm ci
	npm run build

clean:
	rm -rf $(VENV) .demo build dist *.egg-info
