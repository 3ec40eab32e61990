//! API-key material, key records and the key store.
//!
//! - [`material`]: generate, validate offline, hash, prefix and mask keys;
//!   the plaintext key lives only in the redacting [`ApiKey`] type.
//! - [`model`]: validated values ([`KeyName`], [`KeyId`], [`AccountId`]) and
//!   the stored shapes ([`KeyRecord`], [`KeyLookup`]).
//! - [`store`]: one trait per store capability, the in-memory store.
//! - [`change`]: every change to a key, planned once for both stores.
//! - [`dynamo`]: the DynamoDB store (two items per key, one table).
//! - [`idempotency`]: what the store keeps for `Idempotency-Key` (sealed answers).
//! - [`invariant`]: what must hold between a key's items, and its checker.
//! - [`table`]: the table's key schema and its creation.
//! - [`audit`]: the events every change writes with it.
//!
//! Logging set-up and the Lambda wiring live in `lambda-support`.

pub mod audit;
pub mod change;
pub mod dynamo;
pub mod idempotency;
pub mod invariant;
pub mod material;
pub mod model;
pub mod store;
pub mod table;
#[cfg(feature = "test-util")]
pub mod testing;

pub use audit::{Audit, EventAction, EventId, EventPage, FieldValue, KeyEvent};
pub use material::{ApiKey, KeyFormatError, KeyHash};
pub use model::{
    AccountId, DeactivatedReason, KeyChanges, KeyId, KeyLookup, KeyName, KeyRecord, Page,
    PreviousSecret, Timestamp,
};
pub use store::{
    CreateKey, Deadline, DeleteKey, ExpiryLog, GetKey, KeyStore, LeakOutcome, ListEvents, ListKeys,
    LookupKey, LookupKeys, MemoryStore, RecordUse, RevokeLeaked, RollKey, StoreError, UpdateKey,
};

/// An error and all its sources on one line, for logs (SDK errors keep their
/// cause in the source chain).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
