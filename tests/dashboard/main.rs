//! The dashboard API across crates: its responses against the OpenAPI spec,
//! the whole key lifecycle on DynamoDB Local, and keys made by `create-key`
//! as the authorizer sees them.

mod bounded;
mod flow;
mod fuzz;
mod idempotency;
mod lifecycle;
mod spec;

use apikeys::idempotency::{Claim, Completion, EntryId, Fingerprint, IdempotencyStore};
use apikeys::{
    AccountId, ApiKey, Audit, CreateKey, DeleteKey, EventPage, ExpiryLog, GetKey, KeyChanges,
    KeyHash, KeyId, KeyLookup, KeyRecord, LeakOutcome, ListEvents, ListKeys, LookupKey, Page,
    RecordUse, RevokeLeaked, RollKey, StoreError, Timestamp, UpdateKey,
};
use keys_api::testing::*;
use lambda_http::{Body, Response};
use serde_json::Value;

/// The five dashboard operations, by name, over one store.
pub async fn call<S: apikeys::KeyStore>(store: &S, op: &str, ev: &Value) -> Response<Body> {
    let (cfg, req) = (config(), request(ev));
    local_stack::dashboard_handler(op, store, &cfg, req)
        .await
        .unwrap_or_else(|| panic!("no operation {op}"))
}

/// The operations of the dashboard API under a user login, from the
/// function table.
pub fn operations() -> Vec<&'static str> {
    function_table::dashboard_routes()
        .filter(|(_, r)| r.login == function_table::Login::User)
        .map(|(_, r)| r.operation)
        .collect()
}

/// The one operation that reads no store: the scope catalogue.
pub const CATALOGUE: &str = "listScopes";

/// The operations that read or write the store.
pub fn store_operations() -> Vec<&'static str> {
    operations()
        .into_iter()
        .filter(|op| *op != CATALOGUE)
        .collect()
}

/// The sample event of an operation.
pub fn sample(op: &str) -> Value {
    let f = function_table::by_operation(op).unwrap_or_else(|| panic!("no operation {op}"));
    let path = format!(
        "{}/../events/{}.json",
        env!("CARGO_MANIFEST_DIR"),
        f.package
    );
    event(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
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
impl apikeys::LookupKeys for Failing {
    async fn lookup_many(
        &self,
        _: &[KeyHash],
    ) -> Result<std::collections::HashMap<KeyHash, KeyLookup>, StoreError> {
        Err(self.0())
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
        Err(self.0())
    }
}
impl CreateKey for Failing {
    async fn create_with(
        &self,
        _: &KeyRecord,
        _: &Audit,
        _: u32,
        _: Option<&Completion<'_>>,
    ) -> Result<(), StoreError> {
        Err(self.0())
    }
}
impl IdempotencyStore for Failing {
    async fn claim(&self, _: &EntryId, _: &Fingerprint, _: Timestamp) -> Result<Claim, StoreError> {
        Err(self.0())
    }
    async fn release(&self, _: &EntryId, _: &str) -> Result<(), StoreError> {
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
        _: &Audit,
    ) -> Result<KeyRecord, StoreError> {
        Err(self.0())
    }
}
impl RollKey for Failing {
    async fn roll_with(
        &self,
        _: &AccountId,
        _: &KeyId,
        _: &ApiKey,
        _: chrono::Duration,
        _: Option<u64>,
        _: &Audit,
        _: Option<&Completion<'_>>,
    ) -> Result<KeyRecord, StoreError> {
        Err(self.0())
    }
}
impl DeleteKey for Failing {
    async fn delete_at(
        &self,
        _: &AccountId,
        _: &KeyId,
        _: Option<u64>,
        _: &Audit,
    ) -> Result<(), StoreError> {
        Err(self.0())
    }
}
impl RevokeLeaked for Failing {
    async fn revoke_leaked(&self, _: &KeyHash, _: &Audit) -> Result<LeakOutcome, StoreError> {
        Err(self.0())
    }
}
impl ListEvents for Failing {
    async fn events(
        &self,
        _: &AccountId,
        _: &KeyId,
        _: u16,
        _: Option<&str>,
        _: Timestamp,
    ) -> Result<EventPage, StoreError> {
        Err(self.0())
    }
}
impl ExpiryLog for Failing {
    async fn expiring(&self, _: Timestamp, _: Timestamp) -> Result<usize, StoreError> {
        Err(self.0())
    }
}
