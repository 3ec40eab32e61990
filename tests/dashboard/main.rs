//! The dashboard API across crates: its responses against the OpenAPI spec,
//! the whole key lifecycle on DynamoDB Local, and keys made by `create-key`
//! as the authorizer sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bounded;
mod flow;
mod fuzz;
mod lifecycle;
mod spec;

use apikeys::{
    AccountId, CreateKey, DeleteKey, GetKey, KeyChanges, KeyHash, KeyId, KeyLookup, KeyRecord,
    ListKeys, LookupKey, Page, StoreError, Timestamp, UpdateKey,
};
use keys_api::testing::*;
use lambda_http::{Body, Response};
use serde_json::Value;

/// The five dashboard operations, by name, over one store.
pub async fn call<S: apikeys::KeyStore>(store: &S, op: &str, ev: &Value) -> Response<Body> {
    let (cfg, req) = (config(), request(ev));
    match op {
        "create" => create_key::handle(store, &cfg, req).await,
        "list" => list_keys::handle(store, &cfg, req).await,
        "get" => get_key::handle(store, &cfg, req).await,
        "update" => update_key::handle(store, &cfg, req).await,
        "delete" => delete_key::handle(store, &cfg, req).await,
        other => panic!("no operation {other}"),
    }
}

/// The sample event of an operation.
pub fn sample(op: &str) -> Value {
    event(match op {
        "create" => CREATE_KEY,
        "list" => LIST_KEYS,
        "get" => GET_KEY,
        "update" => UPDATE_KEY,
        "delete" => DELETE_KEY,
        other => panic!("no operation {other}"),
    })
}

/// A store whose every operation fails with the error it makes.
pub struct Failing(pub fn() -> StoreError);

/// Down for everything.
pub const DOWN: Failing = Failing(|| StoreError::Unavailable("simulated outage".into()));
/// Throttling everything.
pub const THROTTLED: Failing = Failing(|| StoreError::Throttled("simulated throttling".into()));
/// Every stored item undecodable.
pub const BROKEN: Failing = Failing(|| StoreError::Corrupt("simulated corrupt item".into()));

impl LookupKey for Failing {
    async fn lookup(&self, _: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        Err(self.0())
    }
}
impl CreateKey for Failing {
    async fn create(&self, _: &KeyRecord) -> Result<(), StoreError> {
        Err(self.0())
    }
}
impl GetKey for Failing {
    async fn get(&self, _: &AccountId, _: &KeyId) -> Result<KeyRecord, StoreError> {
        Err(self.0())
    }
}
impl ListKeys for Failing {
    async fn list(&self, _: &AccountId, _: u16, _: Option<&str>) -> Result<Page, StoreError> {
        Err(self.0())
    }
}
impl UpdateKey for Failing {
    async fn update(
        &self,
        _: &AccountId,
        _: &KeyId,
        _: &KeyChanges,
        _: Option<u64>,
        _: Timestamp,
    ) -> Result<KeyRecord, StoreError> {
        Err(self.0())
    }
}
impl DeleteKey for Failing {
    async fn delete(&self, _: &AccountId, _: &KeyId) -> Result<(), StoreError> {
        Err(self.0())
    }
}
