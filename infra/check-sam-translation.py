"""Tests on the CloudFormation that SAM generates from template.yaml: the
template is transformed with the pinned SAM translator (aws-sam-translator,
as `sam` uses it) and the output is checked, not the input.

usage: .venv/bin/python infra/check-sam-translation.py   (from the repository root)
Prints one line per check and a closing 'N passed, N failed' line; exits 1 on
any failure.
"""
import copy
import json
import logging
import os
import re
import sys
import time

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
logging.disable(logging.WARNING)  # the translator's own chatter

from samcli.yamlhelper import yaml_parse  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402

BASE = {
    "UserPoolArn": "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_example",
    "OriginVerifySecret": "o" * 40,
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "keys",
    "AWS::URLSuffix": "amazonaws.com",
}

with open("template.yaml", encoding="utf-8") as f:
    SOURCE = yaml_parse(f.read())


class NoManagedPolicies:
    """The template names no managed policy by name: nothing to look up in IAM."""

    def load(self):
        return {}


def translate(template=None, **params):
    t = copy.deepcopy(template or SOURCE)
    for res in t["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://artifacts/function.zip"  # as `sam package` leaves it
    return transform(t, {**BASE, **params}, NoManagedPolicies())


def of_type(cfn, kind):
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def ref(value):
    return value.get("Ref") if isinstance(value, dict) else None


def stages_of(cfn, api):
    return {k: v for k, v in of_type(cfn, "AWS::ApiGateway::Stage").items() if ref(v["Properties"]["RestApiId"]) == api}


def deployment_of(cfn, api):
    (stage,) = stages_of(cfn, api).values()
    return ref(stage["Properties"]["DeploymentId"])


def body(cfn, api):
    return cfn["Resources"][api]["Properties"]["Body"]


def operations(cfn, api):
    for path, ops in body(cfn, api)["paths"].items():
        for method, op in ops.items():
            yield path, method, op


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def a_changed_parameter_reaches_the_live_stage():
    """SAM names a deployment after the unresolved definition: without
    AlwaysDeploy, another BackendUrl or DashboardOrigin keeps the deployment
    id, CloudFormation makes no deployment and the stage serves the old one."""
    changes = [
        ("ProtectedApi", {"BackendUrl": "https://a.example.com"}, {"BackendUrl": "https://b.example.com"}),
        ("DashboardApi", {"DashboardOrigin": "https://a.example.com"}, {"DashboardOrigin": "https://b.example.com"}),
        ("ProtectedApi", {"OriginVerifySecret": "a" * 40}, {"OriginVerifySecret": "b" * 40}),
    ]
    for api, before, after in changes:
        first = translate(**before)
        time.sleep(1.05)  # AlwaysDeploy names the deployment after the second it was made in
        second = translate(**after)
        d1, d2 = deployment_of(first, api), deployment_of(second, api)
        assert d1 and d2 and d1 != d2, f"{api}: {before} → {after} keeps deployment {d1}"
        assert d2 in of_type(second, "AWS::ApiGateway::Deployment")


@check
def each_api_has_exactly_one_stage_even_one_named_stage():
    for name in ["prod", "Stage"]:
        cfn = translate(StageName=name)
        for api in ["DashboardApi", "ProtectedApi"]:
            stages = stages_of(cfn, api)
            assert len(stages) == 1, f"{api}: stages {sorted(stages)}"
        for k, d in of_type(cfn, "AWS::ApiGateway::Deployment").items():
            assert "StageName" not in d["Properties"], f"{k} makes a stage of its own"


@check
def only_the_protected_api_may_invoke_the_authorizer():
    cfn = translate()
    perms = [
        p["Properties"]
        for p in of_type(cfn, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    ]
    assert len(perms) == 1, perms
    (perm,) = perms
    assert perm["Principal"] == "apigateway.amazonaws.com"
    arn, names = perm["SourceArn"]["Fn::Sub"]
    assert arn.endswith(":${__ApiId__}/authorizers/*"), arn
    assert names == {"__ApiId__": {"Ref": "ProtectedApi"}}, names


@check
def every_protected_method_runs_the_lambda_authorizer_uncached():
    cfn = translate()
    b = body(cfn, "ProtectedApi")
    auth = b["securityDefinitions"]["ApiKeyAuthorizer"]
    assert auth["x-amazon-apigateway-authtype"] == "custom"
    assert auth["x-amazon-apigateway-authorizer"]["type"] == "request"
    assert auth["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in auth["x-amazon-apigateway-authorizer"], "no identity sources while uncached"
    ops = list(operations(cfn, "ProtectedApi"))
    assert len(ops) == 31, len(ops)
    for path, method, op in ops:
        assert op.get("security") == [{"ApiKeyAuthorizer": []}], f"{method} {path}: {op.get('security')}"


@check
def every_dashboard_method_but_the_preflight_needs_a_cognito_user():
    cfn = translate()
    scheme = body(cfn, "DashboardApi")["components"]["securitySchemes"]["DashboardUsers"]
    assert scheme["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    seen = set()
    for path, method, op in operations(cfn, "DashboardApi"):
        seen.add((method, path))
        if method == "options":
            assert not op.get("security"), f"preflight {path} needs no token"
        elif (method, path) == ("post", "/secret-scanning/github"):
            # GitHub's signature authenticates it (checked by the function).
            assert op.get("security") in (None, [], [{"NONE": []}]), op.get("security")
        else:
            assert op.get("security") == [{"DashboardUsers": []}], f"{method} {path}: {op.get('security')}"
    assert {m for m, _ in seen} >= {"get", "post", "patch", "delete", "options"}, seen


@check
def the_gateways_own_errors_carry_cors():
    cfn = translate()
    responses = body(cfn, "DashboardApi")["x-amazon-apigateway-gateway-responses"]
    for kind in ["DEFAULT_4XX", "DEFAULT_5XX"]:
        origin = responses[kind]["responseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert origin == {"Fn::Sub": "'${DashboardOrigin}'"}, (kind, origin)


@check
def the_backend_gets_the_origin_secret_and_never_the_key():
    cfn = translate()
    (stage,) = stages_of(cfn, "ProtectedApi").values()
    assert stage["Properties"]["Variables"] == {"originVerify": {"Ref": "OriginVerifySecret"}}
    params = SOURCE["Parameters"]
    assert params["OriginVerifySecret"].get("NoEcho") is True
    assert re.match(params["BackendUrl"]["AllowedPattern"], "https://backend.example.com")
    assert not re.match(params["BackendUrl"]["AllowedPattern"], "http://backend.example.com"), "BackendUrl must be https"
    for path, method, op in operations(cfn, "ProtectedApi"):
        integration = op["x-amazon-apigateway-integration"]
        assert integration["type"] == "http_proxy"
        assert integration["uri"]["Fn::Sub"].startswith("${BackendUrl}/")
        p = integration["requestParameters"]
        want = {
            "integration.request.header.X-Account-Id": "context.authorizer.accountId",
            "integration.request.header.X-Key-Id": "context.authorizer.keyId",
            "integration.request.header.X-Key-Scopes": "context.authorizer.scopes",
            "integration.request.header.X-Origin-Verify": "stageVariables.originVerify",
            "integration.request.header.x-api-key": "'redacted'",
            "integration.request.header.Authorization": "'redacted'",
        }
        for k, v in want.items():
            assert p.get(k) == v, f"{method} {path}: {k} = {p.get(k)}"


@check
def both_stages_write_json_access_logs_with_the_key_id():
    cfn = translate()
    needed = ["$context.requestId", "$context.identity.sourceIp", "$context.resourcePath", "$context.status", "$context.integrationLatency"]
    for api, extra in [("ProtectedApi", ["$context.authorizer.principalId", "$context.authorizer.latency"]), ("DashboardApi", [])]:
        (stage,) = stages_of(cfn, api).values()
        setting = stage["Properties"]["AccessLogSetting"]
        fmt = setting["Format"]
        json.loads(fmt)  # a JSON line per request
        for var in needed + extra:
            assert var in fmt, f"{api}: {var} not logged"
        group = setting["DestinationArn"]["Fn::GetAtt"][0]
        assert cfn["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        for ms in stage["Properties"]["MethodSettings"]:
            assert ms["DataTraceEnabled"] is False, "data tracing would log keys"


@check
def the_protected_stage_is_throttled():
    cfn = translate()
    (stage,) = stages_of(cfn, "ProtectedApi").values()
    (ms,) = stage["Properties"]["MethodSettings"]
    assert ms["ThrottlingRateLimit"] == {"Ref": "ProtectedThrottleRate"}
    assert ms["ThrottlingBurstLimit"] == {"Ref": "ProtectedThrottleBurst"}


@check
def every_function_logs_to_a_group_with_retention_at_the_chosen_level():
    cfn = translate()
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert len(functions) == 9, sorted(functions)
    groups = set()
    for name, fn in functions.items():
        lc = fn["Properties"]["LoggingConfig"]
        assert lc["LogFormat"] == "JSON", name
        assert lc["ApplicationLogLevel"] == {"Ref": "ApplicationLogLevel"}, name
        group = ref(lc["LogGroup"])
        assert cfn["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == 9, "a log group per function"
    reserved = functions["AuthorizerFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {"Fn::If": ["HasReservedConcurrency", {"Ref": "AuthorizerReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


@check
def the_alarms_watch_store_failures_5xx_and_throttling():
    cfn = translate()
    alarms = of_type(cfn, "AWS::CloudWatch::Alarm")
    metrics = set()
    for a in alarms.values():
        p = a["Properties"]
        assert p["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
        if "MetricName" in p:
            metrics.add((p["Namespace"], p["MetricName"]))
        for m in p.get("Metrics", []):
            if "MetricStat" in m:
                metrics.add((m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"]))
    for want in [("AWS/Lambda", "Errors"), ("AWS/ApiGateway", "5XXError"), ("AWS/Lambda", "Throttles"),
                 ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents")]:
        assert want in metrics, want
    errors = [a for a in alarms.values() if a["Properties"].get("MetricName") == "Errors"]
    assert errors[0]["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "AuthorizerFunction"}}]


@check
def functions_have_least_privilege_on_the_table():
    cfn = translate()
    allowed = {
        "AuthorizerFunctionRole": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "CreateKeyFunctionRole": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
        "ListKeysFunctionRole": {"dynamodb:Query"},
        "GetKeyFunctionRole": {"dynamodb:GetItem"},
        "UpdateKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "DeleteKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        "RollKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "ListKeyEventsFunctionRole": {"dynamodb:GetItem", "dynamodb:Query"},
        "SecretScanningFunctionRole": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"},
    }
    for role, actions in allowed.items():
        got = set()
        for pol in cfn["Resources"][role]["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                a = st["Action"]
                a = set(a if isinstance(a, list) else [a])
                got |= a
                assert st["Resource"] == {"Fn::GetAtt": ["KeysTable", "Arn"]}, (role, st)
                # The authorizer's only write: lastUsedAt, nothing else.
                if role == "AuthorizerFunctionRole" and "dynamodb:UpdateItem" in a:
                    assert a == {"dynamodb:UpdateItem"}, a
                    cond = st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
                    assert cond == ["pk", "sk", "lastUsedAt"], cond
        assert got == actions, (role, got)


def main():
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
