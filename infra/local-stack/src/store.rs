//! The local API's DynamoDB store: DynamoDB Local started in memory loses
//! every table when it restarts, so on `ResourceNotFoundException` this store
//! creates the table again and tries the operation once more (the failed
//! operation wrote nothing: its table did not exist).

use std::future::Future;

use apikeys::dynamo::DynamoStore;
use apikeys::{
    AccountId, CreateKey, DeleteKey, GetKey, KeyChanges, KeyHash, KeyId, KeyLookup, KeyRecord,
    ListKeys, LookupKey, Page, StoreError, Timestamp, UpdateKey,
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

impl CreateKey for RecreatingStore {
    async fn create(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.again(|| self.0.create(record)).await
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
        now: Timestamp,
    ) -> Result<KeyRecord, StoreError> {
        self.again(|| self.0.update(account, id, changes, expected_version, now))
            .await
    }
}

impl DeleteKey for RecreatingStore {
    async fn delete(&self, account: &AccountId, id: &KeyId) -> Result<(), StoreError> {
        self.again(|| self.0.delete(account, id)).await
    }
}
