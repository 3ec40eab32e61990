//! The local dashboard identity, one set of rules for `make run` and for
//! `sam local start-api` (local only; never part of the deployed template).
//!
//! The payload of the JWT in `Authorization: Bearer …` is decoded and **not
//! verified** ([`claims_from_bearer`]), every claim a string, as API
//! Gateway's REST context carries Cognito's claims: a numeric `sub` is the
//! account `"123"` under both. The local API (`local_stack::jwt`) puts the
//! claims where Cognito's authorizer does; SAM skips Cognito authorizers, so
//! the harness gives the dashboard API this crate's Lambda REQUEST
//! authorizer instead ([`decide`]), which answers Allow with the claims as
//! its context, in `requestContext.authorizer`, where the handlers read the
//! caller.

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

/// The claims of a bearer JWT, as API Gateway's REST context carries Cognito
/// claims: every value a string. `None` unless the header is `Bearer` with a
/// three-part token whose payload is a JSON object.
pub fn claims_from_bearer(authorization: &str) -> Option<Map<String, Value>> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut parts = token.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let Value::Object(claims) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    Some(
        claims
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(s))
            })
            .collect(),
    )
}

/// An unsigned token for `sub`, for trying the local API (never valid in AWS).
pub fn unsigned_token(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::json!({"sub": sub, "token_use": "id"}).to_string());
    format!("{header}.{payload}.local")
}

/// The claims of the event's `Authorization` header.
fn claims(event: &Value) -> Option<Map<String, Value>> {
    let value = event["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?
        .1
        .as_str()?;
    claims_from_bearer(value)
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
    // Context values must be scalars: every claim is a string.
    let context = claims;
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
        assert_eq!(
            r["context"],
            json!({"sub": "acct-demo", "n": "1", "list": "[1]"})
        );
        assert_eq!(
            r["policyDocument"]["Statement"][0]["Resource"],
            "arn:aws:execute-api:us-east-1:1:api/local/*"
        );
    }

    /// A numeric `sub` is the same account under `make run` and `sam local`.
    #[test]
    fn a_numeric_sub_is_its_string() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":12345}"#);
        let header = format!("Bearer x.{payload}.x");
        let r = decide(&event(&header)).unwrap();
        assert_eq!(r["principalId"], "12345");
        assert_eq!(r["context"]["sub"], "12345");
        assert_eq!(claims_from_bearer(&header).unwrap()["sub"], "12345");
    }

    #[test]
    fn round_trips_and_stringifies_claims() {
        let t = unsigned_token("acct-1");
        let claims = claims_from_bearer(&format!("Bearer {t}")).unwrap();
        assert_eq!(claims["sub"], "acct-1");
        let payload =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"a","auth_time":1700000000,"email_verified":true}"#);
        let claims = claims_from_bearer(&format!("bearer x.{payload}.y")).unwrap();
        assert_eq!(claims["auth_time"], "1700000000");
        assert_eq!(claims["email_verified"], "true");
    }

    #[test]
    fn rejects_what_is_not_a_bearer_jwt_with_an_object_payload() {
        for bad in [
            "",
            "Bearer",
            "Basic abc",
            "Bearer abc",
            "Bearer a.b",
            "Bearer a.!!!.c",
            "Bearer a.b.c.d",
        ] {
            assert!(claims_from_bearer(bad).is_none(), "{bad}");
        }
        let array = URL_SAFE_NO_PAD.encode(b"[1]");
        assert!(claims_from_bearer(&format!("Bearer a.{array}.c")).is_none());
    }

    #[test]
    fn anything_else_is_unauthorized() {
        let no_sub = URL_SAFE_NO_PAD.encode(br#"{"name":"x"}"#);
        for bad in [
            "",
            "Bearer",
            "Basic x.y.z",
            "Bearer x.!!!.x",
            "Bearer x.e30.x.x",
            &format!("Bearer x.{no_sub}.x"),
        ] {
            assert!(decide(&event(bad)).is_err(), "{bad}");
        }
        assert!(decide(&json!({"headers": {}})).is_err());
    }
}
