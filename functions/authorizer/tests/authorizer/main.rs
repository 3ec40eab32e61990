//! Authorizer tests: handler tests on real event JSON with the in-memory store,
//! integration tests on DynamoDB Local, and the logging test on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dynamodb;
mod handler;
mod logging;

use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::{
    AccountId, ApiKey, CreateKey, KeyHash, KeyLookup, KeyName, KeyRecord, LookupKey, StoreError,
    Timestamp,
};
use authorizer::{AuthError, Request, Response};
use chrono::Utc;
use scopes::{Route, ScopeSet};
use serde_json::{Value, json};

/// The adjusted REQUEST-authorizer event (from `sam local generate-event
/// apigateway request-authorizer --resource 'links/{id}'`, with a real path,
/// a concrete method ARN and multi-value headers).
pub const FIXTURE: &str = include_str!("../../../../events/authorizer/request-links-get.json");
/// The same command's output, unchanged.
pub const GENERATED: &str = include_str!("../../../../events/authorizer/request-generated.json");

pub const API_ARN_PREFIX: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test";

/// A concrete path for a route, each `{param}` filled with `value`.
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

/// The fixture, retargeted at `route` and carrying `headers` (name, value)
/// as both single- and multi-value headers, deserialised exactly as the
/// runtime does (serde_json from the JSON text).
pub fn event_for(route: &Route, headers: &[(&str, &str)]) -> Request {
    let mut ev: Value = serde_json::from_str(FIXTURE).unwrap();
    let path = concrete_path(route.resource, "abc123");
    ev["resource"] = json!(route.resource);
    ev["httpMethod"] = json!(route.method);
    ev["path"] = json!(path);
    ev["methodArn"] = json!(method_arn(route));
    ev["requestContext"]["resourcePath"] = json!(route.resource);
    ev["requestContext"]["httpMethod"] = json!(route.method);
    set_headers(&mut ev, headers);
    parse(&ev)
}

pub fn set_headers(ev: &mut Value, headers: &[(&str, &str)]) {
    let single = ev["headers"].as_object_mut().unwrap();
    single.retain(|k, _| {
        !k.eq_ignore_ascii_case("x-api-key") && !k.eq_ignore_ascii_case("authorization")
    });
    for (k, v) in headers {
        single.insert((*k).to_owned(), json!(v));
    }
    let multi = ev["multiValueHeaders"].as_object_mut().unwrap();
    multi.retain(|k, _| {
        !k.eq_ignore_ascii_case("x-api-key") && !k.eq_ignore_ascii_case("authorization")
    });
    for (k, v) in headers {
        multi
            .entry((*k).to_owned())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!(v));
    }
}

pub fn parse(ev: &Value) -> Request {
    serde_json::from_str(&serde_json::to_string(ev).unwrap()).unwrap()
}

pub fn route(method: &str, resource: &str) -> &'static Route {
    scopes::route_for_template(method, resource).unwrap()
}

pub fn record_for(key: &ApiKey, scopes: ScopeSet, expires_at: Option<Timestamp>) -> KeyRecord {
    KeyRecord::new(
        key,
        AccountId::parse("acct-1").unwrap(),
        KeyName::parse("test key").unwrap(),
        scopes,
        expires_at,
        "user-1".to_owned(),
        Utc::now(),
    )
}

pub async fn stored_key<S: CreateKey>(
    store: &S,
    scopes: ScopeSet,
    expires_at: Option<Timestamp>,
) -> (ApiKey, KeyRecord) {
    let key = ApiKey::generate();
    let record = record_for(&key, scopes, expires_at);
    store.create(&record).await.unwrap();
    (key, record)
}

pub async fn decide<S: LookupKey>(store: &S, req: &Request) -> Result<Response, AuthError> {
    authorizer::authorize(store, req, Utc::now(), "test-request").await
}

/// The policy's effect, checked to be a single statement naming one resource.
pub fn effect_and_resource(resp: &Response) -> (String, String) {
    let doc = serde_json::to_value(&resp.policy_document).unwrap();
    let st = &doc["Statement"];
    assert_eq!(st.as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(st[0]["Action"], json!(["execute-api:Invoke"]));
    let res = st[0]["Resource"].as_array().unwrap();
    assert_eq!(res.len(), 1);
    (
        st[0]["Effect"].as_str().unwrap().to_owned(),
        res[0].as_str().unwrap().to_owned(),
    )
}

pub fn assert_unauthorized(result: Result<Response, AuthError>) {
    match result {
        Err(AuthError::Unauthorized) => {}
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

/// A store that counts lookups, to prove when none happens.
#[derive(Default)]
pub struct Counting<S> {
    pub inner: S,
    pub calls: AtomicUsize,
}

impl<S> Counting<S> {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl<S: LookupKey> LookupKey for Counting<S> {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(hash).await
    }
}

impl<S: CreateKey> CreateKey for Counting<S> {
    async fn create(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
}

/// A store whose every lookup fails.
pub struct Failing;

impl LookupKey for Failing {
    async fn lookup(&self, _: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        Err(StoreError::Unavailable("simulated outage".into()))
    }
}
