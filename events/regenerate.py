"""Regenerates the sample events from `sam local generate-event`, then adjusts
them: real paths, concrete method ARNs, multi-value headers, the dashboard's
Cognito claims in requestContext.authorizer.claims, and path parameters.

usage: .venv/bin/python events/regenerate.py   (the SAM tooling's venv: the `sam` CLI and its YAML parser)
Tests load these files, so what they show stays true. The dashboard's
events are one per function with a dashboard route, read from template.yaml
(whose routes `cargo xtask generate` writes from the function table).
"""
import json
import os
import shutil
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAM = shutil.which("sam") or os.path.join(ROOT, ".venv", "bin", "sam")

# A dashboard user (Cognito user-pool claims) and an example key id.
CLAIMS = {
    "sub": "3f1c2a9e-5d2b-4c7e-9a1f-0b6d8e4c2a71",
    "cognito:username": "ada",
    "email": "ada@example.com",
    "email_verified": "true",
    "token_use": "id",
    "aud": "4k1examplee8c0lientid0000",
    "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
    "auth_time": "1795670000",
    "exp": "Thu Nov 26 08:30:00 UTC 2026",
    "iat": "Thu Nov 26 07:30:00 UTC 2026",
}
KEY_ID = "7QbZ2kVnR4xW9pLmT3sHcA"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sample_key(body):
    """A well-formed key (format of apikeys::material): `key-` + 34-char body + base62 CRC32."""
    assert len(body) == 34 and all(c in BASE62 for c in body)
    n, digits = zlib.crc32(body.encode()), []
    for _ in range(6):
        n, r = divmod(n, 62)
        digits.append(BASE62[r])
    return "key-" + body + "".join(reversed(digits))


# A sample key for trying the authorizer events; it grants nothing anywhere
# until a record with its hash is stored (tests store one).
SAMPLE_KEY = sample_key("SampleKeyForLocalTriesOnly00000000")
ORIGIN = "https://dashboard.prolinksqr.com"


def sam(*args):
    out = subprocess.run([SAM, "local", "generate-event", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def write(name, event):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(event, f, indent=2)
        f.write("\n")


def proxy(method, resource, path, body=None, query=None, extra_headers=None):
    args = ["apigateway", "aws-proxy", "--method", method, "--resource", resource, "--path", path.lstrip("/")]
    if body is not None:
        args += ["--body", json.dumps(body)]
    ev = sam(*args)
    ev["resource"] = resource
    ev["path"] = path
    ev["body"] = json.dumps(body) if body is not None else None
    ev["isBase64Encoded"] = False
    ev["pathParameters"] = {"id": KEY_ID} if "{id}" in resource else None
    ev["queryStringParameters"] = query
    ev["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    ev["stageVariables"] = None
    headers = {
        "Accept": "application/json",
        "Authorization": "Bearer eyJraWQiOiJleGFtcGxlIn0.eyJzdWIiOiIzZjFjIn0.c2lnbmF0dXJl",
        "Host": "1234567890.execute-api.us-east-1.amazonaws.com",
        "Origin": ORIGIN,
        "User-Agent": "Mozilla/5.0",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    headers.update(extra_headers or {})
    ev["headers"] = headers
    ev["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    rc = ev["requestContext"]
    rc["resourcePath"] = resource
    rc["httpMethod"] = method
    rc["path"] = "/prod" + path
    rc["authorizer"] = {"claims": dict(CLAIMS)}
    return ev


def authorizer(method, resource, path, key):
    ev = sam("apigateway", "request-authorizer", "--resource", resource.lstrip("/"))
    arn = f"arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/{method}{path}"
    ev.update({"methodArn": arn, "resource": resource, "path": path, "httpMethod": method})
    headers = {
        "Accept": "*/*",
        "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
        "x-api-key": key,
    }
    ev["headers"] = headers
    ev["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    ev["queryStringParameters"] = {}
    ev["multiValueQueryStringParameters"] = {}
    ev["pathParameters"] = {"id": path.rsplit("/", 1)[-1]} if "{id}" in resource else {}
    ev["stageVariables"] = {}
    rc = ev["requestContext"]
    rc.update({
        "path": "/test" + path,
        "resourcePath": resource,
        "httpMethod": method,
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "identity": {"apiKey": None, "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
        "requestTime": "26/Nov/2026:07:30:00 +0000",
        "requestTimeEpoch": 1795678200000,
        "protocol": "HTTP/1.1",
        "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "abcdef123",
    })
    return ev


def main():
    os.makedirs(os.path.join(HERE, "authorizer"), exist_ok=True)
    write("authorizer/request-generated.json", sam("apigateway", "request-authorizer", "--resource", "links/{id}"))
    write("authorizer/request-links-get.json", authorizer("GET", "/links/{id}", "/links/lnk_8f3a2c", "REPLACE_WITH_A_KEY"))
    write("authorizer/allow.json", authorizer("GET", "/links/{id}", "/links/lnk_8f3a2c", SAMPLE_KEY))
    write("authorizer/deny.json", authorizer("DELETE", "/links/{id}", "/links/lnk_8f3a2c", SAMPLE_KEY))
    write("authorizer/unauthorized.json", authorizer("GET", "/links/{id}", "/links/lnk_8f3a2c", "key-typo"))
    for package, method, resource in dashboard_routes():
        sample = SAMPLES.get(package, {})
        write(f"{package}.json", proxy(method, resource, resource.replace("{id}", KEY_ID), **sample))


# What each dashboard function's sample carries beyond its route.
SAMPLES = {
    "create-key": {"body": {"name": "Zapier integration", "scopes": ["links.read", "links.create"],
                            "expiresAt": "2030-01-01T00:00:00Z"}},
    "list-keys": {"query": {"limit": "20"}},
    "update-key": {"body": {"name": "CI bot", "active": False}, "extra_headers": {"If-Match": '"1"'}},
    "roll-key": {"body": {"gracePeriodSeconds": 3600}, "extra_headers": {"If-Match": '"1"'}},
    "list-key-events": {"query": {"limit": "20"}},
}


def dashboard_routes():
    """(package, method, resource) of every function the dashboard's users call."""
    from samcli.yamlhelper import yaml_parse  # the sam CLI's own parser (CloudFormation tags)

    with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as f:
        resources = yaml_parse(f.read())["Resources"]
    for r in resources.values():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        for e in (r["Properties"].get("Events") or {}).values():
            p = e["Properties"]
            if e["Type"] == "Api" and p.get("Auth", {}).get("Authorizer") != "NONE":
                yield r["Properties"]["CodeUri"].removeprefix("functions/"), p["Method"], p["Path"]


if __name__ == "__main__":
    sys.exit(main())
