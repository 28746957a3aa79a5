# Tuneline: `make demo` runs the whole loop on real data; `make test` runs the test suite.
# Both first do an idempotent set-up: a virtualenv with the locked dependencies, and the Kafka jars.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK_STAMP := $(VENV)/.lock-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
JARS := deploy/kafka/target/libs/.resolved
PYTEST_ARGS ?=

.PHONY: setup check lint typecheck test test-unit demo demo-quick protos bench clean-state

setup: $(LOCK_STAMP) $(JARS)

$(LOCK_STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.lock-* && touch $@

$(JARS): deploy/kafka/pom.xml
	@command -v java >/dev/null || { echo "Java 17+ is needed for the embedded Kafka broker: install a JRE (e.g. openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is needed to fetch the Kafka broker jars: install maven"; exit 1; }
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies
	@touch $@

# Lint (ruff) and strict type checking (mypy), configured in pyproject.toml; CI runs both first.
check: lint typecheck

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-unit: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/tuneline demo

demo-quick: setup
	HF_HUB_OFFLINE=1 $(BIN)/tuneline demo --quick

protos: setup
	scripts/gen_protos.sh

clean-state:
	-$(BIN)/tuneline down
	rm -rf .tuneline
