# lit_mia — `make help` lists the targets. `make run` and `make test` set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch (docs/reference/make.md#pytorch). TORCH_SPEC: the pinned pair from the configured
# package index (PyPI's Linux wheels are CUDA builds, ~5 GB with their nvidia-* libraries).
# A host without nvidia-smi first tries the CPU-only build of the same versions from
# TORCH_CPU_INDEX and falls back to TORCH_SPEC, saying so in one line,
# where that index cannot be reached. TORCH_BUILD=cuda|cpu overrides the detection.
TORCH_VERSION ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1
TORCH_SPEC ?= torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
TORCH_CPU_SPEC ?= torch==$(TORCH_VERSION)+cpu torchvision==$(TORCHVISION_VERSION)+cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
HAVE_GPU := $(shell command -v nvidia-smi 2>/dev/null)
TORCH_BUILD ?= $(if $(HAVE_GPU),cuda,cpu)
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
RAY_PORT ?= 6380
RAY_CPUS ?=
RAY_DIR ?= .ray

.DEFAULT_GOAL := help
.PHONY: help setup run report reproduce test test-all bench sweep ui lint format docs docs-build clean db db-stop server dashboard cluster cluster-stop

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "; printf "lit_mia make targets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST) \
	  | sed -e 's|$$(DB_PORT)|$(DB_PORT)|g' -e 's|$$(DB_DIR)|$(DB_DIR)|g' -e 's|$$(DB_URL)|$(DB_URL)|g' \
	    -e 's|$$(SERVER_PORT)|$(SERVER_PORT)|g' -e 's|$$(DOCS_PORT)|$(DOCS_PORT)|g' -e 's|$$(PORT)|$(PORT)|g' \
	    -e 's|$$(RAY_PORT)|$(RAY_PORT)|g' -e 's|$$(RAY_DIR)|$(RAY_DIR)|g' \
	    -e 's|$$(REPRODUCE_MD)|$(REPRODUCE_MD)|g'
	@echo "variables: EXPERIMENT=$(EXPERIMENT) SWEEP=$(SWEEP) ARGS='key=value ...' PORT=$(PORT)"
	@echo "  sweeps: WORKERS=$(WORKERS) DB_DIR=$(DB_DIR) DB_PORT=$(DB_PORT) SERVER_PORT=$(SERVER_PORT) STORAGE="
	@echo "  setup: TORCH_BUILD=$(TORCH_BUILD) ($(if $(HAVE_GPU),nvidia-smi found,no nvidia-smi)) TORCH_SPEC='$(TORCH_SPEC)'"

$(STAMP): pyproject.toml examples/lit_mia_example/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifeq ($(TORCH_BUILD),cpu)
	@echo "setup: $(if $(HAVE_GPU),TORCH_BUILD=cpu,no GPU (nvidia-smi not found)): PyTorch's CPU-only build ($(TORCH_CPU_SPEC))"
	@$(PY) -m pip install --quiet --timeout 15 --retries 1 --index-url $(TORCH_CPU_INDEX) \
		$(TORCH_CPU_SPEC) > $(VENV)/torch-cpu.log 2>&1 \
	  || { echo "setup: $(TORCH_CPU_INDEX) has no $(TORCH_CPU_SPEC) for this host or cannot be reached (see $(VENV)/torch-cpu.log): installing $(TORCH_SPEC) instead"; \
	       $(PY) -m pip uninstall --quiet --yes torch torchvision > /dev/null 2>&1; \
	       $(PY) -m pip install --quiet $(TORCH_SPEC); }
else
	$(PY) -m pip install --quiet $(TORCH_SPEC)
endif
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

BENCHES ?= cli training regimes farm label_only updates rmia sweep ray default

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

cluster: $(STAMP) ## local Ray head on 127.0.0.1:$(RAY_PORT) for farm.backend=ray (RAY_CPUS=, logs in $(RAY_DIR)/)
	@mkdir -p $(RAY_DIR)
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/ray start --head --port=$(RAY_PORT) --include-dashboard=false \
		--disable-usage-stats --temp-dir=$(abspath $(RAY_DIR)) $(if $(RAY_CPUS),--num-cpus=$(RAY_CPUS))
	@echo "run with: lit-mia run EXPERIMENT farm.backend=ray farm.address=127.0.0.1:$(RAY_PORT)"
	@echo "add a machine: ray start --address=<this host>:$(RAY_PORT)   (docs/how-to/ray-cluster.md)"

cluster-stop: ## stop the Ray processes of this machine (`ray stop`: every node started here)
	$(VENV)/bin/ray stop

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
	rm -rf .pytest_cache .ruff_cache .hypothesis lightning_logs bench/results site $(RAY_DIR)
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
	find mlruns -mindepth 1 -not -name .gitkeep -delete 2>/dev/null || true
