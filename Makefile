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

.PHONY: dev-reset
dev-reset: emulators-check build ## like dev, but first forget the runs and history kept from earlier `make dev`s
	$(BIN)/updraft dev --reset $(if $(DAGS),$(DAGS),examples/dags)

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

.PHONY: soak
soak: emulators-check ## soak and chaos suite: real processes for real minutes (SOAK=short for the quick one; docs/soak.md)
	UPDRAFT_SOAK=$(if $(SOAK),$(SOAK),long) $(GO) test -tags soak -count=1 -timeout 90m -parallel 8 -v ./soak/

.PHONY: fuzz
fuzz: ## run the parsers' fuzzers for a minute each
	$(GO) test -run '^$$' -fuzz FuzzParseCron -fuzztime 60s ./scheduler/schedule/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./dag/

# ---- Google Cloud: docs/deploy.md walks through it. Not run in CI. ----
# PROJECT and REGION are required; they, REPO and TAG override infra/terraform.tfvars.
REPO ?= updraft
TF   := terraform -chdir=infra
ifneq ($(filter deploy images destroy,$(MAKECMDGOALS)),)
ifeq ($(origin TAG),undefined)
TAG := $(shell deploy/build.sh tag)
endif
endif
TF_VARS   = -var 'project=$(PROJECT)' -var 'region=$(REGION)' -var 'artifact_repository=$(REPO)' -var 'image_tag=$(TAG)'
TF_APPLY  = $(TF) apply -input=false $(if $(AUTO_APPROVE),-auto-approve)
# The repository must exist before the images are pushed, and the services need the images.
AR_TARGETS = $(shell sed -n 's/^resource "google_artifact_registry_repository" "\([^"]*\)".*/-target=google_artifact_registry_repository.\1/p' infra/*.tf)

.PHONY: deploy-check
deploy-check: ## check the tools, login and PROJECT/REGION that deploy, images and destroy need
	@command -v gcloud >/dev/null || { echo "gcloud is not installed: https://cloud.google.com/sdk/docs/install" >&2; exit 1; }
	@test -n "$(PROJECT)" || { echo "set PROJECT, e.g. make deploy PROJECT=my-project REGION=asia-northeast3" >&2; exit 1; }
	@test -n "$(REGION)" || { echo "set REGION, e.g. make deploy PROJECT=my-project REGION=asia-northeast3" >&2; exit 1; }
	@test -n "$$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null)" || { echo "gcloud has no active account: run gcloud auth login" >&2; exit 1; }
	@if [ "$(filter images,$(MAKECMDGOALS))" != "$(MAKECMDGOALS)" ]; then \
	  command -v terraform >/dev/null || { echo "terraform is not installed (>= 1.5): https://developer.hashicorp.com/terraform/install" >&2; exit 1; }; \
	  gcloud auth application-default print-access-token >/dev/null 2>&1 || { echo "Terraform and the updraft CLI use Application Default Credentials: run gcloud auth application-default login" >&2; exit 1; }; \
	fi

.PHONY: images
images: deploy-check ## build the images and push them to Artifact Registry (BUILDER=cloudbuild|docker, TAG=, REQUIREMENTS= the python tasks' requirements.txt)
	gcloud services enable cloudbuild.googleapis.com artifactregistry.googleapis.com --project '$(PROJECT)'
	PROJECT='$(PROJECT)' REGION='$(REGION)' REPO='$(REPO)' TAG='$(TAG)' REQUIREMENTS='$(REQUIREMENTS)' deploy/build.sh

.PHONY: deploy
deploy: deploy-check build ## deploy to Google Cloud: images, terraform apply, then DAGS through the API (PROJECT=, REGION=, ADMIN=)
	@test -n "$(AR_TARGETS)" || { echo "infra/ declares no google_artifact_registry_repository to push the images to" >&2; exit 1; }
	@echo "==> Terraform: the APIs and the Artifact Registry repository first"
	$(TF) init -input=false
	$(TF_APPLY) $(TF_VARS) $(AR_TARGETS)
	@echo "==> images $(TAG)"
	$(MAKE) --no-print-directory images TAG='$(TAG)'
	@echo "==> Terraform: everything"
	$(TF_APPLY) $(TF_VARS)
	$(if $(ADMIN),@echo "==> granting admin to $(ADMIN)")
	$(if $(ADMIN),GOOGLE_CLOUD_PROJECT='$(PROJECT)' UPDRAFT_USER="$$(gcloud config get-value account 2>/dev/null)" $(BIN)/updraft users grant '$(ADMIN)' admin)
	@echo "==> DAGs from $(if $(DAGS),$(DAGS),examples/dags), through the API (the ID token's email needs the admin role; docs/deploy.md)"
	$(BIN)/updraft --api "$$($(TF) output -raw ui_url)" dags deploy $(if $(DAGS),$(DAGS),examples/dags)
	@echo "Deployed $(TAG). The UI: $$($(TF) output -raw ui_url)"

.PHONY: destroy
destroy: deploy-check ## tear the deployment down (lifts deletion_protection first; docs/deploy.md says what remains)
	$(TF) init -input=false
	@deployed=$$($(TF) state pull 2>/dev/null | grep -o '/updraft-scheduler:[A-Za-z0-9_.-]*' | head -1 | cut -d: -f2); \
	tag=$${deployed:-$(TAG)}; echo "==> lifting deletion_protection (images $$tag)"; \
	$(TF_APPLY) -var 'project=$(PROJECT)' -var 'region=$(REGION)' -var 'artifact_repository=$(REPO)' -var "image_tag=$$tag" -var deletion_protection=false && \
	echo "==> terraform destroy" && \
	$(TF) destroy -input=false $(if $(AUTO_APPROVE),-auto-approve) -var 'project=$(PROJECT)' -var 'region=$(REGION)' -var 'artifact_repository=$(REPO)' -var "image_tag=$$tag" -var deletion_protection=false

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
