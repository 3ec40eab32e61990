//! The local API's DynamoDB store: DynamoDB Local started in memory loses
//! every table when it restarts, so on `ResourceNotFoundException` this store
//! creates the table again and tries the operation once more (the failed
//! operation wrote nothing: its table did not exist).

use std::future::Future;

use apikeys::dynamo::DynamoStore;
use apikeys::idempotency::{Claim, Completion, EntryId, Fingerprint, IdempotencyStore};
use apikeys::{
    AccountId, ApiKey, Audit, CreateKey, DeleteKey, EventPage, ExpiryLog, GetKey, KeyChanges,
    KeyHash, KeyId, KeyLookup, KeyRecord, LeakOutcome, ListEvents, ListKeys, LookupKey, LookupKeys,
    Page, RecordUse, RevokeLeaked, RollKey, StoreError, Timestamp, UpdateKey,
};

/// A [`DynamoStore`] that recreates its missing table.
pub struct RecreatingStore(pub DynamoStore);

impl RecreatingStore {
    async fn again<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        match op().await {
            Err(StoreError::MissingTable(_)) => {
                let (client, table) = (self.0.client(), self.0.table());
                tracing::warn!(
                    table,
                    "the table is missing (DynamoDB Local restarted?): creating it"
                );
                apikeys::table::create_table(client, table)
                    .await
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                op().await
            }
            other => other,
        }
    }
}

impl LookupKey for RecreatingStore {
    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyLookup>, StoreError> {
        self.again(|| self.0.lookup(hash)).await
    }
}

impl LookupKeys for RecreatingStore {
    async fn lookup_many(
        &self,
        hashes: &[KeyHash],
    ) -> Result<std::collections::HashMap<KeyHash, KeyLookup>, StoreError> {
        self.again(|| self.0.lookup_many(hashes)).await
    }
}

impl RecordUse for RecreatingStore {
    async fn record_use(
        &self,
        hash: &KeyHash,
        lookup: &KeyLookup,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool, StoreError> {
        self.again(|| self.0.record_use(hash, lookup, now, interval))
            .await
    }
}

impl CreateKey for RecreatingStore {
    async fn create_with(
        &self,
        record: &KeyRecord,
        audit: &Audit,
        max_keys: u32,
        completion: Option<&Completion<'_>>,
    ) -> Result<(), StoreError> {
        self.again(|| self.0.create_with(record, audit, max_keys, completion))
            .await
    }
}

impl IdempotencyStore for RecreatingStore {
    async fn claim(
        &self,
        entry: &EntryId,
        fingerprint: &Fingerprint,
        now: Timestamp,
    ) -> Result<Claim, StoreError> {
        self.again(|| self.0.claim(entry, fingerprint, now)).await
    }

    async fn release(&self, entry: &EntryId, token: &str) -> Result<(), StoreError> {
        self.again(|| self.0.release(entry, token)).await
    }
}

impl GetKey for RecreatingStore {
    async fn get(&self, account: &AccountId, id: &KeyId) -> Result<KeyRecord, StoreError> {
        self.again(|| self.0.get(account, id)).await
    }
}

impl ListKeys for RecreatingStore {
    async fn list(
        &self,
        account: &AccountId,
        limit: u16,
        token: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.again(|| self.0.list(account, limit, token)).await
    }
}

impl UpdateKey for RecreatingStore {
    async fn update(
        &self,
        account: &AccountId,
        id: &KeyId,
        changes: &KeyChanges,
        expected_version: Option<u64>,
        audit: &Audit,
    ) -> Result<KeyRecord, StoreError> {
        self.again(|| self.0.update(account, id, changes, expected_version, audit))
            .await
    }
}

impl RollKey for RecreatingStore {
    async fn roll_with(
        &self,
        account: &AccountId,
        id: &KeyId,
        key: &ApiKey,
        grace: chrono::Duration,
        expected_version: Option<u64>,
        audit: &Audit,
        completion: Option<&Completion<'_>>,
    ) -> Result<KeyRecord, StoreError> {
        self.again(|| {
            self.0
                .roll_with(account, id, key, grace, expected_version, audit, completion)
        })
        .await
    }
}

impl DeleteKey for RecreatingStore {
    async fn delete_at(
        &self,
        account: &AccountId,
        id: &KeyId,
        expected: Option<u64>,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        self.again(|| self.0.delete_at(account, id, expected, audit))
            .await
    }
}

impl RevokeLeaked for RecreatingStore {
    async fn revoke_leaked(
        &self,
        hash: &KeyHash,
        audit: &Audit,
    ) -> Result<LeakOutcome, StoreError> {
        self.again(|| self.0.revoke_leaked(hash, audit)).await
    }
}

impl ListEvents for RecreatingStore {
    async fn events(
        &self,
        account: &AccountId,
        id: &KeyId,
        limit: u16,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<EventPage, StoreError> {
        self.again(|| self.0.events(account, id, limit, token, now))
            .await
    }
}

impl ExpiryLog for RecreatingStore {
    async fn expiring(&self, after: Timestamp, until: Timestamp) -> Result<usize, StoreError> {
        self.again(|| self.0.expiring(after, until)).await
    }
}
