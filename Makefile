# lit_mia — `make help` lists the targets. `make run` and `make test` set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The pinned PyTorch pair that installs from local wheels on the project machines (CPU here,
# CUDA-capable on GPU hosts). Override e.g. `make run TORCH_SPEC=torch` elsewhere.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
SWEEP ?= eps
EXPERIMENT ?= default
ARGS ?=
PORT ?= 5000
WORKERS ?= 1
DB_DIR ?= .pgdata
DB_PORT ?= 5433
SERVER_PORT ?= 5001
DB_URL := postgresql://postgres@127.0.0.1:$(DB_PORT)

.DEFAULT_GOAL := help
.PHONY: help setup run report reproduce test test-all bench sweep ui lint format docs docs-build clean db db-stop server dashboard

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "; printf "lit_mia make targets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST) \
	  | sed -e 's|$$(DB_PORT)|$(DB_PORT)|g' -e 's|$$(DB_DIR)|$(DB_DIR)|g' -e 's|$$(DB_URL)|$(DB_URL)|g' \
	    -e 's|$$(SERVER_PORT)|$(SERVER_PORT)|g' -e 's|$$(DOCS_PORT)|$(DOCS_PORT)|g' -e 's|$$(PORT)|$(PORT)|g' -e 's|$$(REPRODUCE_MD)|$(REPRODUCE_MD)|g'
	@echo "variables: EXPERIMENT=$(EXPERIMENT) SWEEP=$(SWEEP) ARGS='key=value ...' PORT=$(PORT)"
	@echo "  sweeps: WORKERS=$(WORKERS) DB_DIR=$(DB_DIR) DB_PORT=$(DB_PORT) SERVER_PORT=$(SERVER_PORT) STORAGE="

$(STAMP): pyproject.toml examples/lit_mia_example/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e examples/lit_mia_example  # plug-in used by the tests
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install lit_mia with dev tools (only when missing or stale)

run: $(STAMP) ## run the embedded default experiment offline (EXPERIMENT=default ARGS=...)
	$(VENV)/bin/lit-mia run $(EXPERIMENT) $(ARGS)

report: $(STAMP) ## HTML report of the newest FINISHED EXPERIMENT run (says which; prints its path)
	$(VENV)/bin/lit-mia report $(EXPERIMENT) $(ARGS)

TIER ?= cpu
REPRODUCE_MD ?= docs/results/reproduction.md

reproduce: $(STAMP) ## check the seed papers' claims (TIER=cpu; writes the report and $(REPRODUCE_MD))
	$(VENV)/bin/lit-mia reproduce --tier $(TIER) --markdown $(REPRODUCE_MD) $(ARGS)

TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP) ## fast test suite (excludes tests marked slow), TEST_WORKERS=2 processes
	$(PY) -m pytest -m "not slow" -q $(XDIST) $(ARGS)

test-all: $(STAMP) ## full test suite including slow tests
	$(PY) -m pytest -q $(XDIST) $(ARGS)

BENCHES ?= cli training regimes farm label_only updates rmia sweep

bench: $(STAMP) ## benchmarks, side-by-side ratios (BENCHES='training farm ...' ARGS=--quick)
	@set -e; for b in $(BENCHES); do echo "== bench/bench_$$b.py"; \
		$(PY) bench/bench_$$b.py $(ARGS); done

sweep: $(STAMP) ## Optuna sweep, resumable, WORKERS processes: make sweep SWEEP=eps WORKERS=2 ARGS='sweep.n_trials=8'
	$(VENV)/bin/lit-mia sweep $(SWEEP) --workers $(WORKERS) $(ARGS)

db: $(STAMP) ## local PostgreSQL (studies + tracking) on 127.0.0.1:$(DB_PORT), data in $(DB_DIR)/
	$(PY) -m lit_mia.sweep.pgserver start --dir $(DB_DIR) --port $(DB_PORT)

db-stop: ## stop the local PostgreSQL of `make db`
	$(PY) -m lit_mia.sweep.pgserver stop --dir $(DB_DIR)

server: $(STAMP) ## MLflow tracking server on http://127.0.0.1:$(SERVER_PORT) (PostgreSQL of `make db`, artifacts in mlruns/)
	@mkdir -p mlruns/artifacts
	$(VENV)/bin/mlflow server --backend-store-uri $(subst postgresql:,postgresql+psycopg:,$(DB_URL))/mlflow \
		--artifacts-destination mlruns/artifacts --host 127.0.0.1 --port $(SERVER_PORT)

dashboard: $(STAMP) ## optuna-dashboard on http://127.0.0.1:$(PORT) (STORAGE=sqlite:///mlruns/optuna.db or $(DB_URL)/optuna)
	$(VENV)/bin/optuna-dashboard --host 127.0.0.1 --port $(PORT) \
		$(subst postgresql:,postgresql+psycopg:,$(or $(STORAGE),sqlite:///mlruns/optuna.db))

ui: $(STAMP) ## MLflow UI on http://127.0.0.1:$(PORT) over mlruns/
	@mkdir -p mlruns/artifacts
	@echo "open http://127.0.0.1:$(PORT)/#/experiments?workflowType=machine_learning (MLflow 3: the Model training view)"
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db \
		--default-artifact-root mlruns/artifacts --host 127.0.0.1 --port $(PORT)

LINT_PATHS := lit_mia tests bench docs/_scripts  # .pre-commit-config.yaml checks the same

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: $(STAMP) ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

DOCS_PORT ?= 8000
# mkdocs-material and the gen-files plugins print notices about MkDocs 2 on every build
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

docs: $(STAMP) ## serve the documentation site with live reload on http://127.0.0.1:$(DOCS_PORT)
	$(DOCS_ENV) $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: $(STAMP) ## build the documentation site into site/ (--strict: any warning fails)
	$(DOCS_ENV) $(VENV)/bin/mkdocs build --strict --site-dir site

clean: ## remove caches and run data (keeps .venv and mlruns/.gitkeep)
	rm -rf .pytest_cache .ruff_cache .hypothesis lightning_logs bench/results site
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
	find mlruns -mindepth 1 -not -name .gitkeep -delete 2>/dev/null || true
