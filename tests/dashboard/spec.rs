//! Spec and code cannot drift: every response the handlers give in these
//! scenarios must be documented for its operation and status in
//! `shared/keys-api/openapi.yaml` and validate against that schema; every
//! documented status must be produced by some scenario.

use std::collections::{BTreeSet, HashMap};

use apikeys::MemoryStore;
use jsonschema::Validator;
use serde_json::{Value, json};

use crate::dashboard::*;

const SPEC: &str = include_str!("../../shared/keys-api/openapi.yaml");

fn spec() -> Value {
    serde_yaml_ng::from_str(SPEC).unwrap()
}

/// Follows a local `$ref` inside the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling {r}")),
        None => v,
    }
}

fn operation<'a>(doc: &'a Value, op: &str) -> (&'static str, &'static str, &'a Value) {
    let route = function_table::by_operation(op)
        .and_then(|f| f.route)
        .unwrap_or_else(|| panic!("no operation {op} in the function table"));
    let method = route.method.to_ascii_lowercase().leak();
    let o = doc
        .pointer(&format!(
            "/paths/{}/{method}",
            route.path.replace('/', "~1")
        ))
        .unwrap();
    assert_eq!(o["operationId"], op, "{} {}", route.method, route.path);
    (route.path, method, o)
}

/// A validator for `schema`, with the whole spec as the document its `$ref`s resolve in.
fn validator(doc: &Value, schema: &Value) -> Validator {
    let mut root = doc.clone();
    let obj = root.as_object_mut().unwrap();
    obj.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    obj.insert("allOf".into(), json!([schema]));
    jsonschema::validator_for(&root).unwrap()
}

/// The response schema the spec gives an operation's status (`None`: no body).
fn response_schema(doc: &Value, op: &str, status: u16) -> Option<Value> {
    let (_, _, o) = operation(doc, op);
    let resp = o["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{op}: status {status} is not in the spec"));
    let resp = resolve(doc, resp);
    resp.pointer("/content/application~1json/schema").cloned()
}

