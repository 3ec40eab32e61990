//! Drift tests: `template.yaml` against the code it deploys — the protected
//! API's routes against the `scopes` route table (both ways), the context
//! mappings and key-header overwrites on every route, the dashboard routes'
//! functions, the table's key schema, least privilege, and the settings that
//! make revocation immediate.

use std::collections::BTreeSet;

use function_table::{FUNCTIONS, Login};
use serde_json::{Map, Value, json};
use serde_yaml_ng::Value as Yaml;

const TEMPLATE: &str = include_str!("../../template.yaml");
const SAMCONFIG: &str = include_str!("../../samconfig.toml");
const MAKEFILE: &str = include_str!("../../Makefile");

/// YAML to JSON, with CloudFormation's short-form tags in their long form
/// (`!Ref X` → `{"Ref": "X"}`, `!GetAtt A.B` → `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` → `{"Fn::Sub": s}`).
fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => json!(b),
        Yaml::Number(n) => serde_json::to_value(n).unwrap(),
        Yaml::String(s) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Yaml::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = to_json(&t.value);
            match name {
                "Ref" => json!({"Ref": value}),
                "GetAtt" => match value {
                    Value::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap();
                        json!({"Fn::GetAtt": [res, attr]})
                    }
                    other => json!({"Fn::GetAtt": other}),
                },
                other => json!({ format!("Fn::{other}"): value }),
            }
        }
    }
}

fn template() -> Value {
    to_json(&serde_yaml_ng::from_str::<Yaml>(TEMPLATE).unwrap())
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["Resources"]
        .get(name)
        .unwrap_or_else(|| panic!("no resource {name}"))
}

/// (METHOD, path) of every operation the protected API declares.
fn protected_routes(t: &Value) -> BTreeSet<(String, String)> {
    let paths = resource(t, "ProtectedApi")["Properties"]["DefinitionBody"]["paths"]
        .as_object()
        .unwrap();
    let mut out = BTreeSet::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                !path.contains('+'),
                "greedy path {path}: every route is declared on its own"
            );
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_protected_api_declares_exactly_the_route_table() {
    let t = template();
    let declared = protected_routes(&t);
    let table: BTreeSet<(String, String)> = scopes::ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.resource.to_owned()))
        .collect();
    let missing: Vec<_> = table.difference(&declared).collect();
    let extra: Vec<_> = declared.difference(&table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in template: {missing:?}; not in table: {extra:?}"
    );
    assert_eq!(declared.len(), 31);
}

#[test]
fn every_protected_route_passes_the_decision_on_and_never_the_key() {
    let t = template();
    let paths = resource(&t, "ProtectedApi")["Properties"]["DefinitionBody"]["paths"]
        .as_object()
        .unwrap();
    for (path, ops) in paths {
        let params: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in ops.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            let integ = &op["x-amazon-apigateway-integration"];
            assert_eq!(integ["type"], "http_proxy", "{at}");
            assert_eq!(integ["httpMethod"], method.to_uppercase(), "{at}");
            assert_eq!(
                integ["uri"],
                json!({"Fn::Sub": format!("${{BackendUrl}}{path}")}),
                "{at}"
            );
            let rp = integ["requestParameters"].as_object().unwrap();
            let get = |k: &str| {
                rp.get(&format!("integration.request.header.{k}"))
                    .and_then(Value::as_str)
            };
            assert_eq!(
                get("X-Account-Id"),
                Some("context.authorizer.accountId"),
                "{at}"
            );
            assert_eq!(get("X-Key-Id"), Some("context.authorizer.keyId"), "{at}");
            assert_eq!(
                get("X-Key-Scopes"),
                Some("context.authorizer.scopes"),
                "{at}"
            );
            for key_header in ["x-api-key", "Authorization"] {
                let v =
                    get(key_header).unwrap_or_else(|| panic!("{at}: {key_header} not overwritten"));
                assert!(
                    v.starts_with('\'') && v.ends_with('\'') && v.len() > 2,
                    "{at}: {key_header} must be a static value, is {v}"
                );
            }
            for p in &params {
                assert_eq!(
                    rp.get(&format!("integration.request.path.{p}"))
                        .and_then(Value::as_str),
                    Some(format!("method.request.path.{p}").as_str()),
                    "{at}: path parameter {p}"
                );
            }
            assert_eq!(
                op["security"],
                json!([{"ApiKeyAuthorizer": []}]),
                "{at}: the Lambda authorizer runs on every route"
            );
        }
    }
}

