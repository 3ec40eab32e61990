//! Test helpers (feature `test-util`): REQUEST-authorizer events built from
//! the sample event in `events/authorizer/`, deserialised as the runtime does.

use scopes::Route;
use serde_json::{Value, json};

use crate::Request;

/// The adjusted sample event (from `sam local generate-event apigateway
/// request-authorizer`, with a real path, a concrete method ARN and
/// multi-value headers).
pub const FIXTURE: &str = include_str!("../../../events/authorizer/request-links-get.json");
/// The same command's output, unchanged.
pub const GENERATED: &str = include_str!("../../../events/authorizer/request-generated.json");

/// Sample events for `sam local invoke` / `cargo lambda invoke`: a links.read
/// call, a links.delete call (both with the sample key) and a malformed key.
pub const SAMPLE_ALLOW: &str = include_str!("../../../events/authorizer/allow.json");
pub const SAMPLE_DENY: &str = include_str!("../../../events/authorizer/deny.json");
pub const SAMPLE_UNAUTHORIZED: &str = include_str!("../../../events/authorizer/unauthorized.json");

/// The API, stage and account the sample event's method ARNs name.
pub const API_ARN_PREFIX: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test";

/// A concrete path for a route template, each `{param}` filled with `value`.
pub fn concrete_path(resource: &str, value: &str) -> String {
    resource
        .split('/')
        .map(|seg| if seg.starts_with('{') { value } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// The method ARN API Gateway sends for a route called on a concrete path.
pub fn method_arn(route: &Route) -> String {
    format!(
        "{API_ARN_PREFIX}/{}{}",
        route.method,
        concrete_path(route.resource, "abc123")
    )
}

/// The sample event as JSON.
pub fn fixture() -> Value {
    match serde_json::from_str(FIXTURE) {
        Ok(v) => v,
        Err(e) => panic!("authorizer fixture is not JSON: {e}"),
    }
}

/// The sample event retargeted at `route` and carrying `headers` (name,
/// value; repeats allowed) in both header maps.
pub fn event_for(route: &Route, headers: &[(&str, &str)]) -> Request {
    let mut ev = fixture();
    ev["resource"] = json!(route.resource);
    ev["httpMethod"] = json!(route.method);
    ev["path"] = json!(concrete_path(route.resource, "abc123"));
    ev["methodArn"] = json!(method_arn(route));
    ev["requestContext"]["resourcePath"] = json!(route.resource);
    ev["requestContext"]["httpMethod"] = json!(route.method);
    set_headers(&mut ev, headers);
    parse(&ev)
}

/// Replaces the key headers (`x-api-key`, `Authorization`) in both maps.
pub fn set_headers(ev: &mut Value, headers: &[(&str, &str)]) {
    let is_key_header =
        |k: &str| k.eq_ignore_ascii_case("x-api-key") || k.eq_ignore_ascii_case("authorization");
    if let Some(single) = ev["headers"].as_object_mut() {
        single.retain(|k, _| !is_key_header(k));
        for (k, v) in headers {
            single.insert((*k).to_owned(), json!(v));
        }
    }
    if let Some(multi) = ev["multiValueHeaders"].as_object_mut() {
        multi.retain(|k, _| !is_key_header(k));
        for (k, v) in headers {
            let entry = multi.entry((*k).to_owned()).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!(v));
            }
        }
    }
}

/// Deserialises an event from its JSON text, as the runtime does.
pub fn parse(ev: &Value) -> Request {
    match serde_json::from_str(&ev.to_string()) {
        Ok(r) => r,
        Err(e) => panic!("not a REQUEST-authorizer event: {e}"),
    }
}

/// The policy's effect and resource, checked to be one statement on one resource.
pub fn effect_and_resource(resp: &crate::Response) -> (String, String) {
    let doc = serde_json::to_value(&resp.policy_document).unwrap_or_default();
    let st = &doc["Statement"];
    assert_eq!(st.as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(st[0]["Action"], json!(["execute-api:Invoke"]));
    let res = st[0]["Resource"].as_array().cloned().unwrap_or_default();
    assert_eq!(res.len(), 1, "{doc}");
    (
        st[0]["Effect"].as_str().unwrap_or_default().to_owned(),
        res[0].as_str().unwrap_or_default().to_owned(),
    )
}

/// The request id a fake Lambda runtime API gives its invocations.
pub const INVOCATION_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// A fake Lambda runtime API's answer to `GET …/invocation/next`: `event`,
/// with the headers the runtime reads (request id, a deadline 30 s away,
/// the function's ARN).
pub fn invocation(event: String) -> fake_http::Answer {
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    fake_http::Answer::json(200, event)
        .header("lambda-runtime-aws-request-id", INVOCATION_ID)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:authorizer",
        )
}
