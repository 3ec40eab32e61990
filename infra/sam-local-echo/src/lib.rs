//! The protected API's echo backend for `sam local start-api` (local only).
//!
//! SAM serves Lambda-backed routes only, so the harness puts this function
//! behind every protected route in place of the `http_proxy` integration.
//! With a Lambda proxy integration there is no request mapping: the function
//! reads the authorizer's decision from `requestContext.authorizer`, where
//! API Gateway (here SAM) puts it, and answers what the deployed
//! integration would send the backend, in the local API echo's shape.

use serde_json::{Value, json};

/// The proxy response for one REST proxy event.
pub fn answer(event: &Value) -> Value {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let method = event["httpMethod"].as_str().unwrap_or_default();
    let resource = event["resource"].as_str().unwrap_or_default();
    let auth = &event["requestContext"]["authorizer"];
    let (status, body) = match (
        scopes::route_for_template(method, resource),
        text(&auth["accountId"]),
    ) {
        (Some(route), Some(account)) => (
            200,
            json!({
                "backend": "echo",
                "route": {"method": route.method, "resource": route.resource, "scope": route.scope.as_str()},
                "path": event["path"],
                "pathParameters": event["pathParameters"],
                "account": account,
                "headers": {
                    "X-Account-Id": account,
                    "X-Key-Id": auth["keyId"],
                    "X-Key-Scopes": auth["scopes"],
                    "x-api-key": "redacted",
                    "Authorization": "redacted",
                },
            }),
        ),
        // Not through the authorizer, or a route outside the table: the
        // backend's contract says refuse.
        _ => (
            403,
            json!({"backend": "echo", "refused": "the request did not come through the gateway's authorizer"}),
        ),
    };
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_route_scope_and_decision() {
        let ev = json!({
            "httpMethod": "GET", "resource": "/links/{id}", "path": "/links/a",
            "pathParameters": {"id": "a"},
            "requestContext": {"authorizer": {"accountId": "acct", "keyId": "k1", "scopes": "links.read", "principalId": "k1"}},
        });
        let r = answer(&ev);
        assert_eq!(r["statusCode"], 200);
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["route"]["scope"], "links.read");
        assert_eq!(body["headers"]["X-Account-Id"], "acct");
        assert_eq!(body["headers"]["x-api-key"], "redacted");
    }

    #[test]
    fn refuses_what_no_authorizer_decided() {
        let ev = json!({"httpMethod": "GET", "resource": "/links/{id}", "requestContext": {}});
        assert_eq!(answer(&ev)["statusCode"], 403);
    }
}
