//! Authorizer tests: handler tests on real event JSON with the in-memory store,
//! integration tests on DynamoDB Local, and the logging test on the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod caching;
mod dynamodb;
mod handler;
mod key_states;
mod logging;

/// Runs each named key-state test once per store.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::key_states::$name(&apikeys::MemoryStore::new()).await;
                }
            )*
        }
        mod dynamo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = apikeys::testing::fresh_dynamo_store(stringify!($name)).await;
                    crate::key_states::$name(&store).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_rolled_secret_works_through_its_grace_then_is_unauthorized,
    a_call_records_the_keys_use_once_per_interval,
    a_stored_key_is_allowed_and_denied_by_scope,
    a_key_not_in_the_store_is_unauthorized,
    an_inactive_key_is_unauthorized,
    an_expired_key_is_unauthorized_and_a_later_one_works,
    a_deleted_key_is_unauthorized_on_the_next_call,
    revocation_is_seen_by_the_very_next_call,
);

use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::{
    AccountId, ApiKey, CreateKey, KeyHash, KeyLookup, KeyName, KeyRecord, LookupKey, RecordUse,
    StoreError, Timestamp,
};
use authorizer::{AuthError, Request, Response};
use chrono::Utc;
use scopes::{Route, ScopeSet};
pub use serde_json::{Value, json};

pub use authorizer::testing::*;

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
    store
        .create(
            &record,
            &apikeys::Audit::system("test", chrono::Utc::now()),
            u32::MAX,
        )
        .await
        .unwrap();
    (key, record)
}

pub async fn decide<S: LookupKey + RecordUse>(
    store: &S,
    req: &Request,
) -> Result<Response, AuthError> {
    authorizer::authorize(
        store,
        &authorizer::Settings::default(),
        req,
        Utc::now(),
        "test-request",
        apikeys::Deadline::after(authorizer::DEFAULT_BUDGET),
    )
    .await
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

impl<S: RecordUse> RecordUse for Counting<S> {
    async fn record_use(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool, StoreError> {
        self.inner.record_use(hash, lookup, now, interval).await
    }
}

impl<S: CreateKey> CreateKey for Counting<S> {
    async fn create_with(
        &self,
        record: &KeyRecord,
        audit: &apikeys::Audit,
        max_keys: u32,
        completion: Option<&apikeys::idempotency::Completion<'_>>,
    ) -> Result<(), StoreError> {
        self.inner
            .create_with(record, audit, max_keys, completion)
            .await
    }
}

/// A store whose every lookup fails.
pub struct Failing;

impl LookupKey for Failing {
    async fn lookup(&self, _: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        Err(StoreError::Unavailable("simulated outage".into()))
    }
}

impl RecordUse for Failing {
    async fn record_use(
        &self,
        _: &KeyHash,
        _: &KeyLookup,
        _: Timestamp,
        _: chrono::Duration,
    ) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("simulated outage".into()))
    }
}
