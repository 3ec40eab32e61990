//! Request bodies and headers: limits, content type, JSON objects, and the
//! validators of each field. Every failure is an [`ApiError`] that names the field.

use apikeys::{KeyName, Timestamp};
use lambda_http::Request;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::{CONTENT_TYPE, IF_MATCH};
use scopes::{Scope, ScopeSet};
use serde_json::{Map, Value};

use crate::ApiError;

/// The largest body accepted: 16 KiB.
pub const MAX_BODY: usize = 16 * 1024;

/// The body as a JSON object, checked in this order: size (413), content
/// type (415: `application/json`, parameters such as `charset` allowed),
/// JSON syntax (400 `malformed_json`), an object (400 `invalid_body`).
pub fn json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge);
    }
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::NotAnObject),
        Err(e) => Err(ApiError::MalformedJson(e.to_string())),
    }
}

/// A page's size when none is asked for.
pub const DEFAULT_LIMIT: u16 = 50;

/// A list's paging query: `limit` (1–[`apikeys::store::MAX_PAGE`], default
/// [`DEFAULT_LIMIT`]; anything else is 400 `invalid_limit`) and `nextToken`
/// (an empty one is none: the first page).
pub fn page(req: &Request) -> Result<(u16, Option<&str>), ApiError> {
    use lambda_http::RequestExt;
    let query = req.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=apikeys::store::MAX_PAGE).contains(n))
            .ok_or(ApiError::InvalidLimit)?,
    };
    let token = query
        .and_then(|q| q.first("nextToken"))
        .filter(|t| !t.is_empty());
    Ok((limit, token))
}

/// Like [`json_object`], but an empty body (with any content type, or none)
/// is an empty object: for operations whose body is optional.
pub fn optional_json_object(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    json_object(req)
}

/// The longest grace period a roll may give the secret it replaces: a day.
pub const MAX_GRACE_SECONDS: u64 = 86_400;

/// `gracePeriodSeconds`: absent for 0, else a whole number of seconds from
/// 0 to [`MAX_GRACE_SECONDS`].
pub fn grace_period(v: Option<&Value>) -> Result<u64, ApiError> {
    match v {
        None => Ok(0),
        // A whole number, however JSON writes it (`60` or `60.0`: JSON
        // Schema's integers include both).
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..=MAX_GRACE_SECONDS as f64).contains(f))
                    .map(|f| f as u64)
            })
            .filter(|n| *n <= MAX_GRACE_SECONDS)
            .ok_or_else(|| {
                ApiError::invalid(
                    "gracePeriodSeconds",
                    format!("must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"),
                )
            }),
    }
}

/// Rejects any field not in `allowed` (the first, in the body's order).
pub fn reject_unknown(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::UnknownField(k.chars().take(100).collect())),
        None => Ok(()),
    }
}

/// A field that must be there.
pub fn required<'b>(
    body: &'b Map<String, Value>,
    field: &'static str,
) -> Result<&'b Value, ApiError> {
    body.get(field).ok_or(ApiError::MissingField(field))
}

/// `name`: a string of 1–100 characters after trimming, no control characters.
pub fn name(v: &Value) -> Result<KeyName, ApiError> {
    let s = v
        .as_str()
        .ok_or_else(|| ApiError::invalid("name", "must be a string"))?;
    KeyName::parse(s).map_err(|e| ApiError::invalid("name", e.to_string()))
}

/// `scopes`: a non-empty array of catalogue scopes; duplicates are folded.
pub fn scopes(v: &Value) -> Result<ScopeSet, ApiError> {
    let items = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("scopes", "must be an array of scope strings"))?;
    if items.is_empty() {
        return Err(ApiError::invalid("scopes", "must name at least one scope"));
    }
    let mut set = ScopeSet::EMPTY;
    for item in items {
        let s = item
            .as_str()
            .ok_or_else(|| ApiError::invalid("scopes", "must be an array of scope strings"))?;
        let scope: Scope = s.parse().map_err(|e: scopes::UnknownScope| {
            let shown: String = e.0.chars().take(100).collect();
            ApiError::invalid("scopes", format!("unknown scope `{shown}`"))
        })?;
        set.insert(scope);
    }
    Ok(set)
}

/// `active`: a boolean.
pub fn active(v: &Value) -> Result<bool, ApiError> {
    v.as_bool()
        .ok_or_else(|| ApiError::invalid("active", "must be true or false"))
}

/// `expiresAt`: absent or `null` for never, else an RFC 3339 time after `now`.
pub fn expires_at(v: Option<&Value>, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ApiError::invalid(
                "expiresAt",
                "must be an RFC 3339 timestamp string",
            ));
        }
    };
    let t = apikeys::model::parse_timestamp(s).ok_or_else(|| {
        ApiError::invalid(
            "expiresAt",
            "must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z",
        )
    })?;
    if t <= now {
        return Err(ApiError::invalid("expiresAt", "must be in the future"));
    }
    Ok(Some(t))
}

