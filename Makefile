# reluwatch — every entry point a user or CI needs. Each target installs what it
# uses, so a fresh clone needs only some Node.js with npm, Java >= 17 and Maven.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The supported runtime is Node.js >= 22, tested on the pinned 24 LTS below. When
# the system node is older, make fetches the pinned build from the npm registry
# (package node-linux-<arch>; npm's cache makes later fetches offline) into .tmp/
# and puts it first on PATH for every target and every process the tests spawn.
NODE_VERSION := $(shell cat .node-version)
NODE_ARCH := $(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
NODE_HOME := $(CURDIR)/.tmp/node-v$(NODE_VERSION)-linux-$(NODE_ARCH)
SYSTEM_NODE_MAJOR := $(shell node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
ifeq ($(shell [ "$(SYSTEM_NODE_MAJOR)" -ge 22 ] && echo system),system)
NODE := $(shell command -v node)
else
NODE := $(NODE_HOME)/bin/node
export PATH := $(NODE_HOME)/bin:$(PATH)
endif

NODE_TEST := node --import tsx --test --test-reporter=spec
UNIT_TESTS = $(shell find test/unit -name '*.test.ts' | sort)
INTEGRATION_TESTS = $(shell find test/integration test/interop test/e2e -name '*.test.ts' 2>/dev/null | sort)
KAFKA := deploy/kafka-local/kafka.sh
export KAFKAJS_NO_PARTITIONER_WARNING := 1

.PHONY: help node install build lint format test test-unit test-integration test-python kafka-up kafka-down kafka-down-all \
        kafka-jars demo bench profile eval clean system-deps rules rules-test dashboards docs kustomize metrics-golden

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(NODE_HOME)/bin/node:
	@mkdir -p $(NODE_HOME) .tmp
	npm pack --silent --pack-destination .tmp node-linux-$(NODE_ARCH)@$(NODE_VERSION) >/dev/null
	tar -xzf .tmp/node-linux-$(NODE_ARCH)-$(NODE_VERSION).tgz -C $(NODE_HOME) --strip-components=1 package/bin package/LICENSE
	@rm -f .tmp/node-linux-$(NODE_ARCH)-$(NODE_VERSION).tgz
	@$@ --version

node: $(NODE) ## the Node.js every target runs on (the pinned 24 LTS when the system's is older than 22)
	@echo "node $$(node --version) at $$(command -v node)"

# The installed tree is stamped with the Node.js it was built for: a native
# optional dependency built under another major would not load.
node_modules/.installed: package.json package-lock.json .node-version | $(NODE)
	npm ci --no-audit --no-fund
	@node --version > $@

install: node_modules/.installed ## install npm dependencies (npm ci)

build: install ## compile TypeScript to dist/ and bundle the unit explorer into dist/ui (then `npx reluwatch --help` works)
	npx tsc -p tsconfig.build.json
	@chmod +x dist/src/cli/main.js
	node --import tsx src/ui/build.ts dist/ui

lint: install ## formatter+linter (Biome), type check (tsc --noEmit), import rules (dependency-cruiser)
	npx biome check .
	npx tsc --noEmit -p tsconfig.json
	npx depcruise src --config .dependency-cruiser.cjs
	npx tsc --noEmit -p src/ui/client/tsconfig.json

format: install ## apply Biome's formatting and safe fixes
	npx biome check --write .

# One runner invocation, so the run ends on one summary line for every test.
test: lint kafka-jars system-deps kustomize .venv test-python ## lint, then every unit and integration test, and the Python suite
	$(NODE_TEST) --test-concurrency=2 $(UNIT_TESTS) $(INTEGRATION_TESTS)

test-unit: install system-deps kustomize ## unit tests only (no broker)
	$(NODE_TEST) $(UNIT_TESTS)

test-integration: install kafka-jars system-deps .venv ## integration tests against a real Kafka broker
	$(NODE_TEST) --test-concurrency=1 $(INTEGRATION_TESTS)

system-deps: ## Prometheus, Alertmanager and Chromium from Debian, for the rule, alert and explorer tests (apt-get; needs root)
	@if ! command -v promtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null || ! [ -x /usr/bin/chromium ]; then \
	  apt-get update && apt-get install -y --no-install-recommends prometheus prometheus-alertmanager chromium; \
	fi

rules: install ## regenerate the Prometheus rule file and PrometheusRule from deploy/prometheus/rules.ts
	npx tsx deploy/generate.ts rules

rules-test: system-deps ## promtool check and unit-test the alerting and recording rules
	promtool check rules deploy/prometheus/rules/*.yml
	promtool test rules deploy/prometheus/tests/*.yml

KUSTOMIZE := .tmp/bin/kustomize
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
kustomize: $(KUSTOMIZE) ## build kustomize from the Go module proxy (the k8s manifest tests render with it)
$(KUSTOMIZE):
	GOBIN=$(CURDIR)/.tmp/bin $(GO) install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0

dashboards: install ## regenerate the Grafana dashboard JSON from deploy/grafana/dashboards.ts
	npx tsx deploy/generate.ts dashboards

docs: install ## regenerate the settings reference in docs/configuration.md from src/config/options.ts
	npx tsx scripts/gen-docs.ts

metrics-golden: install system-deps ## regenerate test/fixtures/metrics.golden.prom after an intended exporter change
	UPDATE_GOLDEN=1 $(NODE_TEST) test/unit/sink/exporter-metrics.test.ts

# The one Python virtualenv: fastavro for the cross-language tests in test/interop/, and the python/
# package (editable) with torch, JAX, Flax and the test tools. torch from PyPI brings its CUDA
# libraries (about 2.8 GB; it runs on CPU), so the venv is kept until a requirements file changes.
.venv: test/interop/requirements.txt python/requirements.txt python/pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r test/interop/requirements.txt -r python/requirements.txt
	.venv/bin/pip install --quiet --disable-pip-version-check --no-deps -e python
	@touch .venv

# KAFKA_BROKERS set: that broker; otherwise the tests start (or reuse) the local one, as the TypeScript suite does.
test-python: install kafka-jars .venv ## the Python package: ruff, then pytest (unit, real broker, a 2-process torch run, a JAX run)
	cd python && ../.venv/bin/ruff check . && ../.venv/bin/ruff format --check .
	cd python && ../.venv/bin/python -m pytest

kafka-jars: ## fetch the Kafka broker jars from Maven Central (once)
	$(KAFKA) jars

kafka-up: install ## start the local single-node Kafka (idempotent); prints the bootstrap address
	$(KAFKA) up

kafka-down: ## stop the local Kafka started by kafka-up
	$(KAFKA) down

kafka-down-all: ## stop every local broker under .kafka-local/ (tests may start extra ones)
	@for d in .kafka-local/*/; do [ -d "$$d" ] && KAFKA_PORT=$$(basename "$$d") $(KAFKA) down || true; done

# KAFKA_BROKERS set: use that broker; otherwise start (or reuse) the local one, which is left running.
demo: install ## the live demo: train, consume, print ReLU deaths as they happen (ARGS=--ci: finish after the run)
	@brokers="$${KAFKA_BROKERS:-}"; \
	if [ -z "$$brokers" ]; then brokers=$$($(KAFKA) up | tail -n 1); fi; \
	exec node --import tsx src/cli/main.ts demo --brokers "$$brokers" $(ARGS)

# A private broker on its own port, so other topics and tests never share it with the measurements.
BENCH_KAFKA_PORT ?= 19900
# About 25 minutes on 2 cores, 10 of them the soak; BENCH_SOAK_S and BENCH_RUNS shorten it (knobs: bench/e2e.ts).
# The soak's own broker keeps its log in memory (bench/e2e.ts says why; about 9 GB at the peak), on disk
# where /dev/shm has less than 12 GB free; the results name the filesystem either way.
BENCH_SOAK_KAFKA_PORT ?= 19920
BENCH_SOAK_STATE ?= $(shell avail=$$(df -k --output=avail /dev/shm 2>/dev/null | tail -n 1); \
  if [ "$${avail:-0}" -gt 12000000 ] 2>/dev/null; then echo /dev/shm/reluwatch-bench-soak; \
  else echo $(CURDIR)/.kafka-local/$(BENCH_SOAK_KAFKA_PORT); fi)
SOAK_KAFKA := KAFKA_PORT=$(BENCH_SOAK_KAFKA_PORT) KAFKA_STATE_DIR=$(BENCH_SOAK_STATE) $(KAFKA)
bench: install kafka-jars .venv ## benchmarks on private local brokers -> docs/benchmarks.{json,md}, docs/scaling.md (BENCH_SOAK_S=60 BENCH_RUNS=1 shorten it)
	@# The bench's private brokers start empty: topics an interrupted run left behind would add up.
	KAFKA_PORT=$(BENCH_KAFKA_PORT) $(KAFKA) down
	$(SOAK_KAFKA) down
	rm -rf .kafka-local/$(BENCH_KAFKA_PORT) $(BENCH_SOAK_STATE)
	KAFKA_PORT=$(BENCH_KAFKA_PORT) $(KAFKA) up
	KAFKA_EXTRA_PROPERTIES=$(CURDIR)/bench/soak-broker.properties $(SOAK_KAFKA) up
	trap 'KAFKA_PORT=$(BENCH_KAFKA_PORT) $(KAFKA) down; $(SOAK_KAFKA) down; rm -rf $(BENCH_SOAK_STATE)' EXIT; \
	  BENCH_BROKERS=127.0.0.1:$(BENCH_KAFKA_PORT) BENCH_SOAK_BROKERS=127.0.0.1:$(BENCH_SOAK_KAFKA_PORT) \
	  BENCH_SOAK_BROKER_LOG="$$(stat -f -c %T $(BENCH_SOAK_STATE))" npx tsx bench/run.ts

PROFILE_KAFKA_PORT ?= 19960
profile: install kafka-jars ## CPU profile of `reluwatch consume` and of its decode+process loop on a private broker: top self-time functions, snapshots/s
	KAFKA_PORT=$(PROFILE_KAFKA_PORT) $(KAFKA) up
	trap 'KAFKA_PORT=$(PROFILE_KAFKA_PORT) $(KAFKA) down' EXIT; \
	  PROFILE_BROKERS=127.0.0.1:$(PROFILE_KAFKA_PORT) npx tsx bench/profile.ts

eval: install ## detection-quality evaluation: simulate + replay scenarios, score against truth, write docs/evaluation.md
	npx tsx scripts/eval.ts

clean: ## remove build output and local broker data (stops brokers first)
	$(MAKE) kafka-down-all
	rm -rf dist .kafka-local
