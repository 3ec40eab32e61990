#!/usr/bin/env bash
# Runs the README's quick-start curl session exactly as written against the
# README's run command (`make run`), and checks every status it prints (` → NNN`)
# against the `→` notes in its comments, in order. Exits non-zero on any difference.
#
#   infra/scripts/check-readme-quickstart.sh            starts `make run` and stops it after
#   infra/scripts/check-readme-quickstart.sh --running  uses the server already on
#                                               127.0.0.1:$PORT (infra/scripts/check-sam-local.sh
#                                               runs the session against `sam local start-api`)
# The port is PORT's (default 3000), as for `make run` and the session itself.
set -euo pipefail
export PORT="${PORT:-3000}"
running=false
[ "${1:-}" = --running ] && running=true
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

block="$(mktemp)"; out="$(mktemp)"; log="$(mktemp)"
awk '/<!-- quickstart:begin -->/{on=1; next} /<!-- quickstart:end -->/{on=0} on' README.md | sed '/^```/d' > "$block"
[ -s "$block" ] || { echo "no quickstart block in README.md" >&2; exit 1; }

# The statuses the comments promise, in order: "# … → 200, 401" gives 200 401.
expected="$(grep -E '^#.*→' "$block" | sed -E 's/.*→ *//' | tr ',' '\n' | tr -d ' ' | grep -E '^[0-9]{3}$' | tr '\n' ' ')"

cargo build -q -p local-stack --bin local-api
if $running; then
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" || { echo "nothing listens on 127.0.0.1:$PORT" >&2; exit 1; }
else
if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
    echo "something already listens on 127.0.0.1:$PORT" >&2; exit 1
fi
# make and the local API it starts run in a process group of their own, so
# they are stopped together, by that group's id (make's PID), like Ctrl-C.
setsid make run > "$log" 2>&1 &
run_pid=$!
stop() { kill -INT -- "-$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 120); do
    grep -q "listening on" "$log" && break
    kill -0 "$run_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
done
grep -q "listening on" "$log" || { echo "make run did not start" >&2; cat "$log" >&2; exit 1; }
fi

bash -euo pipefail "$block" | tee "$out"
got="$(grep -oE '→ [0-9]{3}$' "$out" | sed 's/→ //' | tr '\n' ' ')"
echo
echo "expected: $expected"
echo "got:      $got"
[ "$got" = "$expected" ] || { echo "README quick start: statuses differ" >&2; exit 1; }
echo "README quick start: ok"
