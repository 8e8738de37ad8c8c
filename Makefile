# Updraft: `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
export UPDRAFT_CACHE ?= $(HOME)/.cache/updraft

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: emulators-check
emulators-check: ## check that Java and the Firestore and Pub/Sub emulators are installed (says what to install)
	@$(GO) run ./emulators/cmd/emulators check

.PHONY: build
build: ## build every entry point into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: dev
dev: emulators-check build ## start everything locally on the emulators with examples/dags (Ctrl-C stops it all)
	$(BIN)/updraft dev $(if $(DAGS),$(DAGS),examples/dags)

.PHONY: lint
lint: ## gofmt, go vet, and validate the example DAGs
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt would change: $$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) run ./cmd/updraft dags validate examples/dags
	@if command -v terraform >/dev/null; then TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive infra; else echo "terraform not installed: skipping terraform fmt -check"; fi

.PHONY: test
test: emulators-check lint ## all tests: unit, integration and end-to-end on the emulators
	$(GO) test -count=1 -timeout 15m ./...

.PHONY: bench
bench: emulators-check build ## measure latency, throughput, tick cost and idle RSS; prints a table
	$(BIN)/updraft-bench

.PHONY: fuzz
fuzz: ## run the parsers' fuzzers for a minute each
	$(GO) test -run '^$$' -fuzz FuzzParseCron -fuzztime 60s ./scheduler/schedule/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./dag/

.PHONY: deploy
deploy: ## deploy to Google Cloud (not yet: see docs/deploy.md)
	@echo "make deploy is not available yet: the Terraform and image builds come with the GCP deployment work (see docs/deploy.md)." >&2; exit 1

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