#[test]
fn the_protected_api_authorizer_caches_only_when_asked() {
    let t = template();
    let api = &resource(&t, "ProtectedApi")["Properties"];
    assert!(api.get("Auth").is_none(), "defined in the generated body");
    let auth = &api["DefinitionBody"]["securityDefinitions"]["ApiKeyAuthorizer"];
    assert_eq!(auth["name"], "Unused", "as SAM writes REQUEST authorizers");
    assert_eq!(auth["x-amazon-apigateway-authtype"], "custom");
    let a = &auth["x-amazon-apigateway-authorizer"];
    assert_eq!(a["type"], "request");
    assert_eq!(
        a["authorizerUri"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthorizerFunction.Arn}/invocations"})
    );
    assert_eq!(
        a["authorizerResultTtlInSeconds"],
        json!({"Ref": "AuthorizerCacheTtl"})
    );
    assert_eq!(
        a["identitySource"],
        json!({"Fn::If": ["AuthorizerCacheOn", "method.request.header.x-api-key", {"Ref": "AWS::NoValue"}]}),
        "x-api-key with caching on, nothing with it off"
    );
    let p = &t["Parameters"]["AuthorizerCacheTtl"];
    assert_eq!(
        (&p["Default"], &p["MinValue"], &p["MaxValue"]),
        (&json!(0), &json!(0), &json!(3600)),
        "off unless asked, at most API Gateway's 3600 s"
    );
    assert_eq!(
        t["Conditions"]["AuthorizerCacheOn"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthorizerCacheTtl"}, 0]}]})
    );
    assert_eq!(
        resource(&t, "AuthorizerFunction")["Properties"]["Environment"]["Variables"]["AUTHORIZER_CACHE_TTL"],
        json!({"Ref": "AuthorizerCacheTtl"})
    );
    let perm = &resource(&t, "AuthorizerInvokePermission")["Properties"];
    assert_eq!(perm["Principal"], "apigateway.amazonaws.com");
    assert_eq!(
        perm["SourceArn"],
        json!({"Fn::Sub": ["arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${__ApiId__}/authorizers/*", {"__ApiId__": {"Ref": "ProtectedApi"}}]})
    );
}

/// The statement that may flush the protected stage's authorizer cache, and
/// nothing else, when caching is on.
fn flush_policy() -> Value {
    json!({"Fn::If": ["AuthorizerCacheOn", {"Statement": [{
        "Effect": "Allow",
        "Action": "apigateway:DELETE",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${ProtectedApi}/stages/${StageName}/cache/authorizers"},
    }]}, {"Ref": "AWS::NoValue"}]})
}

#[test]
fn narrowing_changes_can_flush_the_cache_and_only_that() {
    let t = template();
    for name in [
        "UpdateKeyFunction",
        "DeleteKeyFunction",
        "RollKeyFunction",
        "SecretScanningFunction",
        "CacheFlushFunction",
    ] {
        let f = &resource(&t, name)["Properties"];
        assert_eq!(f["Policies"][1], flush_policy(), "{name}");
        let env = &f["Environment"]["Variables"];
        assert_eq!(
            (
                &env["AUTHORIZER_CACHE_TTL"],
                &env["PROTECTED_API_ID"],
                &env["PROTECTED_STAGE"]
            ),
            (
                &json!({"Ref": "AuthorizerCacheTtl"}),
                &json!({"Ref": "ProtectedApi"}),
                &json!({"Ref": "StageName"})
            ),
            "{name}"
        );
    }
    let flusher = resource(&t, "CacheFlushFunction");
    assert_eq!(flusher["Condition"], "AuthorizerCacheOn");
    assert!(
        flusher["Properties"]
            .get("ReservedConcurrentExecutions")
            .is_none(),
        "a new account may reserve no concurrency"
    );
    assert_eq!(
        flusher["Properties"]["Events"]["Sweep"]["Properties"]["OmitName"],
        true
    );
    let events = &flusher["Properties"]["Events"];
    assert_eq!(events["Changes"]["Type"], "DynamoDB");
    assert_eq!(
        events["Changes"]["Properties"]["Stream"],
        json!({"Fn::GetAtt": ["KeysTable", "StreamArn"]})
    );
    assert_eq!(events["Changes"]["Properties"]["MaximumRetryAttempts"], -1);
    assert_eq!(events["Sweep"]["Type"], "ScheduleV2");
    assert_eq!(
        events["Sweep"]["Properties"]["ScheduleExpression"],
        "rate(1 minute)"
    );
    assert_eq!(
        resource(&t, "KeysTable")["Properties"]["StreamSpecification"],
        json!({"Fn::If": ["AuthorizerCacheOn", {"StreamViewType": "NEW_AND_OLD_IMAGES"}, {"Ref": "AWS::NoValue"}]})
    );
}

#[test]
fn every_function_and_dashboard_route_is_the_tables() {
    let t = template();
    // The template's functions are exactly the table's, each built from its
    // crate, and so are the folders under functions/.
    let declared: BTreeSet<&str> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(name, _)| name.as_str())
        .collect();
    let table: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.logical_id).collect();
    assert_eq!(declared, table);
    let folders: BTreeSet<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../functions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    let packages: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.package.to_owned()).collect();
    assert_eq!(folders, packages);
    for f in FUNCTIONS {
        let r = resource(&t, f.logical_id);
        assert_eq!(
            r["Properties"]["CodeUri"],
            format!("functions/{}", f.package),
            "{}",
            f.logical_id
        );
        let events = r["Properties"]["Events"].as_object();
        let api: Vec<(&String, &Value)> = events
            .into_iter()
            .flatten()
            .filter(|(_, e)| e["Type"] == "Api")
            .collect();
        let Some(route) = f.route else {
            assert!(api.is_empty(), "{} has an API event", f.logical_id);
            continue;
        };
        // One API event, on the dashboard API, with the table's method and path.
        assert_eq!(events.map(|e| e.len()), Some(1), "{}", f.logical_id);
        let (name, e) = api[0];
        assert_eq!(name, route.event);
        let mut properties = json!({
            "RestApiId": {"Ref": "DashboardApi"},
            "Path": route.path,
            "Method": route.method,
        });
        match route.login {
            // A dashboard user: the API's default (Cognito) authorizer.
            Login::User => assert_eq!(
                r["Properties"]["Environment"]["Variables"]["DASHBOARD_ORIGIN"],
                json!({"Ref": "DashboardOrigin"}),
                "{}",
                f.logical_id
            ),
            // GitHub's secret-scanning endpoint: no user login; its
            // signature is checked by the function.
            Login::None => properties["Auth"] = json!({"Authorizer": "NONE"}),
        }
        assert_eq!(e["Properties"], properties, "{}", f.logical_id);
    }
    // The flusher's events are a stream and a schedule, nothing else.
    for (name, e) in resource(&t, "CacheFlushFunction")["Properties"]["Events"]
        .as_object()
        .unwrap()
    {
        assert!(
            e["Type"] == "DynamoDB" || e["Type"] == "ScheduleV2",
            "CacheFlushFunction has event {name}"
        );
    }
}

