# Two entry points, each creating .venv from the lock file when it is missing
# or older than the lock:  `make demo` runs the main job, `make test` the tests.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Some machines list package folders in pip's configuration that do not
# exist; pip warns once per package, which buries real messages.
PIP_NOISE := grep -v "WARNING: Location '.*' is ignored" || true
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
DEMO_CONTACTS ?= 20000

.PHONY: demo test env clean-demo lock

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock 2>&1 | { $(PIP_NOISE); }
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>&1 | { $(PIP_NOISE); }
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(BIN)/leadlink generate --out $(DEMO_DIR)/workspace --contacts $(DEMO_CONTACTS) --seed 7
	$(BIN)/leadlink validate $(DEMO_DIR)/workspace
	$(BIN)/leadlink link $(DEMO_DIR)/workspace --out $(DEMO_DIR)/links.parquet --truth $(DEMO_DIR)/workspace/truth/links.parquet
	$(BIN)/leadlink train $(DEMO_DIR)/workspace
	$(BIN)/leadlink compare --report $(DEMO_DIR)/compare.html
	$(BIN)/leadlink promote
	$(BIN)/leadlink score $(DEMO_DIR)/workspace --out $(DEMO_DIR)/scores.parquet --top 10

test: $(STAMP)
	$(BIN)/python -m pytest

clean-demo:
	rm -rf $(DEMO_DIR) mlflow.db mlartifacts

# Regenerate requirements.lock after editing requirements.in (needs uv).
lock:
	uv pip compile requirements.in --python-version 3.11 --generate-hashes --no-header -o requirements.lock
