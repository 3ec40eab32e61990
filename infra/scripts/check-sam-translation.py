"""Tests on the CloudFormation that SAM generates from template.yaml: the
template is transformed with the pinned SAM translator (aws-sam-translator,
as `sam` uses it) and the output is checked, not the input.

usage: .venv/bin/python infra/scripts/check-sam-translation.py   (from the repository root)
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


NO_VALUE = object()


def parameters(**params):
    """Every parameter's value: the template's defaults, BASE, then `params`."""
    values = {k: v.get("Default") for k, v in SOURCE["Parameters"].items()}
    return {**values, **BASE, **params}


def condition(cfn, name, values):
    return evaluate(cfn["Conditions"][name], cfn, values)


def evaluate(node, cfn, values):
    """CloudFormation's evaluation of conditions, Fn::If and Ref (to
    parameters and AWS::NoValue) for the given parameter values; other
    intrinsics are left as they are. A NoValue key or list item is dropped."""
    if isinstance(node, list):
        out = [evaluate(v, cfn, values) for v in node]
        return [v for v in out if v is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (k, v), = node.items()
        if k == "Ref" and v == "AWS::NoValue":
            return NO_VALUE
        if k == "Ref" and v in values and not v.startswith("AWS::"):
            return values[v]
        if k == "Fn::If":
            cond, yes, no = v
            return evaluate(yes if condition(cfn, cond, values) else no, cfn, values)
        if k == "Fn::Equals":
            a, b = (evaluate(x, cfn, values) for x in v)
            return str(a) == str(b)
        if k == "Fn::Not":
            return not evaluate(v[0], cfn, values)
        if k == "Fn::And":
            return all(evaluate(x, cfn, values) for x in v)
        if k == "Fn::Or":
            return any(evaluate(x, cfn, values) for x in v)
        if k == "Condition":
            return condition(cfn, v, values)
    out = {k: evaluate(v, cfn, values) for k, v in node.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


def deployed(**params):
    """The translated template as CloudFormation would create it with
    these parameters: resources whose condition is false left out,
    conditions and Fn::If resolved."""
    cfn = translate(**params)
    values = parameters(**params)
    resources = {
        k: evaluate(v, cfn, values)
        for k, v in cfn["Resources"].items()
        if "Condition" not in v or condition(cfn, v["Condition"], values)
    }
    return {**cfn, "Resources": resources}


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
def every_protected_method_runs_the_lambda_authorizer_cached_only_when_asked():
    """TTL 0: no cache and no identity source (either key header works).
    Above 0: that TTL, and x-api-key, the header the cache is keyed on."""
    for ttl, source in [(0, None), (300, "method.request.header.x-api-key"), (3600, "method.request.header.x-api-key")]:
        cfn = deployed(AuthorizerCacheTtl=ttl)
        b = body(cfn, "ProtectedApi")
        auth = b["securityDefinitions"]["ApiKeyAuthorizer"]
        # As SAM writes REQUEST authorizers: `name` is documented as an
        # identity source, and none may be there with caching off.
        assert auth["name"] == "Unused", auth["name"]
        assert auth["x-amazon-apigateway-authtype"] == "custom"
        a = auth["x-amazon-apigateway-authorizer"]
        assert a["type"] == "request"
        assert str(a["authorizerResultTtlInSeconds"]) == str(ttl), a
        assert a.get("identitySource") == source, (ttl, a.get("identitySource"))
        ops = list(operations(cfn, "ProtectedApi"))
        assert len(ops) == 31, len(ops)
        for path, method, op in ops:
            assert op.get("security") == [{"ApiKeyAuthorizer": []}], f"{method} {path}: {op.get('security')}"
            assert "responses" in op, f"{method} {path}: Swagger 2.0 requires responses"
        env = cfn["Resources"]["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
        assert str(env["AUTHORIZER_CACHE_TTL"]) == str(ttl), env


@check
def with_caching_on_narrowing_changes_flush_through_a_guaranteed_path():
    """Caching off: no stream, no flush function, no flush permission.
    Caching on: the table streams to CacheFlushFunction (retried without
    limit, every minute a sweep), whose errors and lag raise alarms; the
    flushing functions may DELETE exactly the stage's authorizer cache."""
    stage_cache = {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${ProtectedApi}/stages/${StageName}/cache/authorizers"}
    flushing = {"UpdateKeyFunctionRole", "DeleteKeyFunctionRole", "RollKeyFunctionRole", "SecretScanningFunctionRole", "CacheFlushFunctionRole"}
    for on in [False, True]:
        cfn = deployed(AuthorizerCacheTtl=60 if on else 0)
        res = cfn["Resources"]
        assert ("StreamSpecification" in res["KeysTable"]["Properties"]) == on
        assert ("CacheFlushFunction" in res) == on
        roles = {}
        for name, r in of_type(cfn, "AWS::IAM::Role").items():
            for pol in r["Properties"].get("Policies", []):
                for st in pol["PolicyDocument"]["Statement"]:
                    acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                    if any(a.startswith("apigateway:") for a in acts):
                        roles.setdefault(name, []).append(st)
        if not on:
            assert roles == {}, roles
            assert not of_type(cfn, "AWS::Lambda::EventSourceMapping")
            continue
        assert set(roles) == flushing, sorted(roles)
        for name, sts in roles.items():
            assert sts == [{"Effect": "Allow", "Action": "apigateway:DELETE", "Resource": stage_cache}], (name, sts)
        (esm,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
        p = esm["Properties"]
        assert p["EventSourceArn"] == {"Fn::GetAtt": ["KeysTable", "StreamArn"]}
        assert p["MaximumRetryAttempts"] == -1 and p["MaximumBatchingWindowInSeconds"] == 1
        pattern = json.loads(p["FilterCriteria"]["Filters"][0]["Pattern"])
        assert pattern == {"eventName": ["MODIFY", "REMOVE"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "HASH#"}]}}}}, pattern
        (sched,) = of_type(cfn, "AWS::Scheduler::Schedule").values()
        assert sched["Properties"]["ScheduleExpression"] == "rate(1 minute)"
        assert json.loads(sched["Properties"]["Target"]["Input"]) == {"sweep": "expiries"}
        assert "Name" not in sched["Properties"], "a fixed schedule name collides across stacks"
        fn = res["CacheFlushFunction"]["Properties"]
        assert "ReservedConcurrentExecutions" not in fn, "a new account may reserve no concurrency" 
        watched = {
            a["Properties"]["MetricName"]
            for a in of_type(cfn, "AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": "CacheFlushFunction"}}]
        }
        assert watched == {"Errors", "IteratorAge"}, watched


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
    params = SOURCE["Parameters"]
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
            "integration.request.header.X-Origin-Verify": "context.authorizer.originVerify",
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
    cfn = translate()  # every function, CacheFlushFunction's condition unresolved
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert len(functions) == 11, sorted(functions)
    assert len(of_type(deployed(), "AWS::Lambda::Function")) == 10, "no flush function with caching off"
    groups = set()
    for name, fn in functions.items():
        lc = fn["Properties"]["LoggingConfig"]
        assert lc["LogFormat"] == "JSON", name
        assert lc["ApplicationLogLevel"] == {"Ref": "ApplicationLogLevel"}, name
        group = ref(lc["LogGroup"])
        assert cfn["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == 11, "a log group per function"
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
            ns = p["Namespace"]
            metrics.add((ns if isinstance(ns, str) else json.dumps(ns, sort_keys=True), p["MetricName"]))
        for m in p.get("Metrics", []):
            if "MetricStat" in m:
                metrics.add((m["MetricStat"]["Metric"]["Namespace"], m["MetricStat"]["Metric"]["MetricName"]))
    for want in [("AWS/ApiGateway", "5XXError"), ("AWS/Lambda", "Throttles"),
                 ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents")]:
        assert want in metrics, want
    # Every 401 is a Lambda error of the authorizer: no alarm may watch it.
    for name, a in alarms.items():
        p = a["Properties"]
        watches_authorizer = {"Name": "FunctionName", "Value": {"Ref": "AuthorizerFunction"}} in p.get("Dimensions", [])
        assert not (watches_authorizer and p.get("MetricName") == "Errors"), name
    # Store failures: a metric filter on the decision log's `decision`.
    (mf,) = of_type(cfn, "AWS::Logs::MetricFilter").values()
    assert mf["Properties"]["LogGroupName"] == {"Ref": "AuthorizerLogs"}
    assert mf["Properties"]["FilterPattern"] == '{ $.fields.decision = "error" }'
    (t,) = mf["Properties"]["MetricTransformations"]
    watched = [a for a in alarms.values()
               if (a["Properties"].get("Namespace"), a["Properties"].get("MetricName"))
               == (t["MetricNamespace"], t["MetricName"])]
    assert len(watched) == 1 and watched[0]["Properties"]["Threshold"] == 1, watched


@check
def functions_have_least_privilege_on_the_table():
    cfn = deployed(AuthorizerCacheTtl=300)
    allowed = {
        "AuthorizerFunctionRole": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "CreateKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "ListKeysFunctionRole": {"dynamodb:Query"},
        "GetKeyFunctionRole": {"dynamodb:GetItem"},
        "UpdateKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "DeleteKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        "RollKeyFunctionRole": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        "ListKeyEventsFunctionRole": {"dynamodb:GetItem", "dynamodb:Query"},
        "ListScopesFunctionRole": set(),
        "SecretScanningFunctionRole": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
        "CacheFlushFunctionRole": {"dynamodb:Query"},
    }
    for role, actions in allowed.items():
        got = set()
        for pol in cfn["Resources"][role]["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                a = st["Action"]
                a = set(a if isinstance(a, list) else [a])
                if a == {"apigateway:DELETE"}:
                    continue  # the flush: its own check
                if a == {"secretsmanager:GetSecretValue"}:
                    continue  # the origin secret: its own check
                got |= a
                assert st["Resource"] == {"Fn::GetAtt": ["KeysTable", "Arn"]}, (role, st)
                # The authorizer's only write: lastUsedAt, nothing else.
                if role == "AuthorizerFunctionRole" and "dynamodb:UpdateItem" in a:
                    assert a == {"dynamodb:UpdateItem"}, a
                    cond = st["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
                    assert cond == ["pk", "sk", "lastUsedAt"], cond
                # The flush function reads the expiry log's partitions only.
                if role == "CacheFlushFunctionRole":
                    cond = st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                    assert cond == ["EXPIRY#*"], cond
        assert got == actions, (role, got)


@check
def every_operation_of_both_apis_has_responses():
    for ttl in (0, 300):
        cfn = deployed(AuthorizerCacheTtl=ttl)
        for api in ("DashboardApi", "ProtectedApi"):
            for path, method, op in operations(cfn, api):
                if method.startswith("x-") or method == "parameters":
                    continue
                assert isinstance(op.get("responses"), dict), (ttl, api, method, path)


@check
def the_account_logging_role_is_kept_and_waited_for_when_the_stack_sets_it():
    on = deployed(SetApiGatewayLogsRole="true")
    for name in ("ApiGatewayLogsRole", "ApiGatewayAccount"):
        res = on["Resources"][name]
        assert res.get("DeletionPolicy") == "Retain" and res.get("UpdateReplacePolicy") == "Retain", name
    apis = of_type(on, "AWS::ApiGateway::RestApi")
    assert len(apis) == 2, sorted(apis)
    for name, api in apis.items():
        # A reference in the API makes it, its deployment and its stage wait.
        assert "ApiGatewayAccount" in json.dumps(api["Properties"]), name
        (stage,) = stages_of(on, name).values()
        assert "AccessLogSetting" in stage["Properties"], name
    off = deployed(SetApiGatewayLogsRole="false")
    assert "ApiGatewayAccount" not in off["Resources"]
    for name, api in of_type(off, "AWS::ApiGateway::RestApi").items():
        assert "ApiGatewayAccount" not in json.dumps(api["Properties"]), name


@check
def throttling_is_described_as_what_it_is_per_method():
    for name in ("ProtectedThrottleRate", "ProtectedThrottleBurst"):
        text = SOURCE["Parameters"][name]["Description"].lower()
        assert "each method" in text, (name, text)
    cfn = deployed()
    (stage,) = stages_of(cfn, "ProtectedApi").values()
    (setting,) = stage["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*"), setting


@check
def no_credential_in_stage_variables_environment_or_parameter_defaults():
    """The origin secret is generated in Secrets Manager and read by the
    authorizer at cold start: no stage variable (apigateway:GET reads them),
    no environment variable value and no parameter (or default) holds it."""
    for ttl in (0, 300):
        cfn = deployed(AuthorizerCacheTtl=ttl)
        for name, stage in of_type(cfn, "AWS::ApiGateway::Stage").items():
            assert not stage["Properties"].get("Variables"), (name, stage["Properties"].get("Variables"))
        secret = cfn["Resources"]["OriginVerify"]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        gen = secret["Properties"]["GenerateSecretString"]
        assert gen["PasswordLength"] >= 32 and "SecretString" not in secret["Properties"], gen
        fn = cfn["Resources"]["AuthorizerFunction"]["Properties"]
        assert fn["Environment"]["Variables"]["ORIGIN_SECRET_ARN"] == {"Ref": "OriginVerify"}
        role = cfn["Resources"]["AuthorizerFunctionRole"]["Properties"]["Policies"]
        reads = [st for pol in role for st in pol["PolicyDocument"]["Statement"]
                 if "secretsmanager:GetSecretValue" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
        assert reads and all(st["Resource"] == {"Ref": "OriginVerify"} for st in reads), reads
        others = [k for k, v in of_type(cfn, "AWS::IAM::Role").items() if k != "AuthorizerFunctionRole"
                  and "secretsmanager" in json.dumps(v)]
        assert not others, others
        for name, f in of_type(cfn, "AWS::Lambda::Function").items():
            for var, value in f["Properties"].get("Environment", {}).get("Variables", {}).items():
                assert not re.search("SECRET$|PASSWORD|TOKEN", var) or var == "ORIGIN_SECRET_ARN", (name, var)
    for name, p in SOURCE["Parameters"].items():
        assert not p.get("NoEcho"), f"{name}: a secret parameter"


# Properties that give a resource its physical name in the account.
NAME_KEYS = ("Name", "FunctionName", "TableName", "RoleName", "AlarmName", "ScheduleName",
             "LogGroupName", "TopicName", "QueueName", "StateMachineName", "PolicyName")


@check
def a_second_stack_in_the_account_has_no_name_in_common_with_the_first():
    for ttl in (0, 300):
        seen = []
        for stack in ("keys-staging", "keys-prod"):
            cfn = deployed(AuthorizerCacheTtl=ttl, **{"AWS::StackName": stack})
            named = {}
            for lid, res in cfn["Resources"].items():
                for key in NAME_KEYS:
                    value = res.get("Properties", {}).get(key)
                    if value is not None:
                        named[(lid, key)] = json.dumps(value, sort_keys=True)
            seen.append(named)
        first, second = seen
        # A name that refers to another resource (Ref, GetAtt) or to the
        # stack's name differs between stacks; a literal does not.
        derived = ('"Ref"', '"Fn::GetAtt"', "AWS::StackName")
        fixed = sorted(k for k, v in first.items()
                       if second.get(k) == v and not any(d in v for d in derived))
        # Inline IAM policy names are scoped to their role, not the account.
        fixed = [k for k in fixed if k[1] != "PolicyName"]
        assert not fixed, (ttl, fixed)


@check
def nothing_reserves_concurrency_by_default():
    for ttl in (0, 300):
        cfn = deployed(AuthorizerCacheTtl=ttl)
        reserved = {k for k, v in of_type(cfn, "AWS::Lambda::Function").items()
                    if "ReservedConcurrentExecutions" in v["Properties"]}
        assert not reserved, (ttl, reserved)
    cfn = deployed(AuthorizerReservedConcurrency=50)
    assert cfn["Resources"]["AuthorizerFunction"]["Properties"]["ReservedConcurrentExecutions"] == 50


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