#[test]
fn functions_are_arm64_rust_on_al2023_with_json_logs() {
    let t = template();
    let g = &t["Globals"]["Function"];
    assert_eq!(g["Runtime"], "provided.al2023");
    assert_eq!(g["Architectures"], json!(["arm64"]));
    assert_eq!(g["Handler"], "bootstrap");
    assert_eq!(g["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(
        g["Environment"]["Variables"]["TABLE_NAME"],
        json!({"Ref": "KeysTable"})
    );
    let functions: Vec<(&String, &Value)> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .collect();
    assert_eq!(functions.len(), FUNCTIONS.len());
    // One Makefile rule builds them all, each `build-<Name>Function` copying
    // the binary of the crate its name spells in kebab case.
    assert!(
        MAKEFILE.contains("LAMBDA_PACKAGES := $(addprefix -p ,$(notdir $(wildcard functions/*)))")
    );
    assert!(MAKEFILE.contains(
        "build-%Function: lambda-build\n\tcp $(TARGET_DIR)/lambda/$(shell echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\\1-\\2/g' | tr A-Z a-z)/bootstrap \"$(ARTIFACTS_DIR)/bootstrap\""
    ));
    for (name, f) in functions {
        // Built by the repository Makefile at the repository root: one
        // cargo-lambda build of the workspace, then this function's binary.
        assert_eq!(
            (
                &f["Metadata"]["BuildMethod"],
                &f["Metadata"]["ContextPath"],
                &f["Metadata"]["WorkingDirectory"]
            ),
            (&json!("makefile"), &json!("."), &json!(".")),
            "{name}"
        );
        let krate = f["Properties"]["CodeUri"]
            .as_str()
            .unwrap()
            .strip_prefix("functions/")
            .unwrap();
        let manifest = std::fs::read_to_string(format!(
            "{}/../functions/{krate}/Cargo.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{krate}\"")),
            "{name}: crate {krate}"
        );
        let spelled: String = krate
            .split('-')
            .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
            .collect();
        assert_eq!(format!("{spelled}Function"), *name, "the Makefile's rule");
        // Under API Gateway's 29 s integration limit (the secret-scanning
        // endpoint processes a whole 1 MiB report; the others are short).
        let limit = if name == "SecretScanningFunction" {
            28
        } else {
            10
        };
        assert!(
            f["Properties"]["Timeout"].as_u64().unwrap() <= limit,
            "{name}"
        );
    }
    let authorizer_timeout = resource(&t, "AuthorizerFunction")["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert!(
        authorizer_timeout <= 5,
        "well under API Gateway's 10 s authorizer limit"
    );
}

