# Two commands for a new user: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export REGISTRY_DEV ?= 1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-core test-browser faults setup setup-dev lint lock migrate demo clean help

help:
	@echo "make run    set up, migrate, load demo data and serve http://$(HOST):$(PORT)"
	@echo "make test   set up with dev tools and run the whole test suite"

# The venv is rebuilt when it is missing or its Python is older than 3.12.
$(PY):
	@py=$$(.ci/find-python) || exit 1; \
	echo "Creating $(VENV) with $$py"; \
	rm -rf $(VENV); "$$py" -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv || true

define install
	@if [ -x $(VENV)/bin/uv ]; then \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) -r $(1); \
	else \
	  $(PY) -m pip install --quiet --disable-pip-version-check -r $(1); \
	fi
	@touch $@
endef

$(VENV)/.installed-run: requirements.lock | $(PY)
	$(call install,requirements.lock)

$(VENV)/.installed-dev: requirements-dev.lock | $(PY)
	$(call install,requirements-dev.lock)
	@touch $(VENV)/.installed-run

setup: $(VENV)/.installed-run
setup-dev: $(VENV)/.installed-dev

migrate: setup
	@$(PY) manage.py migrate --noinput -v0

demo: migrate
	@$(PY) manage.py seed_demo

# The webhook worker runs next to the server; Ctrl-C (or a TERM to make) stops both.
# The server's settings are in gunicorn.conf.py.
run: demo
	@$(PY) manage.py collectstatic --noinput -v0
	@echo "Serving the registry at http://$(HOST):$(PORT)/ with the webhook worker (Ctrl-C stops both)"
	@trap 'kill $$server $$worker 2>/dev/null' INT TERM HUP; \
	$(PY) manage.py deliver_webhooks & worker=$$!; \
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py & server=$$!; \
	wait $$server; status=$$?; kill $$worker 2>/dev/null; wait; exit $$status

test: test-core test-browser

test-core: setup-dev
	@$(PY) -m pytest --ignore=tests/browser --ignore=tests/faults -n auto $(PYTEST_ARGS)

# The fault suite (README, "Reliability"): every fault FAULT_RUNS times on PostgreSQL, with
# the invariant checker after each; prints the figures at the end. CI runs it with 3.
# -m "" selects the live faults too (tests/faults/live/: their own PostgreSQL cluster and
# gunicorn), which pyproject's addopts leave out of every other run.
FAULT_RUNS ?= 20
FAULTS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
faults: setup-dev
	@FAULT_RUNS=$(FAULT_RUNS) DATABASE_URL=$(FAULTS_DATABASE_URL) \
	  $(PY) -m pytest tests/faults -m "" -q -p no:cacheprovider $(PYTEST_ARGS)

# Browser tests need their own process: DJANGO_ALLOW_ASYNC_UNSAFE is process-wide.
test-browser: setup-dev
	@DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest tests/browser $(PYTEST_ARGS)

lint: setup-dev
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports

# Regenerate the pinned lock files after editing pyproject.toml.
lock: $(PY)
	$(VENV)/bin/uv pip compile pyproject.toml -q -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev -q -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache
