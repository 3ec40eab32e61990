#!/usr/bin/env bash
# `sam local`, for real, on the artifacts of `sam build` (run it first):
#
# 1. runs docs/sam-local.md's by-hand recipe, line by line as written (the
#    lines between its sam-local markers): Docker prepared, DynamoDB Local on
#    $DYNAMODB_PORT (default 8000), the table with the sample events' key,
#    the harness's two local-only functions built into the same target dir,
#    the harness template, one `sam local invoke`; its last line, `sam local
#    start-api`, is kept for step 3;
# 2. `sam local invoke`s the authorizer and every dashboard function
#    with the events/ files and checks each answer;
# 3. the recipe's `sam local start-api` on 127.0.0.1:$PORT (default 3000) serves both APIs through SAM's
#    emulation: the README's quick-start session runs against it as written
#    (infra/scripts/check-readme-quickstart.sh --running, the same statuses as against
#    `make run`), then all 31 protected routes through the real authorizer to
#    the echo function, and the dashboard's CORS preflight.
#
# usage: [PORT=3000] [DYNAMODB_PORT=8000] infra/scripts/check-sam-local.sh
#        (from anywhere; needs .venv with infra/requirements-sam.txt)
# Exits non-zero on any wrong answer. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PORT="${PORT:-3000}"
export PATH="$PWD/.venv/bin:$PATH"
[ -x .aws-sam/build/AuthorizerFunction/bootstrap ] || { echo "check-sam-local: run sam build first" >&2; exit 1; }

recipe=$(mktemp)
awk '/<!-- sam-local:begin -->/{on=1; next} /<!-- sam-local:end -->/{on=0} on' docs/sam-local.md | sed '/^```/d' >"$recipe"
serve=$(tail -n 1 "$recipe")
case "$serve" in *" local start-api "*) ;; *) echo "check-sam-local: the recipe must end with sam local start-api" >&2; exit 1 ;; esac