fn documented_statuses(doc: &Value, op: &str) -> BTreeSet<u16> {
    let (_, _, o) = operation(doc, op);
    o["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

/// Checks one real response against the spec; returns its status.
fn check(doc: &Value, op: &str, resp: &Response<Body>) -> u16 {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        ORIGIN,
        "{op} {status}: no CORS header"
    );
    let body = json_body(resp);
    match response_schema(doc, op, status) {
        Some(schema) => {
            let v = validator(doc, &schema);
            let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{op} {status}: {body}\n{errors:#?}");
        }
        None => assert_eq!(
            body,
            Value::Null,
            "{op} {status}: the spec documents no body"
        ),
    }
    let (_, _, o) = operation(doc, op);
    let resp_spec = resolve(doc, &o["responses"][status.to_string()]);
    for header in ["ETag", "Retry-After", "Cache-Control"] {
        if resp_spec.pointer(&format!("/headers/{header}")).is_some() {
            assert!(
                resp.headers().contains_key(header),
                "{op} {status}: {header} documented, not sent"
            );
        }
    }
    status
}

/// Scenarios that between them give every documented status of every operation.
async fn scenarios() -> Vec<(&'static str, Response<Body>)> {
    let store = MemoryStore::new();
    let mut out = Vec::new();
    let mut push = |op: &'static str, r: Response<Body>| out.push((op, r));

    // create
    let created = call(&store, "createKey", &sample("createKey")).await;
    let id = json_body(&created)["id"].as_str().unwrap().to_owned();
    push("createKey", created);
    let mut ev = sample("createKey");
    set_body(&mut ev, Some(r#"{"name":"x","scopes":["nope"]}"#));
    push("createKey", call(&store, "createKey", &ev).await);
    let mut ev = sample("createKey");
    remove_claims(&mut ev);
    push("createKey", call(&store, "createKey", &ev).await);
    let mut ev = sample("createKey");
    set_body(
        &mut ev,
        Some(&format!(r#"{{"name":"{}"}}"#, "x".repeat(20_000))),
    );
    push("createKey", call(&store, "createKey", &ev).await);
    let mut ev = sample("createKey");
    set_header(&mut ev, "Content-Type", Some("text/plain"));
    push("createKey", call(&store, "createKey", &ev).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push(
            "createKey",
            call(&failing, "createKey", &sample("createKey")).await,
        );
    }
    let mut ev = sample("createKey");
    set_body(
        &mut ev,
        Some(r#"{"name":"never expires","scopes":["all"],"expiresAt":null}"#),
    );
    push("createKey", call(&store, "createKey", &ev).await);

    // list: a page with a token, the last page, and errors
    for _ in 0..2 {
        call(&store, "createKey", &sample("createKey")).await;
    }
    let mut ev = sample("listKeys");
    set_query(&mut ev, &[("limit", "1")]);
    push("listKeys", call(&store, "listKeys", &ev).await);
    push(
        "listKeys",
        call(&store, "listKeys", &sample("listKeys")).await,
    );
    let mut ev = sample("listKeys");
    set_query(&mut ev, &[("limit", "0")]);
    push("listKeys", call(&store, "listKeys", &ev).await);
    let mut ev = sample("listKeys");
    remove_claims(&mut ev);
    push("listKeys", call(&store, "listKeys", &ev).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push(
            "listKeys",
            call(&failing, "listKeys", &sample("listKeys")).await,
        );
    }

    // get
    let mut ev = sample("getKey");
    set_id(&mut ev, &id);
    push("getKey", call(&store, "getKey", &ev).await);
    push("getKey", call(&store, "getKey", &sample("getKey")).await);
    let mut ev = sample("getKey");
    remove_claims(&mut ev);
    push("getKey", call(&store, "getKey", &ev).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push("getKey", call(&failing, "getKey", &sample("getKey")).await);
    }

    // update
    let mut ev = sample("updateKey");
    set_id(&mut ev, &id);
    push("updateKey", call(&store, "updateKey", &ev).await); // If-Match "1": 200
    push("updateKey", call(&store, "updateKey", &ev).await); // If-Match "1" again: 409
    let mut bad = ev.clone();
    set_body(&mut bad, Some("{}"));
    push("updateKey", call(&store, "updateKey", &bad).await);
    let mut big = ev.clone();
    set_body(&mut big, Some(&"x".repeat(20_000)));
    push("updateKey", call(&store, "updateKey", &big).await);
    let mut text = ev.clone();
    set_header(&mut text, "Content-Type", Some("text/plain"));
    push("updateKey", call(&store, "updateKey", &text).await);
    push(
        "updateKey",
        call(&store, "updateKey", &sample("updateKey")).await,
    );
    let mut anon = ev.clone();
    remove_claims(&mut anon);
    push("updateKey", call(&store, "updateKey", &anon).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push("updateKey", call(&failing, "updateKey", &ev).await);
    }

    // roll: with grace, stale If-Match, bad body, errors
    let mut ev = sample("rollKey");
    set_id(&mut ev, &id);
    set_header(&mut ev, "If-Match", None);
    push("rollKey", call(&store, "rollKey", &ev).await);
    let mut stale = ev.clone();
    set_header(&mut stale, "If-Match", Some("\"1\""));
    push("rollKey", call(&store, "rollKey", &stale).await);
    let mut bad = ev.clone();
    set_body(&mut bad, Some(r#"{"gracePeriodSeconds":-5}"#));
    push("rollKey", call(&store, "rollKey", &bad).await);
    let mut big = ev.clone();
    set_body(&mut big, Some(&"x".repeat(20_000)));
    push("rollKey", call(&store, "rollKey", &big).await);
    let mut text = ev.clone();
    set_header(&mut text, "Content-Type", Some("text/plain"));
    push("rollKey", call(&store, "rollKey", &text).await);
    push("rollKey", call(&store, "rollKey", &sample("rollKey")).await);
    let mut anon = ev.clone();
    remove_claims(&mut anon);
    push("rollKey", call(&store, "rollKey", &anon).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push("rollKey", call(&failing, "rollKey", &ev).await);
    }

    // events: a page, errors
    let mut ev = sample("listKeyEvents");
    set_id(&mut ev, &id);
    set_query(&mut ev, &[("limit", "1")]);
    push("listKeyEvents", call(&store, "listKeyEvents", &ev).await);
    let mut bad = ev.clone();
    set_query(&mut bad, &[("limit", "0")]);
    push("listKeyEvents", call(&store, "listKeyEvents", &bad).await);
    push(
        "listKeyEvents",
        call(&store, "listKeyEvents", &sample("listKeyEvents")).await,
    );
    let mut anon = ev.clone();
    remove_claims(&mut anon);
    push("listKeyEvents", call(&store, "listKeyEvents", &anon).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push("listKeyEvents", call(&failing, "listKeyEvents", &ev).await);
    }

    // Idempotency-Key: a replay, another body (422), for create and roll
    let value = "spec-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
    let mut ev = sample("createKey");
    set_header(&mut ev, "Idempotency-Key", Some(value));
    push("createKey", call(&store, "createKey", &ev).await);
    push("createKey", call(&store, "createKey", &ev).await);
    set_body(&mut ev, Some(r#"{"name":"other","scopes":["links.read"]}"#));
    push("createKey", call(&store, "createKey", &ev).await);
    let mut ev = sample("rollKey");
    set_id(&mut ev, &id);
    set_header(&mut ev, "If-Match", None);
    set_header(&mut ev, "Idempotency-Key", Some(value));
    push("rollKey", call(&store, "rollKey", &ev).await);
    let mut ev = sample("rollKey");
    set_id(&mut ev, &id);
    set_header(&mut ev, "If-Match", None);
    set_header(&mut ev, "Idempotency-Key", Some(&format!("{value}-roll")));
    push("rollKey", call(&store, "rollKey", &ev).await);
    push("rollKey", call(&store, "rollKey", &ev).await);
    set_body(&mut ev, Some(r#"{"gracePeriodSeconds":5}"#));
    push("rollKey", call(&store, "rollKey", &ev).await);

    // create at the key limit
    let limited = MemoryStore::new();
    let one = config().with_max_keys(1).unwrap();
    for _ in 0..2 {
        let resp = create_key::handle(&limited, &one, request(&sample("createKey"))).await;
        push("createKey", resp);
    }

    // the scope catalogue
    push(
        "listScopes",
        call(&store, "listScopes", &sample("listScopes")).await,
    );
    let mut anon = sample("listScopes");
    remove_claims(&mut anon);
    push("listScopes", call(&store, "listScopes", &anon).await);

    // delete: at a stale version, with a weak If-Match, then for real
    let mut ev = sample("deleteKey");
    set_id(&mut ev, &id);
    let mut stale = ev.clone();
    set_header(&mut stale, "If-Match", Some("\"999\""));
    push("deleteKey", call(&store, "deleteKey", &stale).await);
    set_header(&mut stale, "If-Match", Some("W/\"1\""));
    push("deleteKey", call(&store, "deleteKey", &stale).await);
    push("deleteKey", call(&store, "deleteKey", &ev).await);
    push("deleteKey", call(&store, "deleteKey", &ev).await);
    let mut anon = ev.clone();
    remove_claims(&mut anon);
    push("deleteKey", call(&store, "deleteKey", &anon).await);
    for failing in [DOWN, THROTTLED, BROKEN] {
        push("deleteKey", call(&failing, "deleteKey", &ev).await);
    }
    out
}

#[tokio::test]
async fn every_response_matches_the_spec_and_every_documented_status_occurs() {
    let doc = spec();
    let mut seen: HashMap<&str, BTreeSet<u16>> = HashMap::new();
    for (op, resp) in scenarios().await {
        let status = check(&doc, op, &resp);
        seen.entry(op).or_default().insert(status);
    }
    for op in operations() {
        assert_eq!(
            seen[op],
            documented_statuses(&doc, op),
            "{op}: documented statuses vs produced"
        );
    }
}

#[tokio::test]
async fn a_response_with_a_field_removed_or_added_fails_the_schema() {
    let doc = spec();
    let store = MemoryStore::new();
    let created = json_body(&call(&store, "createKey", &sample("createKey")).await);
    let create_schema = validator(&doc, &response_schema(&doc, "createKey", 201).unwrap());
    assert!(create_schema.is_valid(&created));
    let mut ev = sample("getKey");
    set_id(&mut ev, created["id"].as_str().unwrap());
    let record = json_body(&call(&store, "getKey", &ev).await);
    let record_schema = validator(&doc, &response_schema(&doc, "getKey", 200).unwrap());
    assert!(record_schema.is_valid(&record));

    for field in record.as_object().unwrap().keys() {
        let mut fewer = record.clone();
        fewer.as_object_mut().unwrap().remove(field);
        assert!(
            !record_schema.is_valid(&fewer),
            "a record without {field} passes"
        );
    }
    let mut more = record.clone();
    more["keyHash"] = json!("ab12");
    assert!(
        !record_schema.is_valid(&more),
        "a record with an extra field passes"
    );
    // A plain record is not a create response, and a record with the key is not a record.
    assert!(!create_schema.is_valid(&record));
    assert!(!record_schema.is_valid(&created));

    let err = json_body(&call(&store, "getKey", &sample("getKey")).await);
    let err_schema = validator(&doc, &response_schema(&doc, "getKey", 404).unwrap());
    assert!(err_schema.is_valid(&err));
    let mut bare = err.clone();
    bare["error"].as_object_mut().unwrap().remove("message");
    assert!(!err_schema.is_valid(&bare));
    let mut unknown = err;
    unknown["error"]["code"] = json!("teapot");
    assert!(
        !err_schema.is_valid(&unknown),
        "error codes are an enumeration"
    );
}

/// API Gateway answers a request without a valid Cognito token itself, with
/// its own body: the spec allows it on every operation, beside ours.
#[test]
fn the_gateways_own_401_body_is_in_the_spec() {
    let doc = spec();
    for op in operations() {
        let schema = validator(&doc, &response_schema(&doc, op, 401).unwrap());
        assert!(schema.is_valid(&json!({"message": "Unauthorized"})), "{op}");
        assert!(schema.is_valid(&json!({"error": {"code": "unauthorized", "message": "x"}})));
        assert!(!schema.is_valid(&json!({"message": 1})), "{op}");
        assert!(!schema.is_valid(&json!({})), "{op}");
    }
}

#[test]
fn every_object_in_the_spec_is_closed_and_lists_its_required_fields() {
    fn walk(path: &str, v: &Value) {
        match v {
            Value::Object(map) => {
                if map.get("type") == Some(&json!("object")) {
                    // Ours are closed; another party's format (GitHub's
                    // report items) is open, and says whose it is.
                    let open = map.contains_key("x-defined-by");
                    assert_eq!(
                        map.get("additionalProperties"),
                        Some(&json!(open)),
                        "{path}"
                    );
                    assert!(map.get("required").is_some_and(Value::is_array), "{path}");
                }
                for (k, child) in map {
                    walk(&format!("{path}/{k}"), child);
                }
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, c)| walk(&format!("{path}/{i}"), c)),
            _ => {}
        }
    }
    walk("", &spec());
}

#[test]
fn the_spec_lists_exactly_the_catalogue_scopes() {
    let doc = spec();
    let listed: Vec<String> = doc
        .pointer("/components/schemas/Scope/enum")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let catalogue: Vec<String> = scopes::Scope::EVERY
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(listed, catalogue);
}

/// `openapi.yaml` declares exactly the function table's dashboard routes,
/// each with the table's `operationId`: checked both ways.
#[test]
fn the_spec_and_the_function_table_declare_the_same_routes() {
    let doc = spec();
    let mut in_spec = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, o) in item.as_object().unwrap() {
            if ["get", "put", "post", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                in_spec.insert((
                    method.to_ascii_uppercase(),
                    path.clone(),
                    o["operationId"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
    let in_table: BTreeSet<(String, String, String)> = function_table::dashboard_routes()
        .map(|(_, r)| {
            (
                r.method.to_owned(),
                r.path.to_owned(),
                r.operation.to_owned(),
            )
        })
        .collect();
    assert_eq!(in_spec, in_table);
}