#[test]
fn least_privilege_on_the_table() {
    let t = template();
    // Each function: the actions it performs, on the table only, and for
    // the authorizer a second statement that may set lastUsedAt and nothing else.
    let expected: &[(&str, &[&str])] = &[
        ("AuthorizerFunction", &["dynamodb:GetItem"]),
        (
            "CreateKeyFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
        ),
        ("ListKeysFunction", &["dynamodb:Query"]),
        ("GetKeyFunction", &["dynamodb:GetItem"]),
        (
            "UpdateKeyFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
        ),
        (
            "DeleteKeyFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
        ),
        (
            "RollKeyFunction",
            &[
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
        ),
        (
            "ListKeyEventsFunction",
            &["dynamodb:GetItem", "dynamodb:Query"],
        ),
        (
            "SecretScanningFunction",
            &[
                "dynamodb:BatchGetItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
            ],
        ),
        ("CacheFlushFunction", &["dynamodb:Query"]),
    ];
    let flushing = [
        "UpdateKeyFunction",
        "DeleteKeyFunction",
        "RollKeyFunction",
        "SecretScanningFunction",
        "CacheFlushFunction",
    ];
    let actions_of = |st: &Value| -> Vec<String> {
        let mut got: Vec<String> = match &st["Action"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
            other => panic!("{other}"),
        };
        got.sort_unstable();
        got
    };
    for (name, actions) in expected {
        let policies = resource(&t, name)["Properties"]["Policies"]
            .as_array()
            .unwrap();
        if flushing.contains(name) {
            assert_eq!(policies.len(), 2, "{name}: the table, and the flush");
            assert_eq!(policies[1], flush_policy(), "{name}");
        } else if *name == "AuthorizerFunction" {
            assert_eq!(
                policies.len(),
                2,
                "{name}: the table, and the origin secret"
            );
            assert_eq!(
                policies[1],
                json!({"Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "OriginVerify"}}]}),
                "{name}: its own origin secret only"
            );
        } else {
            assert_eq!(
                policies.len(),
                1,
                "{name}: one inline policy, no managed ones"
            );
        }
        let statements = policies[0]["Statement"].as_array().unwrap();
        let st = &statements[0];
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(&actions_of(st), actions, "{name}");
        if *name == "CacheFlushFunction" {
            assert_eq!(
                st["Condition"],
                json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["EXPIRY#*"]}}),
                "the expiry log only"
            );
        } else {
            assert!(st.get("Condition").is_none(), "{name}");
        }
        for st in statements {
            assert_eq!(
                st["Resource"],
                json!({"Fn::GetAtt": ["KeysTable", "Arn"]}),
                "{name}: the table only"
            );
        }
        if *name == "AuthorizerFunction" {
            assert_eq!(statements.len(), 2, "{name}");
            let record = &statements[1];
            assert_eq!(actions_of(record), ["dynamodb:UpdateItem"]);
            assert_eq!(
                record["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"],
                json!(["pk", "sk", "lastUsedAt"]),
                "the authorizer may write lastUsedAt only"
            );
        } else {
            assert_eq!(statements.len(), 1, "{name}");
        }
    }
    // Every function is above, but the catalogue's, which reads no store.
    let listed: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    for f in FUNCTIONS {
        if f.logical_id == "ListScopesFunction" {
            assert!(
                resource(&t, f.logical_id)["Properties"]
                    .get("Policies")
                    .is_none(),
                "the catalogue needs no permission"
            );
        } else {
            assert!(listed.contains(&f.logical_id), "{}", f.logical_id);
        }
    }
}

