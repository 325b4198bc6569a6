# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test setup lint format migrate seed bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

migrate: setup
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

# The external origin follows HOST and PORT unless PUBLIC_BASE_URL says otherwise.
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: seed
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Serving on http://$(HOST):$(PORT)/fhir/metadata (Ctrl-C to stop)"
	$(BIN)/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers $(WORKERS) --access-logfile -

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The benchmark suite (bench/run.py): the product under gunicorn on a scratch PostgreSQL
# database, driven by wrk. SCALE=10k (default) or 1m stored resources; BENCH_ARGS passes more
# options (see `.venv/bin/python bench/run.py --help`). bench-peers adds node-oidc-provider.
.PHONY: bench-peers bench-tools
SCALE ?= 10k
BENCH_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

bench: setup bench-tools
	$(BIN)/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

bench-peers: setup bench-tools
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm; }
	$(BIN)/python bench/run.py --scale $(SCALE) --peers $(BENCH_ARGS)

# wrk comes from Debian; everything else the suite needs is in the venv or bench/.scratch/.
bench-tools:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wrk; }

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
