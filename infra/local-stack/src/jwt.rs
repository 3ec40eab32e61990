//! The local dashboard identity: the payload of `Authorization: Bearer <JWT>`,
//! decoded and **not verified**. Local only: in AWS, API Gateway's Cognito
//! authorizer verifies the token and hands the function its claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