#[test]
fn the_table_matches_the_code_and_is_protected() {
    let t = template();
    let table = resource(&t, "KeysTable");
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let p = &table["Properties"];
    let schema: Vec<Value> = apikeys::table::KEY_SCHEMA
        .iter()
        .map(|a| json!({"AttributeName": a.name, "KeyType": a.key_type}))
        .collect();
    let attrs: Vec<Value> = apikeys::table::KEY_SCHEMA
        .iter()
        .map(|a| json!({"AttributeName": a.name, "AttributeType": a.attribute_type}))
        .collect();
    assert_eq!(p["KeySchema"], Value::Array(schema));
    assert_eq!(p["AttributeDefinitions"], Value::Array(attrs));
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(p["DeletionProtectionEnabled"], true);
    assert!(p.get("TableName").is_none(), "no fixed table name");
    assert!(p.get("GlobalSecondaryIndexes").is_none());
}

#[test]
fn the_dashboard_api_needs_a_user_and_answers_cors_everywhere() {
    let t = template();
    let p = &resource(&t, "DashboardApi")["Properties"];
    assert_eq!(p["Auth"]["DefaultAuthorizer"], "DashboardUsers");
    assert_eq!(p["Auth"]["AddDefaultAuthorizerToCorsPreflight"], false);
    assert_eq!(
        p["Auth"]["Authorizers"]["DashboardUsers"]["UserPoolArn"],
        json!({"Ref": "UserPoolArn"})
    );
    let origin = json!({"Fn::Sub": "'${DashboardOrigin}'"});
    assert_eq!(p["Cors"]["AllowOrigin"], origin);
    for r in ["DEFAULT_4XX", "DEFAULT_5XX"] {
        assert_eq!(
            p["GatewayResponses"][r]["ResponseParameters"]["Headers"]["Access-Control-Allow-Origin"],
            origin,
            "{r}"
        );
    }
}

#[test]
fn data_tracing_is_off_on_both_stages() {
    let t = template();
    for api in ["DashboardApi", "ProtectedApi"] {
        let settings = resource(&t, api)["Properties"]["MethodSettings"]
            .as_array()
            .unwrap();
        assert!(!settings.is_empty(), "{api}");
        for s in settings {
            assert_eq!(s["DataTraceEnabled"], false, "{api}");
        }
    }
}

#[test]
fn outputs_name_both_apis_the_authorizer_and_the_table() {
    let t = template();
    let outputs = t["Outputs"].as_object().unwrap();
    for name in [
        "DashboardApiUrl",
        "ProtectedApiUrl",
        "AuthorizerFunctionArn",
        "KeysTableName",
    ] {
        assert!(outputs.contains_key(name), "{name}");
    }
    assert_eq!(
        outputs["AuthorizerFunctionArn"]["Value"],
        json!({"Fn::GetAtt": ["AuthorizerFunction", "Arn"]})
    );
}

