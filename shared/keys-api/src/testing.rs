//! Test helpers (feature `test-util`): the sample events of `events/` as real
//! API Gateway proxy requests, deserialised as the runtime does.

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::ApiConfig;

pub const CREATE_KEY: &str = include_str!("../../../events/create-key.json");
pub const LIST_KEYS: &str = include_str!("../../../events/list-keys.json");
pub const GET_KEY: &str = include_str!("../../../events/get-key.json");
pub const UPDATE_KEY: &str = include_str!("../../../events/update-key.json");
pub const DELETE_KEY: &str = include_str!("../../../events/delete-key.json");
pub const ROLL_KEY: &str = include_str!("../../../events/roll-key.json");
pub const LIST_KEY_EVENTS: &str = include_str!("../../../events/list-key-events.json");
pub const LIST_SCOPES: &str = include_str!("../../../events/list-scopes.json");

/// The dashboard origin the tests configure.
pub const ORIGIN: &str = "https://dashboard.prolinksqr.com";
/// The `sub` claim in the sample events.
pub const SAMPLE_SUB: &str = "3f1c2a9e-5d2b-4c7e-9a1f-0b6d8e4c2a71";

pub fn config() -> ApiConfig {
    match ApiConfig::new("sub", ORIGIN) {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    }
}

/// An event (one of the constants) as JSON, to adjust before [`request`].
pub fn event(fixture: &str) -> Value {
    match serde_json::from_str(fixture) {
        Ok(v) => v,
        Err(e) => panic!("fixture is not JSON: {e}"),
    }
}

/// The event as the request the runtime hands a `lambda_http` handler.
pub fn request(event: &Value) -> Request {
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("fixture does not deserialise as a proxy event: {e}"),
    }
}

/// Replaces the body (`None`: no body) keeping the content type.
pub fn set_body(event: &mut Value, body: Option<&str>) {
    event["body"] = body.map_or(Value::Null, |b| json!(b));
}

/// Sets a header in both header maps (`None` removes it).
pub fn set_header(event: &mut Value, name: &str, value: Option<&str>) {
    for (map, multi) in [("headers", false), ("multiValueHeaders", true)] {
        if !event[map].is_object() {
            event[map] = json!({});
        }
        if let Some(obj) = event[map].as_object_mut() {
            obj.retain(|k, _| !k.eq_ignore_ascii_case(name));
            if let Some(v) = value {
                obj.insert(name.to_owned(), if multi { json!([v]) } else { json!(v) });
            }
        }
    }
}

/// Makes the caller the dashboard user `sub` (claims replaced).
pub fn set_caller(event: &mut Value, sub: &str) {
    event["requestContext"]["authorizer"] = json!({"claims": {"sub": sub, "token_use": "id"}});
}

/// Removes the authorizer claims, as if the route had no authorizer.
pub fn remove_claims(event: &mut Value) {
    if let Some(rc) = event["requestContext"].as_object_mut() {
        rc.remove("authorizer");
    }
}

/// Points the event's `{id}` at `id` (path parameter and paths alike).
pub fn set_id(event: &mut Value, id: &str) {
    event["pathParameters"] = json!({"id": id});
    event["path"] = json!(format!("/apikeys/{id}"));
    event["requestContext"]["path"] = json!(format!("/prod/apikeys/{id}"));
}

/// Replaces the query string.
pub fn set_query(event: &mut Value, pairs: &[(&str, &str)]) {
    if pairs.is_empty() {
        event["queryStringParameters"] = Value::Null;
        event["multiValueQueryStringParameters"] = Value::Null;
        return;
    }
    let single: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let multi: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!([v])))
        .collect();
    event["queryStringParameters"] = Value::Object(single);
    event["multiValueQueryStringParameters"] = Value::Object(multi);
}

/// The response body as JSON (`Null` when empty).
pub fn json_body(resp: &Response<Body>) -> Value {
    let bytes: &[u8] = resp.body().as_ref();
    if bytes.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!("response body is not JSON: {e}"),
    }
}

/// The error code of an error response.
pub fn error_code(resp: &Response<Body>) -> String {
    json_body(resp)["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub use apikeys::testing::seed_key;

/// The request with a Lambda context whose deadline is `budget` from now,
/// as the runtime attaches one to every invocation.
pub fn with_deadline(req: Request, budget: std::time::Duration) -> Request {
    use lambda_http::RequestExt;
    let mut ctx = lambda_http::Context::default();
    let deadline = std::time::SystemTime::now() + budget;
    ctx.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    req.with_lambda_context(ctx)
}
