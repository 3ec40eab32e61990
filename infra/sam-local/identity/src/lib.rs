//! The dashboard identity for `sam local start-api` (local only).
//!
//! SAM skips Cognito authorizers, so the harness gives the dashboard API this
//! Lambda REQUEST authorizer instead: it decodes the payload of the JWT in
//! `Authorization: Bearer …` **without verifying it**, as the local API
//! does, and answers Allow with the token's scalar claims as its context.
//! API Gateway (here SAM) puts that context in `requestContext.authorizer`,
//! where the handlers read the caller. It is never part of the deployed
//! template.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// API Gateway answers 401 for exactly this message.
    #[error("Unauthorized")]
    Unauthorized,
}

impl From<IdentityError> for lambda_runtime::Diagnostic {
    fn from(err: IdentityError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: "Unauthorized".to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// The token's claims: the middle part of `Bearer <header>.<payload>.<sig>`.
fn claims(event: &Value) -> Option<Map<String, Value>> {
    let value = event["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?
        .1
        .as_str()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let payload = token.trim().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// The authorizer's answer for one REQUEST event.
pub fn decide(event: &Value) -> Result<Value, IdentityError> {
    let claims = claims(event).ok_or(IdentityError::Unauthorized)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(IdentityError::Unauthorized)?
        .to_owned();
    // Context values must be scalars.
    let context: Map<String, Value> = claims
        .into_iter()
        .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
        .collect();
    // Every method of this API and stage: arn:…:{api}/{stage}/…
    let arn = event["methodArn"].as_str().unwrap_or("*");
    let stage = arn.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
    Ok(json!({
        "principalId": sub,
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": format!("{stage}/*"),
        }]},
        "context": context,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(auth: &str) -> Value {
        json!({"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:api/local/GET/apikeys",
               "headers": {"Authorization": auth}})
    }

    #[test]
    fn the_tokens_claims_become_the_context() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"acct-demo","n":1,"list":[1]}"#);
        let r = decide(&event(&format!("Bearer x.{payload}.x"))).unwrap();
        assert_eq!(r["principalId"], "acct-demo");
        assert_eq!(r["context"], json!({"sub": "acct-demo", "n": 1}));
        assert_eq!(
            r["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:us-east-1:1:api/local/*"
        );
    }

    #[test]
    fn anything_else_is_unauthorized() {
        let no_sub = URL_SAFE_NO_PAD.encode(br#"{"name":"x"}"#);
        for bad in [
            "",
            "Bearer",
            "Basic x.y.z",
            "Bearer x.!!!.x",
            &format!("Bearer x.{no_sub}.x"),
        ] {
            assert!(decide(&event(bad)).is_err(), "{bad}");
        }
        assert!(decide(&json!({"headers": {}})).is_err());
    }
}