/// `If-Match`: absent or `*` for no condition, else one entity tag (`"3"`,
/// or a bare `3`) naming the expected version. Weak tags, lists and other
/// values are refused (400): a conditional update needs a strong match.
pub fn expected_version(req: &Request) -> Result<Option<u64>, ApiError> {
    let mut values = req.headers().get_all(IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidIfMatch);
    }
    let s = value.to_str().map_err(|_| ApiError::InvalidIfMatch)?.trim();
    // `*` matches any version; an empty list of tags (RFC 9110's `#entity-tag`
    // allows zero) names none: neither sets a condition.
    if s == "*" || s.is_empty() {
        return Ok(None);
    }
    let tag = s
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s);
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_digit()) || tag.len() > 19 {
        return Err(ApiError::InvalidIfMatch);
    }
    tag.parse().map(Some).map_err(|_| ApiError::InvalidIfMatch)
}

/// The `ETag` for a version: a strong entity tag, `"3"`.
pub fn etag(version: u64) -> HeaderValue {
    // Quotes and digits always make a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use serde_json::json;

    fn request(headers: &[(&str, &str)], body: &str) -> Request {
        let mut b = lambda_http::http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(lambda_http::Body::Text(body.to_owned())).unwrap()
    }

    #[test]
    fn body_checks_run_in_order() {
        let json_ct = [("content-type", "application/json")];
        let big = format!("{{\"name\":\"{}\"}}", "x".repeat(MAX_BODY));
        assert!(matches!(
            json_object(&request(&[], &big)),
            Err(ApiError::PayloadTooLarge)
        ));
        assert!(matches!(
            json_object(&request(&[], "{}")),
            Err(ApiError::UnsupportedMediaType)
        ));
        assert!(matches!(
            json_object(&request(&[("content-type", "text/plain")], "{}")),
            Err(ApiError::UnsupportedMediaType)
        ));
        assert!(matches!(
            json_object(&request(&json_ct, "{")),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            json_object(&request(&json_ct, "")),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            json_object(&request(&json_ct, "[1]")),
            Err(ApiError::NotAnObject)
        ));
        assert!(
            json_object(&request(
                &[("content-type", "Application/JSON; charset=utf-8")],
                "{}"
            ))
            .is_ok()
        );
        let exactly = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY - 8));
        assert_eq!(exactly.len(), MAX_BODY);
        assert!(json_object(&request(&json_ct, &exactly)).is_ok());
    }

    #[test]
    fn scopes_are_validated_and_folded() {
        assert_eq!(
            scopes(&json!(["links.read", "links.read"])).unwrap().len(),
            1
        );
        for bad in [
            json!([]),
            json!("links.read"),
            json!([1]),
            json!(["links.write"]),
            json!(null),
        ] {
            let e = scopes(&bad).unwrap_err();
            assert!(e.to_string().starts_with("`scopes`"), "{e}");
        }
        assert!(
            scopes(&json!(["nope"]))
                .unwrap_err()
                .to_string()
                .contains("unknown scope `nope`")
        );
    }

    #[test]
    fn names_and_expiry_are_validated() {
        assert_eq!(name(&json!("  CI bot  ")).unwrap().as_str(), "CI bot");
        for bad in [
            json!(""),
            json!("   "),
            json!(5),
            json!("a\u{0}b"),
            json!("x".repeat(101)),
        ] {
            assert!(name(&bad).unwrap_err().to_string().starts_with("`name`"));
        }
        let now = Utc::now();
        assert_eq!(expires_at(None, now).unwrap(), None);
        assert_eq!(expires_at(Some(&Value::Null), now).unwrap(), None);
        let later = (now + Duration::days(1)).to_rfc3339();
        assert!(expires_at(Some(&json!(later)), now).unwrap().is_some());
        let past = (now - Duration::days(1)).to_rfc3339();
        for bad in [
            json!(past),
            json!("tomorrow"),
            json!(1_900_000_000),
            json!("2030-01-01"),
        ] {
            assert!(
                expires_at(Some(&bad), now)
                    .unwrap_err()
                    .to_string()
                    .starts_with("`expiresAt`")
            );
        }
    }

    #[test]
    fn if_match_forms() {
        let v = |h: &str| expected_version(&request(&[("if-match", h)], ""));
        assert_eq!(expected_version(&request(&[], "")).unwrap(), None);
        assert_eq!(v("\"3\"").unwrap(), Some(3));
        assert_eq!(v("3").unwrap(), Some(3));
        assert_eq!(v("*").unwrap(), None);
        assert_eq!(v("").unwrap(), None, "an empty If-Match sets no condition");
        assert_eq!(v("  ").unwrap(), None);
        for bad in [
            "W/\"3\"",
            "\"3\", \"4\"",
            "\"\"",
            "abc",
            "\"-1\"",
            "99999999999999999999",
        ] {
            assert!(matches!(v(bad), Err(ApiError::InvalidIfMatch)), "{bad}");
        }
        assert_eq!(etag(7), "\"7\"");
    }

    #[test]
    fn unknown_fields_are_named() {
        let body = json!({"name": "x", "owner": "y"});
        let e = reject_unknown(body.as_object().unwrap(), &["name"]).unwrap_err();
        assert_eq!(e.to_string(), "unknown field `owner`");
    }
}
