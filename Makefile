# Two commands matter: `make run` (the platform with demo data, web + worker) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run against PostgreSQL and Redis (started by scripts/services.sh when installed but stopped).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kamen
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# `make serve`: production's processes on PostgreSQL and Redis (override with DATABASE_URL / CELERY_BROKER_URL).
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/kamen_serve
SERVE_BROKER_URL ?= redis://127.0.0.1:6379/0
SERVE_CACHE_URL ?= redis://127.0.0.1:6379/1

.PHONY: run test lint fmt bench services clean serve chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-1} DEMO_MODE=$${DEMO_MODE:-1} $(BIN)/python manage.py run_platform

test: $(STAMP)
	bash scripts/services.sh
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	bash scripts/services.sh
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kamen_bench} \
		CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} $(BIN)/python scripts/bench.py $(BENCH_ARGS)

services:
	bash scripts/services.sh

clean:
	rm -rf var staticfiles

# Production's processes: migrate, gunicorn (config/gunicorn.conf.py), two Celery workers, beat, sandbox gateway.
serve: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-$(SERVE_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(SERVE_BROKER_URL)} \
		CACHE_URL=$${CACHE_URL:-$(SERVE_CACHE_URL)} DJANGO_DEBUG=0 $(BIN)/python scripts/serve.py $(SERVE_ARGS)

# Real processes under injected faults, then the money invariants (own database kamen_chaos, Redis db 14).
# A shorter run: make chaos CHAOS_ARGS="--seconds 60 --rate 1.5"
chaos: $(STAMP)
	bash scripts/services.sh
	$(BIN)/python scripts/chaos.py $(CHAOS_ARGS)

# The deterministic simulation (simulation/): the platform over simulated days against a fresh PostgreSQL
# database (kamen_sim, recreated per seed), with faults from the seed. make simulate SEED=3 DAYS=90
# SIM_ARGS="--seeds 1,2,3 --profile harsh --sweep-every 15" (see python scripts/simulate.py --help).
.PHONY: simulate
simulate: $(STAMP)
	bash scripts/services.sh
	DATABASE_URL=$${SIM_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kamen_sim} \
		$(BIN)/python scripts/simulate.py --seed $(or $(SEED),1) --days $(or $(DAYS),7) $(SIM_ARGS)
