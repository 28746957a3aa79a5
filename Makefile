# Tuneline: `make demo` runs the whole loop on real data; `make test` runs the test suite.
# Both first do an idempotent set-up: a virtualenv with the locked dependencies, and the Kafka jars.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK_STAMP := $(VENV)/.lock-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
JARS := deploy/kafka/target/libs/.resolved
PYTEST_ARGS ?=

.PHONY: setup check lint typecheck test test-unit demo demo-quick protos bench clean-state postgres-server
.PHONY: tools ci-checks contracts contracts-baseline golden-events data-check vuln-scan wheel sbom release

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
	$(BIN)/mypy scripts

# The store tests run on PostgreSQL too: its server binaries are installed once (scripts/install-postgres.sh).
postgres-server:
	@bash scripts/install-postgres.sh

test: setup postgres-server
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

# ------------------------------------------------------------------ CI checks (README "CI checks")
# `make ci-checks` runs each and says how long it took; CI (.ci/run) fails when any fails. The tools are
# pinned in requirements-tools.lock and live in their own virtualenv, never in the runtime one; buf is
# built from the Go module proxy at a pinned version (about 2 min the first time, seconds from Go's cache).
TOOLS_VENV ?= .venv-tools
TOOLS := $(TOOLS_VENV)/bin
TOOLS_STAMP := $(TOOLS_VENV)/.lock-$(shell cat requirements-tools.lock | sha256sum | cut -c1-16)
BUF_VERSION := v1.75.0
BUF := $(TOOLS_VENV)/buf-$(BUF_VERSION)/buf
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL := dist/tuneline-$(VERSION)-py3-none-any.whl
SBOM := dist/tuneline-$(VERSION).cdx.json
CI_CHECKS := contracts data-check vuln-scan release
# VULN_SCAN_REQUIRE_DB=1: an unreachable vulnerability database fails the scan too (where CI has the network).
VULN_SCAN_REQUIRE_DB ?=
VULN_SCAN_ARGS ?=

tools: $(TOOLS_STAMP) $(BUF)

$(TOOLS_STAMP): requirements-tools.lock
	@test -x $(TOOLS)/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS)/pip install --quiet -r requirements-tools.lock
	@rm -f $(TOOLS_VENV)/.lock-* && touch $@

$(BUF):
	@command -v go >/dev/null || { echo "Go is needed to build buf for the contract checks: install Go 1.24 or later"; exit 1; }
	GOBIN=$(abspath $(dir $(BUF))) GOFLAGS=-buildvcs=false go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

ci-checks: setup tools
	@failed=""; times=""; \
	for t in $(CI_CHECKS); do \
	  start=$$(date +%s%N); $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; \
	  ms=$$(( ($$(date +%s%N) - start) / 1000000 )); times="$$times $$t=$$((ms / 1000)).$$((ms % 1000 / 100))s"; \
	done; \
	echo "ci-checks:$$times"; \
	if [ -n "$$failed" ]; then echo "ci-checks: FAILED:$$failed"; exit 1; fi; echo "ci-checks: all passed"

# Every .proto under protos/ against the released contract (contracts/baseline/), then the consumer
# contract tests: every golden event of the released version decodes with today's code.
contracts: setup tools
	BUF=$(BUF) bash scripts/ci/check_contracts.sh
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/kernel/test_golden_events.py

# At a release: the contract the next changes must stay compatible with.
contracts-baseline:
	rm -rf contracts/baseline && mkdir -p contracts/baseline
	cd protos && find tuneline -name '*.proto' -exec cp --parents {} ../contracts/baseline/ \;

# Golden events of event types that have none (existing ones are never rewritten).
golden-events: setup
	$(BIN)/python -m scripts.ci.golden_events

# The shipped goals and datasets through the ingest service's own goal handling and gates.
data-check: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m scripts.ci.check_shipped_data

# Exit status 1: vulnerable (or the allow-list is invalid or expired); 3: no vulnerability database
# could be reached, which passes here with a warning unless VULN_SCAN_REQUIRE_DB=1.
vuln-scan: setup tools
	@mkdir -p build/ci; rc=0; \
	$(BIN)/python -m scripts.ci.vuln_scan --pip-audit $(TOOLS)/pip-audit --lock requirements.lock --lock requirements-tools.lock \
	  --allowlist security/vulnerability-allowlist.yaml --report build/ci/vuln-scan.json $(VULN_SCAN_ARGS) || rc=$$?; \
	if [ $$rc -eq 3 ] && [ -z "$(VULN_SCAN_REQUIRE_DB)" ]; then \
	  echo "vuln-scan: WARNING: the dependencies were NOT scanned (no vulnerability database reachable); passing (VULN_SCAN_REQUIRE_DB=1 fails instead)"; rc=0; \
	fi; exit $$rc

# The versioned distribution, the CycloneDX SBOM of the lock, and their check; deploy/Dockerfile installs the wheel.
wheel: tools
	rm -f dist/tuneline-*.whl
	@mkdir -p build/ci
	$(TOOLS)/python -m build --wheel --outdir dist . >build/ci/wheel.log 2>&1 || { cat build/ci/wheel.log; exit 1; }
	@echo "built $(WHEEL) (log: build/ci/wheel.log)"

sbom: tools
	@mkdir -p dist
	PYTHONWARNINGS=ignore::UserWarning $(TOOLS)/cyclonedx-py requirements requirements.lock --pyproject pyproject.toml \
	  --of JSON --sv 1.6 --output-reproducible -o $(SBOM)
	@echo "wrote $(SBOM)"

release: setup wheel sbom
	$(BIN)/python -m scripts.ci.check_release --wheel $(WHEEL) --sbom $(SBOM) --lock requirements.lock