#[test]
fn samconfig_builds_uncached_one_at_a_time_and_confirms_deploys_without_lint_mode() {
    let cfg: toml::Table = SAMCONFIG.parse().unwrap();
    // SAM keys its build cache on each function's CodeUri folder alone: a
    // change in shared/ would be "Valid cache found" and ship stale.
    assert_ne!(
        cfg["default"]["build"]["parameters"]
            .get("cached")
            .and_then(toml::Value::as_bool),
        Some(true)
    );
    // One cargo-lambda build serves all six (Makefile); runs must not overlap.
    assert_eq!(
        cfg["default"]["build"]["parameters"]["parallel"].as_bool(),
        Some(false)
    );
    assert_eq!(
        cfg["default"]["deploy"]["parameters"]["confirm_changeset"].as_bool(),
        Some(true)
    );
    let validate = cfg["default"]
        .get("validate")
        .and_then(|v| v.get("parameters"));
    assert!(
        validate.is_some(),
        "the validate section is present, without lint"
    );
    assert!(
        validate.and_then(|p| p.get("lint")).is_none(),
        "lint = true would make `sam validate` skip the translator"
    );
}

/// The template's generated parts (the protected API's routes, the
/// dashboard functions' events) are what `cargo xtask generate` writes from
/// the tables today.
#[test]
fn the_generated_parts_are_current() {
    let current = xtask::generate(TEMPLATE).unwrap();
    assert!(
        current == TEMPLATE,
        "template.yaml's generated parts are stale: run `cargo xtask generate`"
    );
}

/// The `sam local` harness (infra/sam-local/) never reaches the deployed
/// template: no local-only function, no unverified identity, no echo backend.
#[test]
fn nothing_local_only_is_deployed() {
    let t = template();
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] == "AWS::Serverless::Function" {
            let code = r["Properties"]["CodeUri"].as_str().unwrap();
            assert!(code.starts_with("functions/"), "{name}: {code}");
        }
    }
    let text = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    for local_only in ["sam-local", "DevIdentity", "EchoFunction", "harness"] {
        assert!(
            !text.contains(local_only),
            "template.yaml mentions {local_only}"
        );
    }
    let packages = MAKEFILE
        .lines()
        .find(|l| l.starts_with("LAMBDA_PACKAGES"))
        .unwrap();
    assert!(
        !packages.contains("sam-local"),
        "the deployed build compiles no local-only function"
    );
}

/// The store-failure alarm counts the decision the authorizer logs when it
/// fails closed, and only that: not AWS/Lambda `Errors`, which every 401 is.
#[test]
fn the_authorizer_alarm_counts_store_failures_not_401s() {
    let t = template();
    let filter = &resource(&t, "AuthorizerStoreFailures")["Properties"];
    assert_eq!(
        filter["FilterPattern"],
        format!(
            "{{ $.fields.decision = \"{}\" }}",
            authorizer::STORE_FAILURE_DECISION
        )
    );
    assert_eq!(filter["LogGroupName"], json!({"Ref": "AuthorizerLogs"}));
    let alarm = &resource(&t, "AuthorizerErrorsAlarm")["Properties"];
    let metric = &filter["MetricTransformations"][0];
    assert_eq!(alarm["MetricName"], metric["MetricName"]);
    assert_eq!(alarm["Namespace"], metric["MetricNamespace"]);
    assert_ne!(alarm["Namespace"], "AWS/Lambda");
}

/// docs/design.md's layout names only folders that exist, and every crate
/// of the workspace (each function by its name).
#[test]
fn the_design_documents_layout_is_the_trees() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let doc = std::fs::read_to_string(format!("{root}/docs/design.md")).unwrap();
    let layout = &doc[doc.find("## Layout").expect("a Layout section")..];
    let named: Vec<&str> = layout
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.ends_with('/'))
        .collect();
    for path in &named {
        assert!(
            std::path::Path::new(&format!("{root}/{path}")).is_dir(),
            "docs/design.md names {path}, which is not a folder"
        );
    }
    let dirs = |parent: &str| -> Vec<String> {
        std::fs::read_dir(format!("{root}/{parent}"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().join("Cargo.toml").is_file())
            .map(|e| format!("{parent}/{}/", e.file_name().to_string_lossy()))
            .collect()
    };
    for krate in dirs("shared").into_iter().chain(dirs("infra")) {
        assert!(
            named.contains(&krate.as_str()),
            "docs/design.md's layout lacks {krate}"
        );
    }
    for f in FUNCTIONS {
        assert!(
            layout.contains(&format!("`{}`", f.package)),
            "docs/design.md's layout lacks the function {}",
            f.package
        );
    }
}
