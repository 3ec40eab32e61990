//! Reading what the authorizer needs from a REQUEST-authorizer event: the
//! presented key and the method ARN. Nothing here touches the store.

use aws_lambda_events::http::HeaderMap;

/// Why no usable key was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Neither `x-api-key` nor `Authorization: Bearer …`.
    Missing,
    /// Two different keys: `x-api-key` and `Authorization: Bearer`, or a
    /// repeated `Authorization`.
    Conflicting,
    /// A header value that is not visible ASCII.
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
    headers: &'e HeaderMap,
    multi: &'e HeaderMap,
) -> Result<&'e str, KeyProblem> {
    key_from(headers, multi, true)
}

/// The key in `x-api-key` only, `Authorization` ignored: with result caching
/// on, `x-api-key` is the identity source API Gateway caches the decision
/// under, so the decision may depend on nothing else.
pub fn presented_api_key<'e>(
    headers: &'e HeaderMap,
    multi: &'e HeaderMap,
) -> Result<&'e str, KeyProblem> {
    key_from(headers, multi, false)
}

fn key_from<'e>(
    headers: &'e HeaderMap,
    multi: &'e HeaderMap,
    bearer: bool,
) -> Result<&'e str, KeyProblem> {
    let mut found: Option<&str> = None;
    for map in [headers, multi] {
        for value in map.get_all("x-api-key") {
            value.to_str().map_err(|_| KeyProblem::NotText)?;
        }
    }
    // The last x-api-key: the multi-value map holds every value in order,
    // the single-value map the last one.
    let last = multi
        .get_all("x-api-key")
        .iter()
        .next_back()
        .or_else(|| headers.get_all("x-api-key").iter().next_back());
    if let Some(value) = last {
        found = Some(value.to_str().map_err(|_| KeyProblem::NotText)?.trim());
    }
    for map in [headers, multi] {
        if !bearer {
            continue;
        }
        for value in map.get_all("authorization") {
            let v = value.to_str().map_err(|_| KeyProblem::NotText)?.trim();
            if let Some(token) = bearer_token(v) {
                found = merge(found, token)?;
            }
        }
    }
    found.ok_or(KeyProblem::Missing)
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
    use aws_lambda_events::http::HeaderValue;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn key_from_either_header_any_case_of_scheme() {
        let none = HeaderMap::new();
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
        let none = HeaderMap::new();
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
        let none = HeaderMap::new();
        assert_eq!(presented_key(&none, &none), Err(KeyProblem::Missing));
        for auth in ["Basic a2V5LWE=", "Bearer", "key-a", "Token key-a"] {
            assert_eq!(
                presented_key(&map(&[("authorization", auth)]), &none),
                Err(KeyProblem::Missing),
                "{auth}"
            );
        }
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
