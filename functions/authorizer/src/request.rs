//! Reading what the authorizer needs from a REQUEST-authorizer event: the
//! route, the method ARN and the presented key. Nothing here touches the
//! store.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What the authorizer reads of API Gateway's REQUEST-authorizer event, and
/// nothing else: every other field, and every header but the key headers,
/// is skipped unread (a warm call paid about 12 µs to build the full event's
/// header maps and contexts; BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The ARN the policy names: `…/{stage}/{METHOD}/{path}`.
    #[serde(default)]
    pub method_arn: Option<String>,
    /// The route template API Gateway matched (`/links/{id}`).
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub http_method: Option<String>,
    /// The single-value header map (a repeated header's last value).
    #[serde(default)]
    pub headers: KeyHeaders,
    /// The multi-value header map (every value, in order).
    #[serde(default)]
    pub multi_value_headers: KeyHeaders,
}

/// The key headers of one of the event's header maps: `x-api-key` and
/// `Authorization` (names in any case, as clients send them), their values
/// in order. A value given as a string replaces that header's earlier
/// values, a list adds to them: what `http::HeaderMap`'s `insert` and
/// `append` do with the same map.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyHeaders {
    api_key: Vec<String>,
    authorization: Vec<String>,
}

/// How many values each key header has, never the values: they are keys.
impl fmt::Debug for KeyHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHeaders")
            .field("api_key", &self.api_key.len())
            .field("authorization", &self.authorization.len())
            .finish()
    }
}

/// Which key header a name is, in any case.
#[derive(Clone, Copy)]
enum KeyHeader {
    ApiKey,
    Authorization,
}

impl KeyHeader {
    fn named(name: &str) -> Option<KeyHeader> {
        if name.eq_ignore_ascii_case("x-api-key") {
            Some(KeyHeader::ApiKey)
        } else if name.eq_ignore_ascii_case("authorization") {
            Some(KeyHeader::Authorization)
        } else {
            None
        }
    }
}

impl KeyHeaders {
    /// The `x-api-key` values, in order.
    pub fn api_key(&self) -> &[String] {
        &self.api_key
    }

    /// The `Authorization` values, in order.
    pub fn authorization(&self) -> &[String] {
        &self.authorization
    }

    /// Adds a value to header `name` (any other header is not kept).
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        if let Some(values) = KeyHeader::named(name).map(|h| self.values(h)) {
            values.push(value.into());
        }
    }

    fn values(&mut self, header: KeyHeader) -> &mut Vec<String> {
        match header {
            KeyHeader::ApiKey => &mut self.api_key,
            KeyHeader::Authorization => &mut self.authorization,
        }
    }
}

