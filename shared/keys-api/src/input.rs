//! Request bodies and headers: limits, content type, JSON objects, and the
//! validators of each field. Every failure is an [`ApiError`] that names the field.

use apikeys::{KeyName, Timestamp};
use lambda_http::Request;
use lambda_http::http::HeaderValue;
use lambda_http::http::header::{CONTENT_TYPE, IF_MATCH};
use scopes::{Scope, ScopeSet};
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
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

/// The body as `B`, a struct that derives `Deserialize` with
/// `#[serde(deny_unknown_fields)]` and takes each field as sent (see
/// [`present`]): the checks of [`json_object`], then the body's shape, where
/// a field `B` does not name is 400 `unknown_field` (the first in
/// alphabetical order). The fields' values are checked afterwards, by the
/// operation's `TryFrom` from `B` into its validated types, in a fixed order.
pub fn body<B: DeserializeOwned>(req: &Request) -> Result<B, ApiError> {
    shaped(json_object(req)?)
}

/// Like [`body`], but an empty body (with any content type, or none) is an
/// empty object: for operations whose body is optional.
pub fn optional_body<B: DeserializeOwned>(req: &Request) -> Result<B, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    shaped(if bytes.is_empty() {
        Map::new()
    } else {
        json_object(req)?
    })
}

/// `object` as `B`: a field `B` does not name is 400 `unknown_field`, the
/// first in alphabetical order (a JSON object's keys, in order). Every field
/// of `B` takes any value, so nothing else can fail.
fn shaped<B: DeserializeOwned>(object: Map<String, Value>) -> Result<B, ApiError> {
    let fields = field_names::<B>();
    if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::UnknownField(unknown.chars().take(100).collect()));
    }
    serde_json::from_value(Value::Object(object))
        .map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// The field names a struct's derived `Deserialize` accepts (with its
/// renames): what it hands its deserializer's `deserialize_struct`, caught
/// there. Empty for anything that is not a struct.
fn field_names<'de, B: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    /// What the catching deserializer ends with: the fields, if a struct
    /// asked for them.
    #[derive(Debug)]
    struct Caught(&'static [&'static str]);
    impl std::fmt::Display for Caught {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names caught")
        }
    }
    impl std::error::Error for Caught {}
    impl de::Error for Caught {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Caught(&[])
        }
    }

    struct Catch;
    impl<'de> Deserializer<'de> for Catch {
        type Error = Caught;
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Caught> {
            Err(Caught(fields))
        }
        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Caught> {
            Err(Caught(&[]))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    match B::deserialize(Catch) {
        Err(Caught(fields)) => fields,
        Ok(_) => &[],
    }
}

/// A body field as sent, `null` included (`Some(Value::Null)`): absent is
/// `None`. For `#[serde(default, deserialize_with = "present")]`, so that a
/// `null` reaches the field's check (400 `invalid_field`), not "missing".
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A field that must be there.
pub fn required(value: Option<Value>, field: &'static str) -> Result<Value, ApiError> {
    value.ok_or(ApiError::MissingField(field))
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

/// `expiresAt`: absent or `null` for never, else an RFC 3339 time (that it
/// is in the future is [`in_future`]'s check).
pub fn expires_at(v: Option<&Value>) -> Result<Option<Timestamp>, ApiError> {
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
    apikeys::model::parse_timestamp(s).map(Some).ok_or_else(|| {
        ApiError::invalid(
            "expiresAt",
            "must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z",
        )
    })
}

/// An expiry, if any, must be after `now`.
pub fn in_future(expires_at: Option<Timestamp>, now: Timestamp) -> Result<(), ApiError> {
    match expires_at {
        Some(t) if t <= now => Err(ApiError::invalid("expiresAt", "must be in the future")),
        _ => Ok(()),
    }
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
        let expiry = |v: Option<&Value>| expires_at(v).and_then(|t| in_future(t, now).map(|()| t));
        assert_eq!(expiry(None).unwrap(), None);
        assert_eq!(expiry(Some(&Value::Null)).unwrap(), None);
        let later = (now + Duration::days(1)).to_rfc3339();
        assert!(expiry(Some(&json!(later))).unwrap().is_some());
        let past = (now - Duration::days(1)).to_rfc3339();
        for bad in [
            json!(past),
            json!("tomorrow"),
            json!(1_900_000_000),
            json!("2030-01-01"),
        ] {
            assert!(
                expiry(Some(&bad))
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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Shape {
        #[serde(default, deserialize_with = "present")]
        name: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        expires_at: Option<Value>,
    }

    fn shape(json: &str) -> Result<Shape, ApiError> {
        body(&request(&[("content-type", "application/json")], json))
    }

    #[test]
    fn a_body_has_its_fields_and_no_other() {
        let s = shape(r#"{"name": "x", "expiresAt": null}"#).unwrap();
        assert_eq!(s.name, Some(json!("x")));
        assert_eq!(s.expires_at, Some(Value::Null), "null is sent, not absent");
        let s = shape("{}").unwrap();
        assert_eq!((s.name, s.expires_at), (None, None));
        // The first unknown field in alphabetical order, whatever the values.
        for (body, field) in [
            (r#"{"name": 5, "owner": "y"}"#, "owner"),
            (r#"{"zz": 1, "b": 2, "name": "x"}"#, "b"),
            (r#"{"expires_at": "x"}"#, "expires_at"),
            (r#"{"a`, expected `b": 1}"#, "a`, expected `b"),
            (r#"{"Name": "x"}"#, "Name"),
        ] {
            match shape(body) {
                Err(ApiError::UnknownField(f)) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        let long = format!(r#"{{"{}": 1}}"#, "é".repeat(150));
        match shape(&long) {
            Err(ApiError::UnknownField(f)) => assert_eq!(f, "é".repeat(100)),
            other => panic!("{other:?}"),
        }
        // The body checks come first.
        assert!(matches!(shape("[]"), Err(ApiError::NotAnObject)));
        assert!(matches!(
            body::<Shape>(&request(&[], "")),
            Err(ApiError::UnsupportedMediaType)
        ));
        let empty: Shape = optional_body(&request(&[], "")).unwrap();
        assert_eq!((empty.name, empty.expires_at), (None, None));
        assert!(matches!(
            optional_body::<Shape>(&request(&[], "{}")),
            Err(ApiError::UnsupportedMediaType)
        ));
    }

    #[test]
    fn field_names_are_the_names_a_struct_accepts() {
        assert_eq!(field_names::<Shape>(), ["name", "expiresAt"]);
        assert!(field_names::<Value>().is_empty());
        assert!(field_names::<Map<String, Value>>().is_empty());
        assert!(field_names::<String>().is_empty());
    }

    #[test]
    fn a_struct_with_one_field_names_the_unknown_one_too() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct One {
            #[serde(default, deserialize_with = "present")]
            #[allow(dead_code)]
            only: Option<Value>,
        }
        let r = request(&[("content-type", "application/json")], r#"{"x": 1}"#);
        assert!(matches!(body::<One>(&r), Err(ApiError::UnknownField(f)) if f == "x"));
    }
}
