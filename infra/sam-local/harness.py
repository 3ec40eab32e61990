"""Writes the local-only harness template `sam local` runs against:
.aws-sam/harness/template.yaml, from template.yaml and the artifacts of
`sam build` (no second compile of the functions).

usage: .venv/bin/python infra/sam-local/harness.py DYNAMODB_ENDPOINT   (from the repository root)

What it keeps from template.yaml, as built: every function that serves a
request (the authorizer and every function with an API event), with its
environment and its dashboard routes. What it changes, and why (SAM's
emulation, docs/sam-local.md):

- the dashboard API's Cognito authorizer, which SAM skips, becomes
  DevIdentityFunction, a Lambda REQUEST authorizer that decodes and does
  NOT verify the JWT (as the local API does); the handlers read the caller
  from its context;
- the protected API's http_proxy routes, which SAM ignores, become Lambda
  routes to EchoFunction, one per route of the same generated definition,
  behind the real authorizer (a REQUEST authorizer without cache or
  identity source, as deployed with AuthorizerCacheTtl 0);
- both APIs get the dashboard's CORS setting (SAM keeps one for all);
- the functions reach DynamoDB Local at DYNAMODB_ENDPOINT (the host as the
  containers see it) with dummy credentials, all declared in the template,
  since `--env-vars` sets only declared variables.

Nothing here reaches template.yaml or a deployment: the file is written
under .aws-sam/ (ignored by git) and names local artifacts.
"""
import os
import shutil
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse

ROOT = os.getcwd()
OUT = os.path.join(ROOT, ".aws-sam", "harness")
# The protected API's authorizer; with every function that has an API event
# (written into template.yaml from the function table), what is served.
AUTHORIZER = "AuthorizerFunction"
LOCAL_ONLY = {"EchoFunction": "sam-local-echo", "DevIdentityFunction": "sam-local-identity"}
ORIGIN = "http://localhost:5173"
VALUES = {
    "DashboardOrigin": ORIGIN,
    "AccountIdClaim": "sub",
    "MaxKeysPerAccount": "100",
    "LastUsedIntervalSeconds": "300",
    "GithubKeysUrl": "http://127.0.0.1:9/unreachable",
    "AuthorizerCacheTtl": "0",
}


def resolve(value):
    """The template's own parameter references, as local values."""
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in VALUES:
        return VALUES[value["Ref"]]
    return value


def main(endpoint):
    with open("template.yaml", encoding="utf-8") as f:
        source = yaml_parse(f.read())
    res = source["Resources"]
    os.makedirs(OUT, exist_ok=True)

    env = {
        "TABLE_NAME": "prolinksqr-keys",
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "RUST_LOG": "info",
    }
    functions = {}
    served = [AUTHORIZER] + [
        name
        for name, r in res.items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] == "Api" for e in (r["Properties"].get("Events") or {}).values())
    ]
    for name in served:
        props = res[name]["Properties"]
        built = os.path.join(ROOT, ".aws-sam", "build", name)
        if not os.path.exists(os.path.join(built, "bootstrap")):
            sys.exit(f"harness: {built}/bootstrap is missing: run `sam build` first")
        variables = {k: resolve(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        variables = {k: v for k, v in variables.items() if isinstance(v, str)}
        fn = {
            "CodeUri": built,
            "Timeout": props.get("Timeout", 5),
            "MemorySize": props.get("MemorySize", 256),
            "Environment": {"Variables": {**env, **variables}},
        }
        events = {}
        for ev_name, ev in props.get("Events", {}).items():
            if ev["Type"] == "Api":
                events[ev_name] = ev
        if events:
            fn["Events"] = events
        functions[name] = {"Type": "AWS::Serverless::Function", "Properties": fn}

    # Local-only functions: their binaries from the same target dir.
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    for name, krate in LOCAL_ONLY.items():
        binary = os.path.join(target, "lambda", krate, "bootstrap")
        if not os.path.exists(binary):
            sys.exit(f"harness: {binary} is missing: cargo lambda build --release --arm64 -p {krate}")
        folder = os.path.join(OUT, name)
        os.makedirs(folder, exist_ok=True)
        shutil.copy2(binary, os.path.join(folder, "bootstrap"))
        functions[name] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"CodeUri": folder, "Timeout": 5, "MemorySize": 128},
        }

    # The protected routes: the generated definition's paths and methods.
    paths = res["ProtectedApi"]["Properties"]["DefinitionBody"]["paths"]
    echo_events = {}
    for path, ops in paths.items():
        for method in ops:
            key = "Route" + "".join(c for c in f"{method}{path}".title() if c.isalnum())
            echo_events[key] = {
                "Type": "Api",
                "Properties": {"RestApiId": {"Ref": "ProtectedApi"}, "Path": path, "Method": method.upper()},
            }
    functions["EchoFunction"]["Properties"]["Events"] = echo_events

    cors = res["DashboardApi"]["Properties"]["Cors"]
    cors = {**cors, "AllowOrigin": f"'{ORIGIN}'"}
    harness = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "LOCAL ONLY: the sam local harness (infra/sam-local/harness.py). Never deploy.",
        "Globals": {
            "Function": {
                "Runtime": "provided.al2023",
                "Architectures": ["arm64"],
                "Handler": "bootstrap",
            }
        },
        "Resources": {
            **functions,
            "DashboardApi": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "local",
                    "Cors": cors,
                    "Auth": {
                        "DefaultAuthorizer": "DevIdentity",
                        "AddDefaultAuthorizerToCorsPreflight": False,
                        "Authorizers": {
                            "DevIdentity": {
                                "FunctionArn": {"Fn::GetAtt": ["DevIdentityFunction", "Arn"]},
                                "FunctionPayloadType": "REQUEST",
                                "Identity": {"ReauthorizeEvery": 0},
                            }
                        },
                    },
                },
            },
            "ProtectedApi": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "local",
                    "Cors": cors,
                    "Auth": {
                        "DefaultAuthorizer": "ApiKeyAuthorizer",
                        "Authorizers": {
                            "ApiKeyAuthorizer": {
                                "FunctionArn": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
                                "FunctionPayloadType": "REQUEST",
                                "Identity": {"ReauthorizeEvery": 0},
                            }
                        },
                    },
                },
            },
        },
    }
    out = os.path.join(OUT, "template.yaml")
    with open(out, "w", encoding="utf-8") as f:
        f.write("# LOCAL ONLY, generated by infra/sam-local/harness.py: never deploy this file.\n")
        f.write(yaml_dump(harness))
    print(f"harness: {out} ({len(echo_events)} protected routes, DynamoDB at {endpoint})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