/// A header map's name: a key header, or one skipped with its value.
struct Name(Option<KeyHeader>);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name, E> {
                Ok(Name(KeyHeader::named(name)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A key header's value: one string, or a list of them.
enum Values {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Values, E> {
                Ok(Values::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Values, E> {
                Ok(Values::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(v) = seq.next_element::<String>()? {
                    all.push(v);
                }
                Ok(Values::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for KeyHeaders {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<KeyHeaders, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyHeaders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of headers")
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyHeaders, E> {
                Ok(KeyHeaders::default())
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<KeyHeaders, M::Error> {
                let mut headers = KeyHeaders::default();
                while let Some(Name(name)) = map.next_key()? {
                    let Some(name) = name else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let values = headers.values(name);
                    match map.next_value()? {
                        Values::One(v) => *values = vec![v],
                        Values::Many(vs) => values.extend(vs),
                    }
                }
                Ok(headers)
            }
        }
        d.deserialize_any(V)
    }
}

/// Why no usable key was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Neither `x-api-key` nor `Authorization: Bearer …`.
    Missing,
    /// Two different keys: `x-api-key` and `Authorization: Bearer`, or a
    /// repeated `Authorization`.
    Conflicting,
    /// A key header's value that is not visible ASCII (or tabs).
    NotText,
}

/// The key presented in `x-api-key` or `Authorization: Bearer …`.
///
/// Header names are case-insensitive (the event's maps are keyed in lower
/// case) and so is the `Bearer` scheme. A repeated `x-api-key` presents its
/// **last** value — the one API Gateway puts in the single-value map and,
/// with caching on, keys its cache on — so a repeat decides the same way
/// with the cache on and off. Every `Authorization: Bearer` value must name
/// that same key. An `Authorization` header with another scheme presents no
/// key.
pub fn presented_key<'e>(
    headers: &'e KeyHeaders,
    multi: &'e KeyHeaders,
) -> Result<&'e str, KeyProblem> {
    key_from(headers, multi, true)
}

/// The key in `x-api-key` only, `Authorization` ignored: with result caching
/// on, `x-api-key` is the identity source API Gateway caches the decision
/// under, so the decision may depend on nothing else.
pub fn presented_api_key<'e>(
    headers: &'e KeyHeaders,
    multi: &'e KeyHeaders,
) -> Result<&'e str, KeyProblem> {
    key_from(headers, multi, false)
}

fn key_from<'e>(
    headers: &'e KeyHeaders,
    multi: &'e KeyHeaders,
    bearer: bool,
) -> Result<&'e str, KeyProblem> {
    for map in [headers, multi] {
        if !map.api_key.iter().all(|v| is_text(v)) {
            return Err(KeyProblem::NotText);
        }
    }
    // The last x-api-key: the multi-value map holds every value in order,
    // the single-value map the last one.
    let mut found = multi
        .api_key
        .last()
        .or_else(|| headers.api_key.last())
        .map(|v| v.trim());
    if bearer {
        for map in [headers, multi] {
            for value in &map.authorization {
                if !is_text(value) {
                    return Err(KeyProblem::NotText);
                }
                if let Some(token) = bearer_token(value.trim()) {
                    found = merge(found, token)?;
                }
            }
        }
    }
    found.ok_or(KeyProblem::Missing)
}

/// Visible ASCII and tabs: what a header value may hold to be read as text
/// (`http::HeaderValue::to_str`'s rule).
fn is_text(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn merge<'e>(found: Option<&'e str>, next: &'e str) -> Result<Option<&'e str>, KeyProblem> {
    match found {
        Some(prev) if prev != next => Err(KeyProblem::Conflicting),
        _ => Ok(Some(next)),
    }
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The longest method ARN accepted (API Gateway's are far shorter).
const MAX_ARN_LEN: usize = 2048;

/// A parsed `execute-api` method ARN:
/// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
    pub method: &'a str,
    pub path: &'a str,
}

/// The partitions API Gateway runs in.
const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

impl<'a> MethodArn<'a> {
    /// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/`: what
    /// every method ARN of this API and stage starts with.
    pub fn stage_prefix(&self) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{}/{}/",
            self.partition, self.region, self.account, self.api_id, self.stage
        )
    }

    /// `None` for anything that is not a well-formed method ARN.
    pub fn parse(arn: &'a str) -> Option<MethodArn<'a>> {
        if arn.len() > MAX_ARN_LEN || arn.chars().any(|c| c.is_control() || c == ' ') {
            return None;
        }
        let mut parts = arn.splitn(6, ':');
        let (prefix, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if prefix != "arn" || !PARTITIONS.contains(&partition) || service != "execute-api" {
            return None;
        }
        let mut res = resource.splitn(4, '/');
        let (api_id, stage, method, path) = (res.next()?, res.next()?, res.next()?, res.next()?);
        let nonempty = [region, account, api_id, stage, method];
        if nonempty
            .iter()
            .any(|p| p.is_empty() || p.contains(['*', '?']))
            || path.contains(['*', '?'])
        {
            return None;
        }
        Some(MethodArn {
            partition,
            region,
            account,
            api_id,
            stage,
            method,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> KeyHeaders {
        let mut m = KeyHeaders::default();
        for (k, v) in pairs {
            m.append(k, *v);
        }
        m
    }

    #[test]
    fn key_from_either_header_any_case_of_scheme() {
        let none = KeyHeaders::default();
        assert_eq!(
            presented_key(&map(&[("x-api-key", "key-a")]), &none),
            Ok("key-a")
        );
        for auth in [
            "Bearer key-a",
            "bearer key-a",
            "BEARER  key-a ",
            "bEaReR key-a",
        ] {
            assert_eq!(
                presented_key(&map(&[("authorization", auth)]), &none),
                Ok("key-a"),
                "{auth}"
            );
        }
    }

    #[test]
    fn same_key_in_both_headers_is_fine_different_keys_conflict() {
        let none = KeyHeaders::default();
        let both = map(&[("x-api-key", "key-a"), ("authorization", "Bearer key-a")]);
        assert_eq!(presented_key(&both, &both), Ok("key-a"));
        let differ = map(&[("x-api-key", "key-a"), ("authorization", "Bearer key-b")]);
        assert_eq!(presented_key(&differ, &none), Err(KeyProblem::Conflicting));
        // A repeated x-api-key presents its last value, in both modes.
        let repeated = map(&[("x-api-key", "key-a"), ("x-api-key", "key-b")]);
        let last = map(&[("x-api-key", "key-b")]);
        assert_eq!(presented_key(&last, &repeated), Ok("key-b"));
        assert_eq!(presented_api_key(&last, &repeated), Ok("key-b"));
        // ... and a Bearer must name that same key.
        let bearer_a = map(&[("x-api-key", "key-b"), ("authorization", "Bearer key-a")]);
        assert_eq!(
            presented_key(&bearer_a, &repeated),
            Err(KeyProblem::Conflicting)
        );
        let two_bearers = map(&[
            ("authorization", "Bearer key-a"),
            ("authorization", "Bearer key-b"),
        ]);
        assert_eq!(
            presented_key(&two_bearers, &none),
            Err(KeyProblem::Conflicting)
        );
    }

    #[test]
    fn no_key_or_another_scheme_is_missing() {
        let none = KeyHeaders::default();
        assert_eq!(presented_key(&none, &none), Err(KeyProblem::Missing));
        for auth in ["Basic a2V5LWE=", "Bearer", "key-a", "Token key-a"] {
            assert_eq!(
                presented_key(&map(&[("authorization", auth)]), &none),
                Err(KeyProblem::Missing),
                "{auth}"
            );
        }
    }

    fn request(json: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn only_the_key_headers_are_kept_in_any_case() {
        let req = request(
            r#"{"httpMethod":"GET","resource":"/links","methodArn":"arn",
                "headers":{"Accept":"*/*","X-API-Key":"key-a","AUTHORIZATION":"Bearer key-a",
                           "X-Odd":null,"X-Number":7,"X-List":[1,{"a":[]}]},
                "multiValueHeaders":{"x-api-key":["key-a"],"Host":["h"]},
                "requestContext":{"identity":{"sourceIp":"203.0.113.1"}},
                "queryStringParameters":null}"#,
        )
        .unwrap();
        assert_eq!(req.http_method.as_deref(), Some("GET"));
        assert_eq!(req.resource.as_deref(), Some("/links"));
        assert_eq!(req.method_arn.as_deref(), Some("arn"));
        assert_eq!(req.headers.api_key(), ["key-a"]);
        assert_eq!(req.headers.authorization(), ["Bearer key-a"]);
        assert_eq!(req.multi_value_headers.api_key(), ["key-a"]);
        assert!(req.multi_value_headers.authorization().is_empty());
    }

    #[test]
    fn a_request_debugs_without_its_keys() {
        let req = request(
            r#"{"headers":{"x-api-key":"key-secret-a","Authorization":"Bearer key-secret-b"}}"#,
        )
        .unwrap();
        let shown = format!("{req:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("api_key: 1"), "{shown}");
    }

    #[test]
    fn a_string_replaces_earlier_values_and_a_list_adds_to_them() {
        let req = request(
            r#"{"headers":{"x-api-key":"key-a","X-Api-Key":"key-b"},
                "multiValueHeaders":{"x-api-key":["key-a"],"X-API-KEY":["key-b","key-c"]}}"#,
        )
        .unwrap();
        assert_eq!(req.headers.api_key(), ["key-b"]);
        assert_eq!(
            req.multi_value_headers.api_key(),
            ["key-a", "key-b", "key-c"]
        );
        assert_eq!(
            presented_key(&req.headers, &req.multi_value_headers),
            Ok("key-c")
        );
        let replaced =
            request(r#"{"headers":{"x-api-key":["key-a","key-b"],"X-Api-Key":"key-c"}}"#).unwrap();
        assert_eq!(replaced.headers.api_key(), ["key-c"]);
    }

    #[test]
    fn absent_or_null_header_maps_hold_no_key() {
        for json in [
            "{}",
            r#"{"headers":null,"multiValueHeaders":null,"httpMethod":null}"#,
            r#"{"headers":{},"multiValueHeaders":{"x-api-key":[]}}"#,
        ] {
            let req = request(json).unwrap();
            assert_eq!(req.http_method, None, "{json}");
            assert_eq!(
                presented_key(&req.headers, &req.multi_value_headers),
                Err(KeyProblem::Missing),
                "{json}"
            );
        }
    }

    #[test]
    fn a_key_header_that_is_not_a_string_is_a_bad_event() {
        for json in [
            r#"{"headers":{"x-api-key":7}}"#,
            r#"{"headers":{"x-api-key":null}}"#,
            r#"{"multiValueHeaders":{"authorization":[null]}}"#,
            r#"{"headers":["x-api-key"]}"#,
        ] {
            assert!(request(json).is_err(), "{json}");
        }
    }

    #[test]
    fn key_headers_must_be_visible_ascii() {
        let none = KeyHeaders::default();
        for bad in ["key-\u{e9}", "key-a\u{1}", "key-a\u{7f}", "key-a\n"] {
            assert_eq!(
                presented_key(&map(&[("x-api-key", bad)]), &none),
                Err(KeyProblem::NotText),
                "{bad:?}"
            );
            assert_eq!(
                presented_key(&map(&[("authorization", &format!("Bearer {bad}"))]), &none),
                Err(KeyProblem::NotText),
                "{bad:?}"
            );
            // With caching on only x-api-key is read.
            assert_eq!(
                presented_api_key(&map(&[("authorization", &format!("Bearer {bad}"))]), &none),
                Err(KeyProblem::Missing),
                "{bad:?}"
            );
        }
        assert_eq!(
            presented_key(&map(&[("x-api-key", "\tkey-a ")]), &none),
            Ok("key-a")
        );
    }

    #[test]
    fn method_arns_parse_in_every_partition() {
        for p in PARTITIONS {
            let arn =
                format!("arn:{p}:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/links/abc");
            let m = MethodArn::parse(&arn).unwrap();
            assert_eq!(
                (m.partition, m.stage, m.method, m.path),
                (p, "prod", "GET", "links/abc")
            );
        }
    }

    #[test]
    fn malformed_method_arns_are_rejected() {
        for bad in [
            "",
            "arn",
            "arn:aws:execute-api:us-east-1:123456789012",
            "arn:aws:lambda:us-east-1:123456789012:abc/prod/GET/links",
            "arn:aws-xx:execute-api:us-east-1:123456789012:abc/prod/GET/links",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET",
            "arn:aws:execute-api::123456789012:abc/prod/GET/links",
            "arn:aws:execute-api:us-east-1:123456789012:abc//GET/links",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/*/links",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/links\n",
            "xarn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/links",
        ] {
            assert_eq!(MethodArn::parse(bad), None, "{bad:?}");
        }
        let long = format!("arn:aws:execute-api:r:1:a/s/GET/{}", "x".repeat(3000));
        assert_eq!(MethodArn::parse(&long), None);
    }
}