# The recipe, then the checks, in one shell of a process group of its own:
# DynamoDB Local (`make dynamodb-local &`) and everything else it starts
# stop with the group.
script=$(mktemp)
{
    echo 't0=$(date +%s)'
    head -n -1 "$recipe"
    echo 'echo "check-sam-local: the recipe, up to start-api, in $(( $(date +%s) - t0 )) s"'
    printf 'SERVE=%q\n' "$serve"
    cat <<'CHECKS'
SAM=".venv/bin/python infra/sam-local/sam.py"
H=.aws-sam/harness/template.yaml
out=$(mktemp -d)

# ---------------------------------------------------------------- invokes
t0=$(date +%s)
invoke() {  # NAME FUNCTION EVENT
    $SAM local invoke -t "$H" --skip-pull-image "$2" -e "$3" >"$out/$1.json" 2>"$out/$1.log" || true
}
invoke unauthorized AuthorizerFunction events/authorizer/unauthorized.json
invoke allow AuthorizerFunction events/authorizer/allow.json
invoke deny AuthorizerFunction events/authorizer/deny.json
invoke create CreateKeyFunction events/create-key.json
invoke list ListKeysFunction events/list-keys.json
invoke get GetKeyFunction events/get-key.json
invoke update UpdateKeyFunction events/update-key.json
invoke delete DeleteKeyFunction events/delete-key.json
# The roll event expects version 1 too (If-Match): the sample key again.
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT make -s create-table ARGS="prolinksqr-keys --sample-key" >/dev/null
invoke roll RollKeyFunction events/roll-key.json
invoke events ListKeyEventsFunction events/list-key-events.json
invoke scopes ListScopesFunction events/list-scopes.json
t1=$(date +%s)
.venv/bin/python - "$out" <<"PY"
import json, sys
out = sys.argv[1]
SAMPLE_ID, SAMPLE_SUB = "7QbZ2kVnR4xW9pLmT3sHcA", "3f1c2a9e-5d2b-4c7e-9a1f-0b6d8e4c2a71"
failures = []
def load(name):
    text = open(f"{out}/{name}.json").read().strip().splitlines()
    try:
        return json.loads(text[-1]) if text else None
    except ValueError:
        return None
def body(resp):
    return json.loads(resp["body"]) if resp and resp.get("body") else None
def check(name, ok, resp):
    print(("ok   " if ok else "FAIL ") + name)
    if not ok:
        failures.append(name)
        print("     answer:", json.dumps(resp)[:400])
        print("     log:", open(f"{out}/{name}.log").read()[-1500:])
def event(path):
    return json.load(open(path))
r = load("unauthorized")
check("unauthorized", r == {"errorType": "Unauthorized", "errorMessage": "Unauthorized"}, r)
r = load("allow")
arn = event("events/authorizer/allow.json")["methodArn"]
ok = (r and r["policyDocument"]["Statement"][0]["Effect"] == "Allow"
      and r["policyDocument"]["Statement"][0]["Resource"] == [arn]
      and r["principalId"] == SAMPLE_ID
      and r["context"] == {"accountId": SAMPLE_SUB, "keyId": SAMPLE_ID, "scopes": "links.read"})
check("allow", bool(ok), r)
r = load("deny")
check("deny", bool(r and r["policyDocument"]["Statement"][0]["Effect"] == "Deny" and r["principalId"] == SAMPLE_ID), r)
r = load("create")
check("create", bool(r and r["statusCode"] == 201 and body(r)["key"].startswith("key-")), r)
r = load("list")
check("list", bool(r and r["statusCode"] == 200 and SAMPLE_ID in [i["id"] for i in body(r)["items"]]), r)
r = load("get")
check("get", bool(r and r["statusCode"] == 200 and body(r)["id"] == SAMPLE_ID and "key" not in body(r)), r)
r = load("update")
check("update", bool(r and r["statusCode"] == 200 and body(r)["active"] is False and body(r)["name"] == "CI bot"), r)
r = load("delete")
check("delete", bool(r and r["statusCode"] == 204), r)
r = load("roll")
check("roll", bool(r and r["statusCode"] == 201 and body(r)["id"] == SAMPLE_ID and body(r)["key"].startswith("key-")), r)
r = load("events")
check("events", bool(r and r["statusCode"] == 200 and [e["action"] for e in body(r)["items"]][:2] == ["rolled", "created"]), r)
r = load("scopes")
check("scopes", bool(r and r["statusCode"] == 200 and body(r)["all"]["scope"] == "all" and len(body(r)["groups"]) == 5), r)
sys.exit(1 if failures else 0)
PY
echo "check-sam-local: 11 invokes in $(( t1 - t0 )) s"

# -------------------------------------------------------------- start-api
t0=$(date +%s)
setsid bash -c "$SERVE" >"$out/start-api.log" 2>&1 &
api=$!
stop() { kill -TERM -- "-$api" 2>/dev/null || true; wait "$api" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 120); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    kill -0 "$api" 2>/dev/null || { cat "$out/start-api.log" >&2; exit 1; }
    sleep 0.5
done
infra/scripts/check-readme-quickstart.sh --running || { tail -60 "$out/start-api.log" >&2; exit 1; }

# Every protected route through the real authorizer to the echo function,
# with a key holding `all`; a links.read key is refused on a route it lacks.
.venv/bin/python - <<"PY" || { tail -60 "$out/start-api.log" >&2; exit 1; }
import base64, json, os, re, sys, urllib.request
B = "http://127.0.0.1:" + os.environ["PORT"]
token = "x." + base64.urlsafe_b64encode(b"{\"sub\":\"acct-sam\"}").decode().rstrip("=") + ".x"
def call(method, path, headers=None, body=None):
    req = urllib.request.Request(B + path, method=method, headers=headers or {},
                                 data=body.encode() if body else None)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
def create(scopes):
    s, _, b = call("POST", "/apikeys", {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                   json.dumps({"name": "sam", "scopes": scopes}))
    assert s == 201, (s, b)
    return json.loads(b)["key"]
src = open("shared/scopes/src/routes.rs").read()
routes = re.findall(r"route\(\"(\w+)\", \"([^\"]+)\", (\w+)\)", src)
assert len(routes) == 31, len(routes)
every, reader = create(["all"]), create(["links.read"])
bad = []
for method, resource, _ in routes:
    path = re.sub(r"\{[^}]+\}", "v1", resource)
    s, _, b = call(method, path, {"x-api-key": every})
    if s != 200 or json.loads(b)["route"] != {"method": method, "resource": resource, "scope": json.loads(b)["route"]["scope"]}:
        bad.append((method, path, s, b[:200]))
print(f"31 protected routes with an all key: {31 - len(bad)} answered by the echo function")
s, _, b = call("DELETE", "/links/v1", {"x-api-key": reader})
if s != 403:
    bad.append(("DELETE /links/v1 with links.read", s, b))
s, h, _ = call("OPTIONS", "/apikeys", {"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"})
if s != 200 or h.get("Access-Control-Allow-Origin") != "http://localhost:5173":
    bad.append(("preflight", s, h))
if bad:
    print("FAIL", *bad, sep="\n  ")
    sys.exit(1)
print("ok   every protected route, a scope refused, the dashboard preflight")
PY
t1=$(date +%s)
echo "check-sam-local: start-api session in $(( t1 - t0 )) s"
CHECKS
} >"$script"

t0=$(date +%s)
setsid bash -euo pipefail "$script" &
group=$!
stop() {
    kill -TERM -- "-$group" 2>/dev/null || true
    wait "$group" 2>/dev/null || true
    rm -f "$recipe" "$script"
    infra/scripts/sam-local.sh stop
}
trap stop EXIT
status=0
wait "$group" || status=$?
echo "check-sam-local: $(( $(date +%s) - t0 )) s in all"
exit "$status"
